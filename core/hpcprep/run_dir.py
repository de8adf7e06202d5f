"""The run directory (``run.output``): which runs may use it, and what ``--overwrite`` may delete.

hpcprep marks a directory it makes its run directory with ``RUN_MARKER``, which also
lists what the run's sinks created inside it. ``--overwrite`` clears only a marked
directory, and only what hpcprep wrote there (the manifest, the errors table, the resume
state, Ray's log lines, the listed sink outputs); a directory holding anything else is refused, so a
mistyped ``run.output`` never costs anyone their files.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from .errors_table import ERRORS_DIR
from .run_log import LOG_FILE
from .state import STATE_DIR

RUN_MARKER = "_hpcprep_run.json"
#: What a run writes at the top of its directory, besides sink directories.
RUN_ENTRIES = frozenset(
    {RUN_MARKER, f".{RUN_MARKER}.tmp", "manifest.json", ".manifest.json.tmp", ERRORS_DIR, STATE_DIR, LOG_FILE.parts[0]}
)


class RunDirError(RuntimeError):
    """``run.output`` cannot be used as asked; the message says why and what to do."""


def output_mode(out: Path, overwrite: bool, resume: bool) -> str:
    """``new``, ``overwrite`` or ``resume``: what a run may do with ``out``. Only looks;
    ``prepare`` acts, once the run knows it can start."""
    if overwrite and resume:
        raise RunDirError("--overwrite and --resume exclude each other")
    if out.is_symlink() and not out.exists():
        raise RunDirError(f"run.output {out} is a symbolic link to {out.readlink()}, which does not exist")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"run.output {out} is a file, not a directory")
    entries = _entries(out)
    if not entries:
        return "new"
    if resume:
        if not (out / STATE_DIR / "plan.json").exists():
            raise RunDirError(f"--resume: {out} holds no interrupted hpcprep run (no {STATE_DIR}/plan.json)")
        return "resume"
    if not overwrite:
        raise RunDirError(
            f"output directory {out} is not empty: pass --overwrite to replace it or --resume to continue it"
        )
    if not (out / RUN_MARKER).is_file():
        raise RunDirError(
            f"--overwrite: {out} is not empty and hpcprep did not make it a run directory (no {RUN_MARKER}); "
            "refusing to delete anything in it: choose another run.output, or empty it yourself"
        )
    ours = _own_names(out)
    foreign = sorted(e.name for e in entries if e.name not in ours)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunDirError(
            f"--overwrite: {out} holds files hpcprep did not write ({shown}); refusing to delete it: "
            "move them away or choose another run.output"
        )
    return "overwrite"


def prepare(out: Path, mode: str) -> None:
    """Make ``out`` ready for a run in ``mode``: created and marked, or cleared of an
    earlier run's files (``overwrite``), or left as it is (``resume``)."""
    try:
        if mode == "overwrite":
            ours = _own_names(out)
            for entry in _entries(out):
                if entry.name not in ours:
                    continue  # came after output_mode looked: not ours to delete
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        out.mkdir(parents=True, exist_ok=True)
        if mode != "resume" or not (out / RUN_MARKER).exists():
            _write_marker(out, {"hpcprep_run": datetime.now(UTC).isoformat(timespec="seconds"), "created": []})
    except OSError as exc:
        raise RunDirError(f"run.output {out}: cannot prepare it: {exc.strerror or exc}") from None


def record_created(out: Path) -> None:
    """Add what sinks have created at the top of ``out`` to its marker, so that a later
    ``--overwrite`` knows it as this run's own. Called once the sinks are prepared and
    after every commit (a sink may create its directory with its first write)."""
    marker = _read_marker(out)
    created = set(marker.get("created", [])) | {e.name for e in _entries(out) if e.name not in RUN_ENTRIES}
    if created != set(marker.get("created", [])):
        _write_marker(out, {**marker, "created": sorted(created)})


def record_written(out: Path, name: str) -> None:
    """Add ``name``, a file hpcprep wrote at the top of the run directory ``out`` after the
    run (``hpcprep report``'s page), to the marker, so that ``--overwrite`` may replace it.
    Nothing happens outside a run directory."""
    marker = _read_marker(out)
    if marker and name not in marker.get("created", []):
        _write_marker(out, {**marker, "created": sorted({*marker.get("created", []), name})})


def _own_names(out: Path) -> set[str]:
    return RUN_ENTRIES | set(_read_marker(out).get("created", []))


def _read_marker(out: Path) -> dict:
    try:
        marker = json.loads((out / RUN_MARKER).read_text())
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _write_marker(out: Path, marker: dict) -> None:
    tmp = out / f".{RUN_MARKER}.tmp"
    tmp.write_text(json.dumps(marker) + "\n")
    tmp.replace(out / RUN_MARKER)


def _entries(out: Path) -> list[Path]:
    try:
        return list(out.iterdir()) if out.is_dir() else []
    except OSError as exc:
        raise RunDirError(f"run.output {out}: cannot list it: {exc.strerror or exc}") from None
