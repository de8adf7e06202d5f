"""Ray's log lines during a run: into ``RUN_DIR/_logs/ray.log``, not onto the terminal.

A run's terminal shows hpcprep's own lines (one per commit group) and Ray's errors. Ray's
INFO and WARNING lines (connecting to the cluster, each dataset's execution plan and
progress) go to the run's log file, and to the terminal as well with ``verbose``
(``hpcprep run --verbose``). Lines Ray writes before the run directory may be touched (it
is claimed only once the spec has passed every check) wait in memory until then.
"""

from __future__ import annotations

import logging
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

    def close(self) -> None:
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
