"""A real Slurm for tests: munged, slurmctld and slurmd from Debian's packages,
configured in a temporary directory and stopped afterwards.

The default partition is one node: this machine with all its CPUs. A second partition,
``pair``, holds two more nodes of one CPU each that are this machine too (one slurmd per
node, ``slurmd -N``), so that a job can span two Slurm nodes.

Everything the daemons write (state, spool, logs, munge socket and key) stays in that
directory, and the Slurm commands find the configuration through ``SLURM_CONF``, so
nothing under /etc is touched and a Slurm already running on the machine is left alone.
The daemons run as root (``SlurmUser=root``), which these test machines are.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import unavailable

DAEMONS = ("munged", "slurmctld", "slurmd")
TOOLS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo", "srun")


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports that are free now: all are held open while choosing, so the
    kernel cannot hand out the same one twice."""
    held = []
    try:
        for _ in range(n):
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def _sbin(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/sbin") / name) if p.exists()), None
    )


def require_slurm() -> None:
    """Skip without Slurm on a user's machine; fail in CI, where `make test` installs it."""
    missing = [t for t in (*DAEMONS, *TOOLS) if not _sbin(t)]
    if missing:
        unavailable(
            f"Slurm is not installed (no {', '.join(missing)}; `make sysdeps` installs slurmctld, slurmd, munge)"
        )
    if os.geteuid() != 0:
        unavailable("the test Slurm runs its daemons as root, and this is not root")


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.host = socket.gethostname().split(".")[0]
        # (name, CPUs, partition)
        self.nodes = [(self.host, os.cpu_count() or 1, "debug"), ("pair1", 1, "pair"), ("pair2", 1, "pair")]
        self.conf = root / "slurm.conf"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def start(self, attempts: int = 3) -> SlurmCluster:
        """Start munged, slurmctld and the slurmd's; a daemon that found its port taken
        between choosing and binding it (another process on the machine got it first)
        means a fresh start on other ports. A start that fails stops what it started."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start()
            except RuntimeError as exc:
                self.stop()
                self.procs.clear()
                if "Address already in use" not in str(exc) or attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def _start(self) -> SlurmCluster:
        shutil.rmtree(self.root / "state", ignore_errors=True)
        for d in ("state", "log", "munge", *(f"spool/{name}" for name, _, _ in self.nodes)):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        munge = self.root / "munge"
        munge.chmod(0o700)
        key = munge / "munge.key"
        key.unlink(missing_ok=True)
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        socket_path = munge / "munge.socket"
        socket_path.unlink(missing_ok=True)
        self._spawn(
            "munged",
            "-F",
            "-f",
            f"--key-file={key}",
            f"--socket={socket_path}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={munge / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        self._wait(socket_path.exists, "munged's socket")
        self.conf.write_text(self._config(socket_path))
        self._spawn("slurmctld", "-D", "-i")
        for name, _, _ in self.nodes:
            self._spawn("slurmd", "-D", "-N", name, label=f"slurmd-{name}")
        names = ",".join(name for name, _, _ in self.nodes)
        self._wait(lambda: self.run("sinfo", "-h", "-n", names, "-o", "%T").stdout.split() == ["idle"], "nodes idle")
        return self

    def _config(self, munge_socket: Path) -> str:
        r = self.root
        ctld_port, *node_ports = _free_ports(1 + len(self.nodes))
        nodes = "\n".join(
            f"NodeName={name} NodeHostname={self.host} NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
            "RealMemory=1000 State=UNKNOWN"
            for (name, cpus, _), port in zip(self.nodes, node_ports)
        )
        return f"""\
ClusterName=hpcpreptest
SlurmctldHost={self.host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmctldPort={ctld_port}
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd-%n.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd-%n.log
# Job ids differ between test sessions, as they do between a real cluster's jobs.
FirstJobId={random.randint(1000, 900_000)}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
MinJobAge=300
{nodes}
PartitionName=debug Nodes={self.host} Default=YES MaxTime=INFINITE State=UP
PartitionName=pair Nodes=pair1,pair2 MaxTime=INFINITE State=UP
"""

    def _spawn(self, daemon: str, *args: str, label: str | None = None) -> None:
        label = label or daemon
        log = open(self.root / "log" / f"{label}.out", "w")
        self.procs[label] = subprocess.Popen(
            [_sbin(daemon), *args], stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def _wait(self, ready, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [n for n, p in self.procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {f.name}\n{f.read_text()[-2000:]}" for f in sorted((self.root / "log").glob("*.out"))
                )
                raise RuntimeError(f"test Slurm: no {what} ({', '.join(dead) or 'timed out'})\n{logs}")
            time.sleep(0.5)

    def run(self, *cmd: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check, timeout=timeout)

    def stop(self) -> None:
        """Cancel every job, wait for them to go, then stop the daemons in reverse order."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user=root")
            deadline = time.monotonic() + 60
            while self.run("squeue", "-h").stdout.strip() and time.monotonic() < deadline:
                time.sleep(1)
        for proc in reversed(list(self.procs.values())):
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
