"""The processes of one ``hpcprep run``: which are Ray workers, what they use, and a
killer that SIGKILLs one of them now and then.

Only processes descending from the run's driver are ever looked at (several Ray
clusters of other jobs may share the machine). Of those, a *worker* is a process whose
title Ray set to ``ray::NAME``: a task (``ray::Readgenomics.fasta->MapBatches(EncoderChain)
->Write``), an actor (``ray::MapWorker(...)``, ``ray::RunStats``, ``ray::_StatsActor``),
or an idle worker waiting for one (``ray::IDLE``). The killer picks among the tasks and
actors of the kinds it is given (``kind``). Never killed: the driver, the GCS server, the
raylet, the dashboard and its agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``:
Ray's per-node services, not workers), hpcprep's reaper, and workers still starting (no
``ray::`` title yet) or idle. The process measurement is benchmarks/machine.py's.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from hpcprep.reaper import _stat  # noqa: E402
from machine import Loop, _descendants, _rss_bytes, proc_tree  # noqa: E402

#: Ray's per-node services that carry a ``ray::`` title but run no tasks.
SERVICES = {"DashboardAgent", "RuntimeEnvAgent"}
#: A worker counts as busy at a kill when it used at least this share of a core in the
#: sample before it (an actor waiting between batches, or a task blocked on its input,
#: uses next to nothing).
BUSY_CORES = 0.10


def title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def worker_name(cmdline: str) -> str | None:
    """``MapWorker`` for ``ray::MapWorker(Readfiles->...).__init__``; None if not a Ray worker."""
    if not cmdline.startswith("ray::"):
        return None
    # up to the first "(", "." or blank: "RunStats.take" and "_StatsActor" alike; a
    # task's "Readgenomics.fasta->..." becomes "Readgenomics", enough to tell its kind
    name = re.match(r"[^(. ]*", cmdline[5:]).group(0)
    return name or None


#: What a killed worker was running, as the report groups it.
TASK = "pipeline task (read -> encoders -> write)"
ACTOR = "pipeline actor (Ray Data actor pool: read -> encoders -> write)"
BOOKS = "hpcprep's RunStats actor (the commit group's books)"
RAY_DATA = "Ray Data's own actors (_StatsActor, _AutoscalingCoordinatorActor, ...)"
#: How likely each kind present at a kill is to be chosen, relative to the others: the
#: soak is about hpcprep's pipeline, so its tasks and actors take three times the share of
#: Ray Data's or hpcprep's single bookkeeping actors.
KIND_WEIGHTS = {TASK: 3, ACTOR: 3, BOOKS: 1, RAY_DATA: 1}


def kind(cmdline: str) -> str:
    """Which of TASK, ACTOR, BOOKS, RAY_DATA a worker's title says it runs. Ray cuts a long
    title from the front (``ray::structure->MapBatches(WritingChainActor)).__init__``),
    so the tell-tale words are looked for anywhere in it."""
    name = worker_name(cmdline) or ""
    if name == "RunStats":
        return BOOKS
    if "MapWorker" in cmdline or "WritingChainActor" in cmdline:
        return ACTOR
    if "->" in cmdline or name.startswith(("Read", "Write", "MapBatches")):
        return TASK
    return RAY_DATA


@dataclass
class Snapshot:
    """One sample of the run's processes."""

    driver_rss: int
    workers: dict[int, tuple[str, int, float]]  # pid -> (title, RSS bytes, cores used since last sample)


