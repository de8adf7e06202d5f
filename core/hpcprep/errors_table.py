"""The run's errors table: one Parquet file per batch that had bad records.

Workers write their own error rows next to the run's manifest, so bad records
never travel through the driver. Files are named by commit group so that a resumed
run can drop what an interrupted group left behind.
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


def write_errors(run_dir: str, group: int, rows: list[dict]) -> None:
    if not rows:
        return
    folder = Path(run_dir) / ERRORS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    name = f"{group_prefix(group)}{uuid.uuid4().hex}.parquet"
    tmp = folder / ("." + name)
    pq.write_table(table, tmp)
    tmp.rename(folder / name)  # readers of the folder never see half a file


def discard_group(run_dir: str, group: int) -> None:
    folder = Path(run_dir) / ERRORS_DIR
    for f in folder.glob(group_prefix(group) + "*.parquet"):
        f.unlink()


def read_errors(run_dir: str) -> pa.Table:
    folder = Path(run_dir) / ERRORS_DIR
    files = sorted(folder.glob("g*.parquet")) if folder.exists() else []
    if not files:
        return SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in files)
