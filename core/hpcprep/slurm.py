"""``hpcprep slurm``: an sbatch script that runs a spec on a Slurm allocation.

The script starts one Ray node per Slurm node (the head on the first), runs
``hpcprep run SPEC --address HEAD`` there and stops Ray however the job ends. It is
plain shell a person can read and edit before submitting it; the few steps that are
easier in Python (finding free ports, waiting for the nodes to join, telling an
interrupted run from a finished one) are the small commands at the bottom of this
module, run by the script as ``python -m hpcprep.slurm ...``.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# Every job takes a block of PORT_SPAN ports on each of its nodes. The blocks lie below
# Linux's ephemeral range (32768-60999), where outgoing connections take their local
# ports, and a job starts looking at the block its id points to, so two jobs sharing a
# node start from different blocks and, if one is taken anyway, move on to a free one.
PORT_RANGE = (20000, 32768)
PORT_SPAN = 400  # ten for Ray's own processes (see ray_ports in the script), the rest for its workers

#: Slurm job states after which a job will not run again.
FINAL_STATES = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT",
}  # fmt: skip


class SlurmError(RuntimeError):
    pass


@dataclass
class SlurmJob:
    """What the script needs: the spec, where its run goes, and the allocation."""

    spec: Path
    run_dir: Path  # run.output, absolute
    workdir: Path  # where relative paths in the spec are resolved from
    nodes: int
    name: str = "hpcprep"
    cpus_per_node: int | None = None  # None: whole nodes
    gpus_per_node: int = 0
    partition: str | None = None
    time: str | None = None
    account: str | None = None
    setup: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    resume: bool = False
    overwrite: bool = False
    bin_dir: Path = field(default_factory=lambda: Path(sys.executable).parent)

    @property
    def log_dir(self) -> Path:
        # Beside the run directory, not in it: `hpcprep run` starts a new run only in an
        # empty directory, and Slurm opens the log before the script runs.
        return self.run_dir.with_name(self.run_dir.name + ".slurm")


def render_script(job: SlurmJob) -> str:
    for what, path in (("run directory", job.log_dir), ("working directory", job.workdir)):
        if any(c.isspace() for c in str(path)) or "%" in str(path):
            raise SlurmError(f"the {what} {path} holds a space or '%', which #SBATCH lines cannot take")
    directives = [
        f"--job-name=hpcprep-{job.name}",
        f"--nodes={job.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={job.cpus_per_node}" if job.cpus_per_node else "--exclusive",
        f"--gpus-per-node={job.gpus_per_node}" if job.gpus_per_node else None,
        f"--partition={job.partition}" if job.partition else None,
        f"--time={job.time}" if job.time else None,
        f"--account={job.account}" if job.account else None,
        f"--chdir={job.workdir}",
        f"--output={job.log_dir}/job-%j.log",
    ]
    run_args = [*(a for o in job.overrides for a in ("--set", o)), *(["--overwrite"] if job.overwrite else [])]
    q = shlex.quote
    head = [
        "#!/bin/bash",
        f"# Runs {job.spec} on this Slurm allocation: one Ray node per Slurm node, then",
        "# `hpcprep run` on the first node. Written by `hpcprep slurm`; plain shell, edit freely.",
        *(f"#SBATCH {d}" for d in directives if d),
        "# SIGTERM to this script 60 s before the time limit, so that it can stop Ray in time;",
        "# the run then goes on from its last committed group with --resume.",
        "#SBATCH --signal=B:TERM@60",
        "",
        f"SPEC={q(str(job.spec))}",
        f"RUN_DIR={q(str(job.run_dir))}          # run.output: manifest.json, _state/ for --resume",
        f"JOB_DIR={q(str(job.log_dir))}/job-$SLURM_JOB_ID   # this job's private files (the Ray token)",
        f"RUN_ARGS=({' '.join(q(a) for a in run_args)})   # more arguments for hpcprep run",
        f"RESUME={'--resume' if job.resume else ''}   # empty: --resume only if RUN_DIR holds an interrupted run",
        f"GPUS_PER_NODE={job.gpus_per_node}",
        "NODE_TIMEOUT=300   # seconds to wait for every node to join Ray",
        "",
        "# The hpcprep and Ray that wrote this script; the setup lines below may choose others.",
        f'export PATH={q(str(job.bin_dir))}:"$PATH"',
        *job.setup,
        "",
    ]
    return "\n".join(head) + SCRIPT_BODY.replace("@LAST_PORT@", str(PORT_SPAN - 1))


SCRIPT_BODY = r"""
set -u
mapfile -t NODES < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
HEAD_NODE=${NODES[0]}   # the batch script runs here, and so does the driver
CPUS=${SLURM_CPUS_PER_TASK:-$SLURM_CPUS_ON_NODE}

