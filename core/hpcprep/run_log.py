"""Ray's log lines during a run: into ``RUN_DIR/_logs/ray.log``, not onto the terminal.

A run's terminal shows hpcprep's own lines (one per commit group) and Ray's errors. Ray's
INFO and WARNING lines (connecting to the cluster, each dataset's execution plan and
progress) go to the run's log file, and to the terminal as well with ``verbose``
(``hpcprep run --verbose``). Lines Ray writes before the run directory may be touched (it
is claimed only once the spec has passed every check) wait in memory until then.

Ray's C++ core in the driver logs past Python's ``logging``, straight to file descriptor 2
(for one, a line each time an actor pool starts: "has constructor arguments in the object
store"). Once the log file is open, and unless ``verbose``, descriptor 2 is a pipe read by
:class:`NativeStderr`: that logger's INFO and WARNING lines and its known notices go to the
log file, everything else (its errors among them) to the terminal as it came. Python's ``sys.stderr`` meanwhile writes to
the terminal directly, so hpcprep's own output never waits on that thread.
"""

from __future__ import annotations

import io
import logging
import os
import re
import sys
import threading
from logging.handlers import MemoryHandler
from pathlib import Path

#: Where a run's Ray log lines go, inside its output directory.
LOG_FILE = Path("_logs") / "ray.log"

#: The driver-side loggers Ray writes to: Ray core's and Ray Data's (which does not propagate).
_LOGGERS = ("ray", "ray.data")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RayLog:
    """Routes the driver's Ray log lines for one run: ``start`` before Ray starts, ``open``
    once the run directory is ready, ``close`` at the end (it puts everything back)."""

    def __init__(self, verbose: bool = False):
        self.verbose = verbose
        self._held = MemoryHandler(capacity=1_000_000, flushLevel=logging.CRITICAL + 1)
        self._held.setLevel(logging.INFO)
        self._target: logging.Handler = self._held
        self._file: logging.FileHandler | None = None
        self._quieted: list[tuple[logging.Handler, int]] = []
        self._native: NativeStderr | None = None
        self.path: Path | None = None

    def start(self) -> None:
        """Before Ray starts, and again once Ray Data is imported (it replaces its logger's
        handlers then); a second call adds nothing twice."""
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            if self._target not in logger.handlers:
                logger.addHandler(self._target)
            if not self.verbose:
                for handler in logger.handlers:
                    if _is_console(handler) and handler.level < logging.ERROR and handler is not self._target:
                        self._quieted.append((handler, handler.level))
                        handler.setLevel(logging.ERROR)

    def open(self, run_dir: Path) -> None:
        """Write what was held, and every later line, to ``run_dir / LOG_FILE`` (appended to on
        ``--resume``)."""
        self.path = run_dir / LOG_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = logging.FileHandler(self.path, encoding="utf-8")
        self._file.setLevel(logging.INFO)
        self._file.setFormatter(logging.Formatter(_FORMAT))
        self._held.setTarget(self._file)
        self._held.flush()
        self._swap(self._file)
        if not self.verbose and self._native is None:
            self._native = NativeStderr(self._file)
            self._native.start()

    def close(self) -> None:
        if self._native is not None:
            self._native.stop()
            self._native = None
        self._swap(None)
        for handler, level in self._quieted:
            handler.setLevel(level)
        self._quieted.clear()
        self._held.close()
        if self._file is not None:
            self._file.close()

    def _swap(self, new: logging.Handler | None) -> None:
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            logger.removeHandler(self._target)
            if new is not None:
                logger.addHandler(new)
        if new is not None:
            self._target = new


def _is_console(handler: logging.Handler) -> bool:
    """A handler that writes to the terminal (Ray's own, or a plain stream handler), not a file."""
    if isinstance(handler, (logging.FileHandler, MemoryHandler)):
        return False
    return isinstance(handler, logging.StreamHandler) or type(handler).__name__ == "PlainRayHandler"


def _descriptor(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


class NativeStderr:
    """File descriptor 2 as a pipe, read by a thread that sends the native Ray logger's INFO and WARNING lines to
    a log handler's file and every other byte to where descriptor 2 pointed before (module docstring)."""

    #: Ray's C++ log line: ``[2026-12-05 03:37:33,123 W 1234 5678] core_worker.cc:...``.
    LINE = re.compile(rb"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ ([IWEF]) \d+ \d+\] ")

    #: Lines Ray's C++ logger marks as errors that are not errors of the run: every actor pool Ray Data starts
    #: gets its constructor from the object store, and Ray says at ERROR that such an actor could not be restarted
    #: if those objects were lost (a run that loses one reruns its commit group).
    NOTICES = (b"has constructor arguments in the object store",)

    def __init__(self, log: logging.FileHandler):
        self.log = log

    def start(self) -> None:
        sys.stderr.flush()
        self._terminal = os.dup(2)
        self._stderr = sys.stderr
        if _descriptor(sys.stderr) == 2:  # (not when something, such as a test, holds it in memory)
            raw = io.FileIO(os.dup(self._terminal), "w")
            encoding = getattr(self._stderr, "encoding", None) or "utf-8"
            sys.stderr = io.TextIOWrapper(raw, encoding=encoding, errors="backslashreplace", line_buffering=True)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._thread = threading.Thread(target=self._pump, args=(read,), name="hpcprep-native-stderr", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        ours, sys.stderr = sys.stderr, self._stderr
        ours.flush()
        os.dup2(self._terminal, 2)  # the pipe's last writer is gone: the thread reads to its end and stops
        self._thread.join(timeout=2)
        if ours is not self._stderr:
            ours.close()
        if not self._thread.is_alive():
            os.close(self._terminal)
        # else a child process started meanwhile still holds the pipe: the thread forwards its output until it
        # exits, so the descriptor it writes to stays open.

    def _pump(self, read: int) -> None:
        pending = b""
        with open(read, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    self._route(line + b"\n")
                if pending and not pending.startswith(b"["):  # not a log line: pass on now, it may be a prompt
                    self._route(pending)
                    pending = b""
        if pending:
            self._route(pending)

    def _route(self, data: bytes) -> None:
        m = self.LINE.match(data)
        if m and (m.group(1) in (b"I", b"W") or any(n in data for n in self.NOTICES)):
            self.log.acquire()
            try:
                if self.log.stream is not None:  # None once the run's log is closed
                    self.log.stream.write(data.decode("utf-8", "replace"))
                    self.log.stream.flush()
                    return
            finally:
                self.log.release()
        try:
            os.write(self._terminal, data)
        except OSError:
            pass  # the terminal is gone; nothing else to do with the bytes
