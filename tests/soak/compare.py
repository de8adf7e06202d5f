"""A disturbed run against the undisturbed run of the same spec.

Checked: the command's exit status, the manifest's books (``balanced``, ``inputs =
outputs + errors``, the same counts and per-stage rows as the undisturbed run), and the
rows themselves: no record lost (every record id of the undisturbed output and errors
table is there), none duplicated (no record id twice in the output, in the errors table,
or in both), and the output identical: the same rows by record id, every column equal,
exactly (NaN where NaN). A retry runs the same seeded kernels on the same input, so
there is no reason for any bit to differ.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

#: Per-stage manifest fields that must match the undisturbed run (seconds and placement
#: may differ, the counts must not).
STAGE_COUNTS = ("stage", "items", "rows_in", "rows_out", "errors")


def read_run(out: Path) -> dict:
    """Manifest, output table and errors table of a run directory."""
    manifest = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else None
    return {"manifest": manifest, "table": _parquet(out / "table"), "errors": _parquet(out / "errors")}


def _parquet(folder: Path) -> pa.Table | None:
    """The Parquet files under ``folder``; None when there are none (a run that failed early
    leaves the folder with hpcprep's marker alone)."""
    files = sorted(folder.rglob("*.parquet")) if folder.exists() else []
    return pq.read_table(folder) if files else None


def stage_books(manifest: dict) -> list[dict]:
    return [{k: s.get(k) for k in STAGE_COUNTS} for s in manifest.get("stages", [])]


def _ids(table: pa.Table | None) -> list[str]:
    return [] if table is None else table.column("record_id").to_pylist()


def _sorted(table: pa.Table, keys: list[str] | None = None) -> pa.Table:
    table = table.replace_schema_metadata(None)
    return table.take(pc.sort_indices(table, [(k, "ascending") for k in keys or ["record_id"]]))


def _column_differs(a: pa.ChunkedArray, b: pa.ChunkedArray) -> bool:
    if a.equals(b):
        return False
    # Arrow's equality counts NaN as unequal to NaN: compare float values again with NaN == NaN
    a, b = a.combine_chunks(), b.combine_chunks()
    if a.type != b.type:
        return True
    while pa.types.is_list(a.type) or pa.types.is_large_list(a.type) or pa.types.is_fixed_size_list(a.type):
        if not pc.list_value_length(a).equals(pc.list_value_length(b)) or not a.is_valid().equals(b.is_valid()):
            return True
        a, b = a.flatten(), b.flatten()
    if not pa.types.is_floating(a.type):
        return True
    x, y = a.to_numpy(zero_copy_only=False), b.to_numpy(zero_copy_only=False)
    return not np.array_equal(x, y, equal_nan=True)


def compare(calm: dict, hit: dict, returncode: int) -> dict:
    problems: list[str] = []
    m = hit["manifest"]
    if returncode != 0:
        problems.append(f"exit status {returncode}")
    if m is None:
        problems.append("no manifest.json")
        counts = {}
    else:
        counts = m.get("counts", {})
        if m.get("status") != "complete":
            problems.append(f"manifest status {m.get('status')!r}")
        if not counts.get("balanced") or counts.get("inputs") != counts.get("outputs", 0) + counts.get("errors", 0):
            problems.append(f"books not balanced: {counts}")
        if counts != calm["manifest"]["counts"]:
            problems.append(f"counts {counts}, undisturbed {calm['manifest']['counts']}")
        ours, theirs = stage_books(m), stage_books(calm["manifest"])
        if ours != theirs:
            differ = [a["stage"] for a, b in zip(ours, theirs) if a != b] or "the list of stages"
            problems.append(f"per-stage books differ from the undisturbed run's in {differ}")

    out_ids, err_ids = _ids(hit["table"]), _ids(hit["errors"])
    both = Counter(out_ids) + Counter(err_ids)
    duplicated = sum(n - 1 for n in both.values() if n > 1)
    calm_out, calm_err = set(_ids(calm["table"])), set(_ids(calm["errors"]))
    lost = len(calm_out - set(out_ids)) + len(calm_err - set(err_ids))
    extra = len(set(both) - calm_out - calm_err)
    if duplicated:
        problems.append(f"{duplicated} record id(s) more than once in the output and errors tables")
    if lost:
        problems.append(f"{lost} record(s) of the undisturbed run missing")
    if extra:
        problems.append(f"{extra} record id(s) the undisturbed run does not have")
    if m is not None and counts.get("outputs") != len(out_ids):
        problems.append(f"the manifest counts {counts.get('outputs')} outputs, the table holds {len(out_ids)} rows")

    identical = False
    differing: list[str] = []
    a, b = calm["table"], hit["table"]
    if a is not None and b is not None and a.num_rows == b.num_rows and not duplicated:
        if a.schema.remove_metadata() != b.schema.remove_metadata():
            differing.append("schema")
        else:
            # one column at a time in record-id order: a whole sorted copy of both tables
            # (hundreds of MB of one-hot DNA) is not needed at once
            ia, ib = (pc.sort_indices(t.column("record_id")) for t in (a, b))
            differing = [n for n in a.column_names if _column_differs(a[n].take(ia), b[n].take(ib))]
        identical = not differing and _errors_equal(calm["errors"], hit["errors"])
        if not identical:
            problems.append(f"output differs from the undisturbed run: {differing or 'errors table'}")
    elif b is not None and not (lost or extra or duplicated):
        problems.append("output row count differs from the undisturbed run")

    return {
        "ok": not problems,
        "problems": problems,
        "records": len(out_ids) + len(err_ids),
        "lost": lost,
        "duplicated": duplicated,
        "identical": identical,
        "counts": counts,
    }


def _errors_equal(a: pa.Table | None, b: pa.Table | None) -> bool:
    """The same errors: record, stage, type and message (not the attempt that wrote them)."""
    if a is None or b is None:
        return a is None and b is None
    cols = [c for c in ("record_id", "source", "stage", "error_type", "message") if c in a.column_names]
    # sorted by every column, so the order is fixed even where two rows share a record id
    return _sorted(a.select(cols), cols).equals(_sorted(b.select(cols), cols))