@dataclass
class Watch(Loop):
    """Samples the driver's and its Ray workers' RSS every ``interval`` seconds."""

    driver: int
    interval: float = 1.0
    samples: list[Snapshot] = field(default_factory=list)
    latest: Snapshot | None = None
    #: every process seen under the driver: pid -> start time (tells a reused pid apart)
    seen: dict[int, int] = field(default_factory=dict)
    _ticks: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> Snapshot:
        parent, ticks = proc_tree()
        hz = os.sysconf("SC_CLK_TCK")
        workers = {}
        for pid in _descendants(self.driver, parent):
            if pid not in self.seen and (st := _stat(pid)):
                self.seen[pid] = st[1]
            text = title(pid)
            name = worker_name(text)
            if name is None or name in SERVICES:
                continue
            cores = (ticks.get(pid, 0) - self._ticks.get(pid, ticks.get(pid, 0))) / hz / self.interval
            workers[pid] = (text, _rss_bytes(pid), cores)
        self._ticks = ticks
        snap = Snapshot(_rss_bytes(self.driver), workers)
        self.latest = snap
        if snap.driver_rss:  # zero once the driver has exited
            self.samples.append(snap)
        return snap

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def start(self) -> Watch:
        self.sample()
        self._start_loop("soak-rss")
        return self

    def left_behind(self, wait: float = 15.0) -> list[int]:
        """Processes of the run still alive after the driver has gone, waiting up to ``wait``
        seconds for Ray's shutdown and hpcprep's reaper to end them."""
        deadline = time.monotonic() + wait
        while True:
            left = sorted(pid for pid, started in self.seen.items() if (st := _stat(pid)) and st[1] == started)
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.5)

    def rss(self) -> dict:
        """Min/max over the samples taken while the run had Ray workers (before that the
        driver is a Python just starting): the driver; any one worker; all workers together."""
        up = [s for s in self.samples if s.workers]
        driver = [s.driver_rss for s in up]
        each = [rss for s in up for (_, rss, _) in s.workers.values() if rss]
        total = [sum(rss for (_, rss, _) in s.workers.values()) for s in up]
        return {
            "samples": len(self.samples),
            "driver": _min_max(driver),
            "worker": _min_max(each),
            "workers_total": _min_max(total),
            "workers_most": max((len(s.workers) for s in self.samples), default=0),
        }


def _min_max(values: list[int]) -> dict:
    return {"min": min(values, default=0), "max": max(values, default=0)}


@dataclass
class Killer(Loop):
    """Every ``low``-``high`` seconds (uniformly drawn), SIGKILLs one worker that is
    running a task or an actor: a kind drawn among those of ``kinds`` (all if None) that
    have a worker at that moment (weighted by KIND_WEIGHTS), then one of its workers."""

    watch: Watch
    rng: random.Random
    low: float = 5.0
    high: float = 20.0
    kinds: set[str] | None = None
    log: Callable[[str], None] = print
    kills: list[dict] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _t0: float = 0.0

    def candidates(self) -> dict[int, tuple[str, int, float]]:
        snap = self.watch.latest
        if snap is None:
            return {}
        found = {}
        for pid, (text, rss, cores) in snap.workers.items():
            name = worker_name(text)
            if name is None or name == "IDLE" or (self.kinds is not None and kind(text) not in self.kinds):
                continue
            found[pid] = (text, rss, cores)
        return found

    def kill_one(self) -> dict | None:
        targets = self.candidates()
        if not targets:
            return None
        # the kind first (weighted, KIND_WEIGHTS), then a process of it: drawn among
        # processes alone, Ray Data's three long-lived actors, present all through a run,
        # would take most kills from the pipeline's own tasks and actors, which come and go
        by_kind: dict[str, list[int]] = {}
        for p, (text, _, _) in targets.items():
            by_kind.setdefault(kind(text), []).append(p)
        kinds = sorted(by_kind)
        chosen = self.rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
        pid = self.rng.choice(sorted(by_kind[chosen]))
        text, rss, cores = targets[pid]
        # the title is read again just before the signal: a process that ended since the
        # sample (and a reused pid) is left alone
        if title(pid) != text:
            return None
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        kill = {
            "at_s": round(time.monotonic() - self._t0, 1),
            "pid": pid,
            "process": text[:160],
            "kind": kind(text),
            "busy": cores >= BUSY_CORES,
            "cores_before": round(cores, 2),
            "rss_mib": round(rss / 2**20, 1),
        }
        self.kills.append(kill)
        self.log(
            f"    +{kill['at_s']:6.1f} s  SIGKILL pid {pid} {text[:70]} "
            f"({'busy' if kill['busy'] else 'idle'}, {cores:.0%} of a core, {kill['rss_mib']:.0f} MiB)"
        )
        return kill

    def _run(self) -> None:
        while not self._stop.wait(self.rng.uniform(self.low, self.high)):
            # no worker to hit yet (Ray still starting, or between commit groups): try
            # again each second rather than skip the whole interval
            while self.kill_one() is None and not self._stop.wait(1.0):
                pass

    def start(self, t0: float) -> Killer:
        self._t0 = t0
        self._start_loop("soak-killer")
        return self
