"""The run's errors table: one Parquet file per batch that had bad records.

Workers write their own error rows next to the run's manifest, so bad records
never travel through the driver. Files are named by commit group, attempt and the
key of the work that found the errors (``g00002-<attempt>-<key>.parquet``): a task
that Ray retried rewrites its own file rather than adding a second one, and a resumed
run drops what an unfinished attempt left behind, including files that a dying worker
of a killed run wrote late.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ERRORS_DIR = "errors"
SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("record_id", pa.string()),
        ("stage", pa.string()),
        ("error_type", pa.string()),
        ("message", pa.string()),
    ]
)


def error_row(source, record_id, stage: str, exc_or_type, message: str | None = None) -> dict:
    if isinstance(exc_or_type, BaseException):
        error_type = type(exc_or_type).__name__
        message = message or str(exc_or_type) or error_type
    else:
        error_type = str(exc_or_type)
    return {
        "source": None if source is None else str(source),
        "record_id": None if record_id is None else str(record_id),
        "stage": stage,
        "error_type": error_type,
        "message": message or "",
    }


def group_prefix(group: int) -> str:
    return f"g{group:05d}-"


def parse_name(name: str) -> tuple[int, str] | None:
    """(group, attempt) of a file named ``[part-]g00002-<attempt>-<uuid>.parquet``."""
    stem = name.removeprefix("part-")
    parts = stem.split("-")
    if len(parts) < 3 or not parts[0].startswith("g") or not parts[0][1:].isdigit():
        return None
    return int(parts[0][1:]), parts[1]


def write_errors(run_dir: str, group: int, attempt: str, rows: list[dict], key: str) -> None:
    """The error rows of one unit of work (``key``, see ``execution.work_key``)."""
    if not rows:
        return
    folder = Path(run_dir) / ERRORS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    name = f"{group_prefix(group)}{attempt}-{key}.parquet"
    # a temporary name of its own: two attempts of the same work may overlap
    tmp = folder / f".{name}.{uuid.uuid4().hex}"
    pq.write_table(table, tmp)
    tmp.replace(folder / name)  # readers of the folder never see half a file


def discard_group(run_dir: str, group: int, keep_attempt: str | None = None) -> None:
    """Remove the group's error files, except those of ``keep_attempt``."""
    folder = Path(run_dir) / ERRORS_DIR
    for f in folder.glob(group_prefix(group) + "*.parquet"):
        parsed = parse_name(f.name)
        if parsed is None or parsed[1] != keep_attempt:
            f.unlink(missing_ok=True)


def keep_keys(run_dir: str, group: int, attempt: str, keys: set[str]) -> None:
    """Remove the group's error files of ``attempt`` whose work was counted without errors
    (an attempt that failed for a passing reason, then succeeded on retry)."""
    folder = Path(run_dir) / ERRORS_DIR
    for f in folder.glob(f"{group_prefix(group)}{attempt}-*.parquet"):
        if f.name.removesuffix(".parquet").split("-", 2)[2] not in keys:
            f.unlink(missing_ok=True)


def read_errors(run_dir: str, committed: dict[int, str] | None = None) -> pa.Table:
    """The errors table; with ``committed`` (group -> attempt), only committed attempts."""
    folder = Path(run_dir) / ERRORS_DIR
    files = sorted(folder.glob("g*.parquet")) if folder.exists() else []
    if committed is not None:
        files = [f for f in files if (parse_name(f.name) or (None, None)) in committed.items()]
    if not files:
        return SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in files)
