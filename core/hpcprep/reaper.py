"""Stops the local Ray a run started when the run's process dies without stopping it.

``ray.shutdown()`` stops a local Ray, but a driver killed outright (``kill -9``, the
OOM killer, a job scheduler's hard limit) runs no code, and some of Ray's processes
(its dashboard and runtime-env agents) then live on, holding ports and memory. So a
run that starts a local Ray also starts this watcher, in a session of its own: it
follows the processes Ray started (and theirs) while the run lives, and kills the ones
still there once it has gone. It only ever kills processes that descend from the
ones Ray started for this run, and only if they are still the same processes (start
time checked), so a reused process id is left alone.

    python reaper.py DRIVER_PID RAY_PID...   (run as a script: it needs only the standard library)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_SECONDS = 1.0


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[19])


def _all_processes() -> dict[int, tuple[int, int]]:
    out = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            st = _stat(int(entry.name))
            if st:
                out[int(entry.name)] = st
    return out


def children_of(pid: int) -> set[int]:
    return {p for p, (parent, _) in _all_processes().items() if parent == pid}


def descendants(pid: int) -> set[int]:
    """Every live process under ``pid``, however deep."""
    procs = _all_processes()
    found: set[int] = set()
    grew = {pid}
    while grew:
        grew = {p for p, (parent, _) in procs.items() if parent in grew and p not in found}
        found |= grew
    return found


def alive(pid: int) -> bool:
    return _stat(pid) is not None


def watch(driver: int, roots: set[int]) -> None:
    """Wait for ``driver`` to go, then kill what is left of ``roots`` and their descendants."""
    procs = _all_processes()
    known = {p: procs[p][1] for p in roots if p in procs}
    while _stat(driver) is not None:
        procs = _all_processes()
        grew = True
        while grew:  # descendants of what we know, however deep
            new = {p: st for p, (parent, st) in procs.items() if parent in known and p not in known}
            known.update(new)
            grew = bool(new)
        time.sleep(POLL_SECONDS)
    for pid, started in known.items():
        st = _stat(pid)
        if st and st[1] == started:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def start(roots: set[int]) -> subprocess.Popen | None:
    """Watch this process and Ray's processes ``roots``; None where /proc is missing."""
    if not roots or not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(os.getpid()), *map(str, sorted(roots))],
        start_new_session=True,  # a signal to the run's process group does not reach it
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


if __name__ == "__main__":
    watch(int(sys.argv[1]), {int(p) for p in sys.argv[2:]})
