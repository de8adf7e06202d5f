"""What the benchmarks record about the machine: its CPU model and, from /proc, every
process's parent and CPU ticks (to tell our processes' CPU time from other jobs')."""

from __future__ import annotations

import os
import platform
from pathlib import Path


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
