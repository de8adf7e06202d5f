"""Live progress of ``hpcprep run`` on a terminal.

While a commit group runs, a block of lines under the run's own messages is redrawn
about once a second from the group's books (the ``RunStats`` actor)::

    [hpcprep] 41% of 1.02 GB read, 0:12 elapsed, ETA 0:17
    [hpcprep]   genomics.fasta (reader)    412,331 rows   34,361 rows/s   0 errors
    [hpcprep]   genomics.kmer_counts       401,920 rows   33,493 rows/s   2 errors

Input bytes are what the read tasks report when they finish, so the share read and the
ETA move a read task at a time. The share weighs each input as the read tasks are sized
(its bytes plus a fixed cost per input), so that 20 000 small files are not reported 1%
done when they are half read. Rows are counted by every encoder batch; written rows are
known when a group commits, in the line the runner prints then. Off a terminal (a batch
job's log), under ``--quiet`` and under ``--verbose`` (Ray's own lines would tear the
block) nothing is redrawn: the runner's line per commit is the progress.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from .manifest import sum_stages
from .stages import InputItem

#: Seconds between redraws.
POLL_SECONDS = 1.0

_UP_AND_CLEAR = "\x1b[{n}F\x1b[J"  # to the start of the line n lines up, then clear below


def wanted(stream: TextIO, progress: bool, verbose: bool) -> bool:
    """Whether to draw live lines on ``stream``."""
    isatty = getattr(stream, "isatty", None)
    return bool(progress and not verbose and isatty and isatty() and os.environ.get("TERM") != "dumb")


def stage_title(label: str) -> str:
    """``reader:genomics.fasta`` -> ``genomics.fasta (reader)``; ``encoders[0]:x.y`` -> ``x.y``."""
    where, _, name = label.partition(":")
    if not name:
        return where
    return f"{name} (reader)" if where == "reader" else name


def clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def size_text(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def frame(stages: dict[str, dict], share: float, bytes_total: float, elapsed: float) -> list[str]:
    """The lines of one redraw: the ``share`` of the work read (of ``bytes_total`` bytes of
    input) with elapsed time and ETA, then each stage's rows, rate and errors (reader
    first, then encoders in order)."""
    head = f"{100 * min(share, 1.0):.0f}% of {size_text(bytes_total)} read, {clock(elapsed)} elapsed"
    if 0 < share < 1 and elapsed > 0:
        head += f", ETA {clock(elapsed * (1 - share) / share)}"
    elif share <= 0:
        head += ", ETA --"
    labels = [k for k in stages if k.startswith("reader:")] + sorted(
        (k for k in stages if k.startswith("encoders[")), key=lambda k: int(k[9 : k.index("]")])
    )
    titles = {k: stage_title(k) for k in labels}
    width = max((len(t) for t in titles.values()), default=0)
    lines = [head]
    for k in labels:
        s = stages[k]
        rows = s.get("rows_out", 0)
        rate = rows / elapsed if elapsed > 0 else 0.0
        lines.append(
            f"  {titles[k]:<{width}}  {rows:>12,.0f} rows  {rate:>10,.0f} rows/s  {s.get('errors', 0):,.0f} errors"
        )
    return lines


class LiveProgress:
    """The redrawn block (see the module docstring). ``say`` prints a message above it;
    ``group_started``/``group_done`` bracket each commit group; ``close`` leaves the last
    block on the screen. With ``live`` false only ``say`` prints, and with ``quiet`` not
    even that."""

    def __init__(
        self, stream: TextIO, live: bool, items: list[InputItem], quiet: bool = False, prefix: str = "[hpcprep] "
    ):
        self.stream = stream
        self.bytes_total = sum(i.input_bytes for i in items)
        self.weight_total = sum(i.weight for i in items)
        self.live = live and not quiet
        self.quiet = quiet
        self.prefix = prefix
        self.committed: dict[str, dict] = {}
        self.current: dict[str, dict] = {}
        self.started = time.perf_counter()
        self.drawn = 0
        self.lock = threading.Lock()
        self.stop: threading.Event | None = None
        self.poller: threading.Thread | None = None

    def say(self, msg: str) -> None:
        if self.quiet:
            return
        with self.lock:
            self._clear()
            print(f"{self.prefix}{msg}", file=self.stream, flush=True)
            self._draw()

    def group_started(self, peek) -> None:
        """Redraw from ``peek()`` (the group's books so far: ``{stage: counters}``) every
        ``POLL_SECONDS`` until ``group_done``."""
        if not self.live:
            return
        self.current = {}
        self.stop = threading.Event()

        def poll(stop: threading.Event) -> None:
            while not stop.wait(POLL_SECONDS):
                try:
                    stages = peek()
                except Exception:
                    continue  # the books actor restarting: the runner finds out and says so
                with self.lock:
                    if stop.is_set():
                        return
                    self.current = stages
                    self._clear()
                    self._draw()

        self.poller = threading.Thread(target=poll, args=(self.stop,), name="hpcprep-progress", daemon=True)
        self.poller.start()

    def group_done(self, stages: dict[str, dict] | None) -> None:
        """Stop redrawing; ``stages`` are the group's committed books (None: nothing committed)."""
        if self.stop is not None:
            self.stop.set()
            self.poller.join()
            self.stop = self.poller = None
        with self.lock:
            self.current = {}
            if stages:
                self.committed = sum_stages([self.committed, stages])

    def close(self) -> None:
        self.group_done(None)

    def _lines(self) -> list[str]:
        stages = sum_stages([self.committed, self.current])
        read = [s for k, s in stages.items() if k.startswith("reader:")]
        done = sum(s.get("bytes", 0) + s.get("items", 0) * InputItem.OVERHEAD_BYTES for s in read)
        share = done / self.weight_total if self.weight_total else 0.0
        return frame(stages, share, self.bytes_total, time.perf_counter() - self.started)

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write(_UP_AND_CLEAR.format(n=self.drawn))
            self.drawn = 0

    def _draw(self) -> None:
        if not self.live or not (self.committed or self.current):
            return
        lines = self._lines()
        self.stream.write("".join(f"{self.prefix}{line}\n" for line in lines))
        self.stream.flush()
        self.drawn = len(lines)


def for_run(progress: bool, verbose: bool, items: list[InputItem]) -> LiveProgress:
    """The progress of one ``run`` over ``items`` on standard error (``progress`` false:
    ``--quiet``)."""
    return LiveProgress(sys.stderr, wanted(sys.stderr, progress, verbose), items, quiet=not progress)
