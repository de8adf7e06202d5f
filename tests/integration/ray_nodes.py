"""A multi-node Ray on one machine, as separate real processes: a head started with
``ray start --head`` and worker nodes joined with ``ray start --address``, token
authentication on (a fresh token shared with this cluster's processes only). Nodes
can be killed for real (their raylet and everything under it, kill -9)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out[int(d.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), cmd)
    return out


def _with_descendants(roots: set[int], procs: dict) -> set[int]:
    found = set(roots)
    grew = True
    while grew:
        new = {p for p, (pp, _) in procs.items() if pp in found and p not in found}
        found |= new
        grew = bool(new)
    return found


class RayNodes:
    def __init__(self):
        # short: Ray's socket paths must stay under about 107 characters
        self.temp = tempfile.mkdtemp(prefix="hpr", dir="/tmp")
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(32),
            "RAY_USAGE_STATS_ENABLED": "0",
        }
        self.port = None
        self.node_ports: list[int] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _start(self, args: list[str], prefix: list[str] = (), env: dict | None = None, cpus: int = 1) -> int:
        # The ports are free when chosen but another process can take one (or one of the 40
        # worker ports after the first) before Ray binds it: a node that fails to start is
        # started again on other ports, and the last failure says why.
        attempts = 3
        for _ in range(attempts):
            nm, om, agent, metrics, renv, grpc, wmin = free_ports(7)
            cmd = [
                *prefix,
                RAY,
                "start",
                *args,
                f"--num-cpus={cpus}",
                f"--node-manager-port={nm}",
                f"--object-manager-port={om}",
                f"--dashboard-agent-listen-port={agent}",
                f"--metrics-export-port={metrics}",
                f"--runtime-env-agent-port={renv}",
                f"--dashboard-agent-grpc-port={grpc}",
                f"--min-worker-port={wmin}",
                f"--max-worker-port={wmin + 40}",
                f"--temp-dir={self.temp}",
            ]
            res = subprocess.run(cmd, env=env or self.env, capture_output=True, text=True, timeout=120)
            if res.returncode == 0:
                self.node_ports.append(nm)
                return nm
        raise RuntimeError(f"ray start failed {attempts} times; last: {res.stdout[-2000:]}{res.stderr[-3000:]}")

    def start_head(self, cpus: int = 1, gpus: int = 0) -> None:
        """The head node; ``gpus`` are Ray's logical GPUs (a resource count: no device behind them)."""
        self.port, dash = free_ports(2)
        args = ["--head", f"--port={self.port}", "--include-dashboard=false", f"--dashboard-port={dash}"]
        self._start([*args, f"--num-gpus={gpus}"], cpus=cpus)

    def add_worker(self, prefix: list[str] = (), extra_env: dict | None = None) -> int:
        return self._start([f"--address={self.address}"], prefix, {**self.env, **(extra_env or {})})

    def wait_for(self, nodes: int, timeout: float = 60) -> None:
        code = (
            "import ray,sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        deadline = time.time() + timeout
        while True:
            res = subprocess.run(
                [sys.executable, "-c", code, self.address], env=self.env, capture_output=True, text=True, timeout=60
            )
            if res.stdout.strip() == str(nodes):
                return
            if time.time() > deadline:
                raise TimeoutError(f"{nodes} Ray nodes did not come up: {res.stdout} {res.stderr[-2000:]}")
            time.sleep(1)

    def kill_node(self, node_manager_port: int) -> set[int]:
        """kill -9 a node's raylet and every process under it (its workers and agents)."""
        procs = _processes()
        raylets = {p for p, (_, cmd) in procs.items() if f"--node_manager_port={node_manager_port} " in cmd + " "}
        assert raylets, f"no raylet with node manager port {node_manager_port}"
        doomed = _with_descendants(raylets, procs)
        for p in doomed:
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        return doomed

    def stop(self) -> None:
        """Every process of this cluster, and nothing else: they all name its temp dir, or
        descend from one that does."""
        procs = _processes()
        roots = {p for p, (_, cmd) in procs.items() if self.temp in cmd}
        for p in _with_descendants(roots, procs):
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