# Ray's authentication token, never switched off: a fresh random token for this job in
# $JOB_DIR/ray-token (the directory mode 0700, the file 0600). JOB_DIR lies beside the run
# directory on the shared file system, so every node of the job reads the same file; the
# environment, which srun hands to this job's tasks only, carries its path, never the
# token itself (a token on a command line would show in `ps`). Deleted when the job ends.
mkdir -p "$JOB_DIR" && chmod 700 "$JOB_DIR" || exit 1
(umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' > "$JOB_DIR/ray-token") || exit 1
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$JOB_DIR/ray-token
unset RAY_AUTH_TOKEN   # a token in the environment would win over the file

# Ray's temporary directory on node-local disk. It holds Unix sockets, whose paths Linux
# limits to 107 characters, and Ray adds about 60 to it.
RAY_TMP=${TMPDIR:-/tmp}/hpcprep-ray-$SLURM_JOB_ID
[ ${#RAY_TMP} -le 45 ] || RAY_TMP=/tmp/hpcprep-ray-$SLURM_JOB_ID
export RAY_TMP
echo "hpcprep slurm: job $SLURM_JOB_ID on ${NODES[*]} ($CPUS CPUs, $GPUS_PER_NODE GPUs per node), Ray in $RAY_TMP"
export RAY_USAGE_STATS_ENABLED=0
export RAY_idle_worker_killing_time_threshold_ms=60000   # keep idle workers a minute, as a local hpcprep Ray does
export RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0           # on SIGTERM stop at once: nothing here needs draining
export RAY_NODE_OPTS="--temp-dir=$RAY_TMP --num-cpus=$CPUS --num-gpus=$GPUS_PER_NODE --disable-usage-stats --block"

# Each node's ports: a block that `python -m hpcprep.slurm ports` finds free on that node,
# starting from one derived from the job id, so that jobs sharing a node do not collide.
ray_ports() {
    local b=$1
    echo "--node-manager-port=$((b + 1)) --object-manager-port=$((b + 2))" \
        "--dashboard-agent-listen-port=$((b + 3)) --dashboard-agent-grpc-port=$((b + 4))" \
        "--runtime-env-agent-port=$((b + 5)) --metrics-export-port=$((b + 6))" \
        "--min-worker-port=$((b + 10)) --max-worker-port=$((b + @LAST_PORT@))"
}
export -f ray_ports   # for the worker nodes' shells

alive() { local p; for p in "$@"; do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }

# Stops Ray on every exit path: the run's end (EXIT), scancel and the time limit (TERM).
stop_ray() {
    trap - EXIT TERM INT
    if [ -n "${DRIVER:-}" ]; then
        kill -TERM "$DRIVER" 2>/dev/null
        for _ in $(seq 10); do alive "$DRIVER" || break; sleep 1; done
        kill -KILL "$DRIVER" 2>/dev/null
    fi
    if [ -n "${RAY_STEPS:-}" ]; then
        # SIGTERM to the job's steps (the Ray nodes), not to this script: `ray start --block`
        # then stops the Ray processes it started and only those. (`ray stop` would stop
        # every Ray on the node, another job's included.)
        scancel --signal=TERM "$SLURM_JOB_ID" 2>/dev/null
        for _ in $(seq 20); do alive $RAY_STEPS || break; sleep 1; done
        # Still up: srun, signalled, ends its step and Slurm kills every process in it.
        kill -TERM $RAY_STEPS 2>/dev/null
        wait $RAY_STEPS 2>/dev/null
        # Ray processes whose parent died first have left the step, so Slurm does not end
        # them (with proctrack/linuxproc); they still carry this job's token path. Then
        # Ray's files. This node here, the others through srun, which a job being cancelled
        # no longer runs (node-local disk is then the site's to clean).
        python -m hpcprep.slurm stop-leftovers "$RAY_AUTH_TOKEN_PATH"
        rm -rf "$RAY_TMP"
        [ "$SLURM_JOB_NUM_NODES" -gt 1 ] && srun --overlap --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 \
            bash -c 'python -m hpcprep.slurm stop-leftovers "$RAY_AUTH_TOKEN_PATH"; rm -rf "$RAY_TMP"' 2>/dev/null
    fi
    rm -rf "$JOB_DIR"
    echo "hpcprep slurm: Ray stopped"
}
trap 'stop_ray; exit 143' TERM INT
trap stop_ray EXIT

HEAD_PORT=$(python -m hpcprep.slurm ports "$SLURM_JOB_ID") || exit 1
HEAD_IP=$(python -c 'import ray.util; print(ray.util.get_node_ip_address())') || exit 1
export HEAD_ADDR=$HEAD_IP:$HEAD_PORT
# shellcheck disable=SC2046  # $(ray_ports) and $RAY_NODE_OPTS are split into flags on purpose
srun --nodes=1 --ntasks=1 --cpus-per-task="$CPUS" -w "$HEAD_NODE" \
    ray start --head --node-ip-address="$HEAD_IP" --port="$HEAD_PORT" $(ray_ports "$HEAD_PORT") \
    --include-dashboard=false --dashboard-port=$((HEAD_PORT + 7)) $RAY_NODE_OPTS &
RAY_STEPS=$!
python -m hpcprep.slurm wait-nodes "$HEAD_ADDR" 1 --timeout "$NODE_TIMEOUT" --watch $RAY_STEPS || exit 1
if [ "$SLURM_JOB_NUM_NODES" -gt 1 ]; then
    WORKERS=$((SLURM_JOB_NUM_NODES - 1))
    srun --nodes="$WORKERS" --ntasks="$WORKERS" --ntasks-per-node=1 --cpus-per-task="$CPUS" --exclude="$HEAD_NODE" \
        bash -c 'exec ray start --address="$HEAD_ADDR" $(ray_ports "$(python -m hpcprep.slurm ports "$SLURM_JOB_ID")") $RAY_NODE_OPTS' &
    RAY_STEPS="$RAY_STEPS $!"
    python -m hpcprep.slurm wait-nodes "$HEAD_ADDR" "$SLURM_JOB_NUM_NODES" --timeout "$NODE_TIMEOUT" --watch $RAY_STEPS || exit 1
fi

if [ -z "$RESUME" ] && python -m hpcprep.slurm interrupted "$RUN_DIR"; then
    RESUME=--resume
    echo "hpcprep slurm: $RUN_DIR holds an interrupted run; resuming it"
fi
# In the background, so that this shell handles TERM at once rather than after the run.
hpcprep run "$SPEC" --address "$HEAD_ADDR" $RESUME "${RUN_ARGS[@]}" &
DRIVER=$!
wait "$DRIVER"
RC=$?
DRIVER=
exit "$RC"
"""


# -- submitting and waiting, on the machine where `hpcprep slurm` runs ----------------


def require(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise SlurmError(f"{tool} not found: run this where Slurm's commands are (a login node), or leave out --submit")
    return path


def submit(script: str, job: SlurmJob) -> str:
    """sbatch the script; returns the job id."""
    sbatch = require("sbatch")
    job.log_dir.mkdir(parents=True, exist_ok=True)  # Slurm does not create the log's directory
    result = subprocess.run([sbatch, "--parsable"], input=script, capture_output=True, text=True)
    if result.returncode != 0:
        raise SlurmError(f"sbatch failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip().split(";")[0]


def job_state(job_id: str) -> tuple[str | None, str | None]:
    """(state, exit code) of a job, from scontrol while Slurm keeps it, else sacct."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True).stdout
    fields = dict(f.split("=", 1) for f in out.split() if "=" in f)
    if "JobState" in fields:
        return fields["JobState"], fields.get("ExitCode")
    if shutil.which("sacct"):
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-j", job_id, "-o", "State,ExitCode"], capture_output=True, text=True
        ).stdout.split()
        if out:
            state, code = out[0].split("|")
            return state.split()[0], code
    return None, None


def read_manifest(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _committed(manifest: dict | None) -> int:
    return int(((manifest or {}).get("groups") or {}).get("committed") or 0)


def wait_for_job(job_id: str, run_dir: Path, before: dict | None, echo=print, poll: float = 2.0) -> int:
    """Follow the job until it ends, printing each commit group as it commits; returns
    0 only if the job completed and its run finished with balanced books.

    ``before`` is the run directory's manifest when the job was submitted: only one the
    job rewrote counts (every write changes its timings), so that a finished run the job
    was to replace is not taken for its result. (Modification times would not do: a
    shared file system stamps them with its server's clock.)
    """
    require("scontrol")
    seen = _committed(before) if before and not before.get("finished") else 0  # a run being resumed

    def fresh() -> dict | None:
        manifest = read_manifest(run_dir)
        return manifest if manifest != before else None

    last_state = code = None
    while True:
        state, code = job_state(job_id)
        if state != last_state and state is not None:
            echo(f"job {job_id}: {state}")
            last_state = state
        manifest = fresh()
        committed = _committed(manifest)
        if committed > seen:
            done = (manifest.get("groups") or {}).get("inputs_committed")
            of = f", inputs {done}/{len(manifest['inputs'])}" if done is not None else ""
            echo(f"group {committed} committed{of}, {manifest['counts']['outputs']} rows so far")
            seen = committed
        if state is None or state in FINAL_STATES:
            break
        time.sleep(poll)
    manifest = fresh() or {}
    counts = manifest.get("counts") or {}
    finished = bool(manifest.get("finished"))
    if state == "COMPLETED" and finished and counts.get("balanced"):
        echo(
            f"{manifest['status']}: inputs {counts['inputs']} = outputs {counts['outputs']} + errors {counts['errors']}"
        )
        return 0
    why = f"job {job_id} ended {state or 'in an unknown state'} (exit code {code})"
    if finished and not counts.get("balanced"):
        why += "; the run finished with books that do not balance (see manifest.json)"
    elif not finished:
        why += f"; the run did not finish ({_committed(manifest)} group(s) committed): --resume goes on from there"
    echo(why)
    return 1


# -- helpers the script runs on the nodes: python -m hpcprep.slurm ... -----------------


def port_block(job_id: int, is_free=None) -> int:
    """First port of a block of PORT_SPAN ports free on this node, looking first at the
    block the job id points to."""
    is_free = is_free or _port_free
    slots = (PORT_RANGE[1] - PORT_RANGE[0]) // PORT_SPAN
    for k in range(slots):
        base = PORT_RANGE[0] + (job_id + k) % slots * PORT_SPAN
        if all(is_free(p) for p in range(base, base + PORT_SPAN)):
            return base
    raise SlurmError(f"no block of {PORT_SPAN} free ports in {PORT_RANGE[0]}-{PORT_RANGE[1] - 1} on this node")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("", port))
        except OSError:
            return False
    return True


def wait_for_nodes(address: str, count: int, timeout: float, watch: list[int] = ()) -> None:
    """Return once ``count`` Ray nodes are alive at ``address``; give up after ``timeout``
    seconds, or as soon as one of the ``watch`` processes (the sruns starting Ray) has ended."""
    deadline = time.monotonic() + timeout

    def check(what: str) -> None:
        if not all(_alive(p) for p in watch):
            raise SlurmError(f"Ray exited before {what} (its output is above)")
        if time.monotonic() > deadline:
            raise SlurmError(f"{what}: not within {timeout:g} s")

    host, port = address.rsplit(":", 1)
    # ray.init on an address where nothing listens yet would wait for minutes.
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=2).close()
            break
        except OSError:
            check(f"the Ray head at {address} was up")
            time.sleep(1)
    import ray

    ray.init(address=address, log_to_driver=False, logging_level="warning")
    try:
        while (alive := sum(1 for n in ray.nodes() if n.get("Alive"))) < count:
            check(f"{count} Ray nodes joined ({alive} did)")
            time.sleep(2)
    finally:
        ray.shutdown()
    print(f"hpcprep slurm: {alive} Ray node(s) up at {address}", flush=True)


def _alive(pid: int) -> bool:
    """Running, that is: not gone and not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stop_leftovers(token_path: str, grace: float = 5.0) -> list[int]:
    """End the processes that hold ``RAY_AUTH_TOKEN_PATH=token_path`` in their environment
    (this job's Ray processes), but not this process and its ancestors (the job's script);
    SIGTERM, then SIGKILL after ``grace`` seconds. Returns the pids found."""
    marker = f"RAY_AUTH_TOKEN_PATH={token_path}".encode()
    spare, pid = set(), os.getpid()
    while pid > 1:
        spare.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) not in spare:
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in found:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + grace
        while any(_alive(p) for p in found) and time.monotonic() < deadline:
            time.sleep(0.2)
    return found


def interrupted(run_dir: Path) -> bool:
    """A run that started (its plan is written) and has not finished."""
    return (run_dir / "_state" / "plan.json").exists() and not (read_manifest(run_dir) or {}).get("finished")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m hpcprep.slurm", description="helpers of the hpcprep slurm script")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ports", help="first port of a free block on this node").add_argument("job_id", type=int)
    wait = sub.add_parser("wait-nodes", help="wait until N Ray nodes are up")
    wait.add_argument("address")
    wait.add_argument("count", type=int)
    wait.add_argument("--timeout", type=float, default=300.0)
    wait.add_argument("--watch", type=int, nargs="*", default=[], metavar="PID", help="give up when one of these ends")
    sub.add_parser("interrupted", help="exit 0 if RUN_DIR holds an unfinished run").add_argument("run_dir", type=Path)
    leftovers = sub.add_parser("stop-leftovers", help="end the processes that carry this Ray token path")
    leftovers.add_argument("token_path")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "ports":
            print(port_block(args.job_id))
        elif args.cmd == "wait-nodes":
            wait_for_nodes(args.address, args.count, args.timeout, args.watch)
        elif args.cmd == "stop-leftovers":
            if found := stop_leftovers(args.token_path):
                print(f"hpcprep slurm: stopped {len(found)} Ray process(es) left on {socket.gethostname()}")
        else:
            return 0 if interrupted(args.run_dir) else 1
    except SlurmError as exc:
        print(f"hpcprep slurm: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
