"""What the benchmarks record about the machine and the commands they time: the CPU
model; from /proc, every process's parent, CPU ticks and memory, to tell our processes'
CPU time from other jobs'; a monitor sampling them while a command runs."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

_STARTED = time.perf_counter()


def step(bench: str, msg: str) -> None:
    """A progress line on standard error (the results go to standard output and the results
    file): ``[bench 0:42] msg``, with the time since the benchmark started."""
    seconds = int(time.perf_counter() - _STARTED)
    print(f"[{bench} {seconds // 60}:{seconds % 60:02d}] {msg}", file=sys.stderr, flush=True)


def best(fn, repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls of ``fn()``."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def proc_tree() -> tuple[dict[int, int], dict[int, int]]:
    """Parent and CPU ticks (user + system) of every process."""
    parent, ticks = {}, {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2 :].split()
        parent[int(name)] = int(f[1])
        ticks[int(name)] = int(f[11]) + int(f[12])
    return parent, ticks


def cpu_report(total: float, ours: float, seconds: float) -> dict:
    """Busy CPU-seconds of the machine, ours, and other jobs' (``foreign``) over ``seconds``."""
    foreign = max(0.0, total - ours)
    return {
        "busy_cpu_seconds": round(total, 2),
        "ours_cpu_seconds": round(ours, 2),
        "foreign_cpu_seconds": round(foreign, 2),
        "foreign_cores_mean": round(foreign / seconds, 3) if seconds else None,
    }


def _descendants(root: int, parent: dict[int, int]) -> set[int]:
    out = set()
    for pid in parent:
        p, hops = pid, 0
        while p > 1 and hops < 64:
            if p == root:
                out.add(pid)
                break
            p, hops = parent.get(p, 0), hops + 1
    return out


def _rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def _vm_hwm_bytes(pid: int) -> int:
    """The kernel's peak resident set of one process so far (VmHWM), bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class Loop:
    """A daemon thread that runs ``self._run`` (which waits on ``self._stop`` between
    rounds) from ``_start_loop`` until ``stop``. Subclasses set ``_stop`` and ``_thread``."""

    _stop: threading.Event
    _thread: threading.Thread | None

    def _start_loop(self, name: str) -> None:
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


class Monitor(Loop):
    """Samples, while a command runs: busy CPU of the whole machine and of this script's
    process tree, with the kept local Ray's keeper and its Ray when a command hands its run
    to them (``foreign`` = busy time of processes that are not ours), the peak
    resident set of the command's own process (VmHWM: for ``hpcprep run`` that is the
    driver), the largest sum of resident sets over the command's whole tree (the
    driver, and for the runner the Ray processes it started), and the largest resident
    set of this script itself (``own_rss_max``: the driver, where the script runs
    ``hpcprep.run`` in process)."""

    def __init__(self, interval: float = 0.5):
        self.interval = interval
        self.hz = os.sysconf("SC_CLK_TCK")
        self.me = os.getpid()
        self.child: int | None = None
        self.keeper: int | None = None
        self.total = self.ours = 0.0
        self.child_hwm = self.tree_rss_max = self.keeper_rss_max = self.own_rss_max = 0
        self.tree_max_processes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _machine_busy() -> int:
        v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(v[:8]) - v[3] - v[4]

    def _sample(self) -> tuple[int, dict[int, int]]:
        busy = self._machine_busy()
        parent, ticks = proc_tree()
        mine = _descendants(self.me, parent) | {self.me}
        if self.keeper is not None:
            mine |= _descendants(self.keeper, parent) | {self.keeper}
        ours = {pid: ticks[pid] for pid in mine if pid in ticks}
        self.own_rss_max = max(self.own_rss_max, _rss_bytes(self.me))
        if self.child is not None:
            self.child_hwm = max(self.child_hwm, _vm_hwm_bytes(self.child))
            tree = _descendants(self.child, parent) | {self.child}
            self.tree_rss_max = max(self.tree_rss_max, sum(_rss_bytes(p) for p in tree))
            self.tree_max_processes = max(self.tree_max_processes, len(tree))
        if self.keeper is not None:
            self.keeper_rss_max = max(self.keeper_rss_max, _rss_bytes(self.keeper))
        return busy, ours

    def _run(self) -> None:
        busy, ours = self._sample()
        while not self._stop.wait(self.interval):
            busy2, ours2 = self._sample()
            self.total += (busy2 - busy) / self.hz
            # a process that ended between samples takes its last ticks with it: count what we saw
            self.ours += sum(t - ours.get(pid, 0) for pid, t in ours2.items()) / self.hz
            busy, ours = busy2, ours2

    def start(self) -> Monitor:
        self._start_loop("monitor")
        return self

    def report(self, seconds: float) -> dict:
        return cpu_report(self.total, self.ours, seconds)


def wait_until_quiet(limit_s: float, threshold: float = 0.15) -> float:
    """Wait (up to ``limit_s``) for 3 s in which other processes use < ``threshold`` cores."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        mon = Monitor(interval=0.5).start()
        time.sleep(3)
        mon.stop()
        if mon.report(3)["foreign_cores_mean"] < threshold:
            break
    return time.perf_counter() - t0


def timed_command(cmd: list[str], log: Path, cwd: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` to its end; wall seconds from start to exit, memory and CPU while it ran
    (and the largest resident set of the local Ray's keeper, which drives the run when the
    command hands it over: ``keeper_rss_max_mib``)."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **(env or {}))
    mon = Monitor()
    mon.keeper = _keeper_pid()
    with open(log, "wb") as out:
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        mon.child = proc.pid
        mon.start()
        rc = proc.wait()
        seconds = time.perf_counter() - t
    mon.stop()
    return {
        "seconds": round(seconds, 3),
        "returncode": rc,
        "peak_rss_mib": round(mon.child_hwm / 2**20, 1),
        "tree_rss_max_mib": round(mon.tree_rss_max / 2**20, 1),
        "tree_max_processes": mon.tree_max_processes,
        "keeper_rss_max_mib": round(mon.keeper_rss_max / 2**20, 1),
        "cpu": mon.report(seconds),
        "log": str(log),
    }


def _keeper_pid() -> int | None:
    """The process keeping a local Ray for this user now, if any."""
    from hpcprep import local_ray

    info = local_ray.status()
    return info["pid"] if info else None


def tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
