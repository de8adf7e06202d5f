"""Are two pipeline outputs the same? The runner's Parquet directory against the plain
loop's file: same record ids and row counts, the kernel columns equal (integers exactly,
floats to ``FLOAT_TOLERANCE``); past ``DIGEST_ABOVE_ROWS`` rows, through one 64-bit
digest per row, read a batch at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FLOAT_TOLERANCE = 1e-12


def _sorted_table(path: str, columns: list[str]) -> pa.Table:
    table = pq.read_table(path, columns=columns)
    return table.take(pc.sort_indices(table, [("record_id", "ascending")]))


def _compare_values(a: pa.Array, b: pa.Array) -> str | None:
    """None when equal (floats to FLOAT_TOLERANCE, NaN where NaN), else what differs."""
    if pa.types.is_floating(a.type) or pa.types.is_floating(b.type):
        x = a.to_numpy(zero_copy_only=False).astype(np.float64)
        y = b.to_numpy(zero_copy_only=False).astype(np.float64)
        nx, ny = np.isnan(x), np.isnan(y)
        if not np.array_equal(nx, ny):
            return f"NaN in different places ({int(np.sum(nx != ny))} values)"
        diff = np.abs(x[~nx] - y[~ny])
        if diff.size and diff.max() > FLOAT_TOLERANCE:
            return f"{int(np.sum(diff > FLOAT_TOLERANCE))} values differ by more than {FLOAT_TOLERANCE} (max {diff.max():.3g})"
        return None
    x = a.to_numpy(zero_copy_only=False)
    y = b.to_numpy(zero_copy_only=False)
    if x.shape != y.shape or not np.array_equal(x, y):
        ne = int(np.sum(x != y)) if x.shape == y.shape else "all"
        return f"{ne} values differ"
    return None


def _compare_column(a: pa.ChunkedArray, b: pa.ChunkedArray) -> str | None:
    a, b = a.combine_chunks(), b.combine_chunks()
    nested = [
        pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t) for t in (a.type, b.type)
    ]
    if nested[0] != nested[1]:
        return f"types {a.type} (runner) and {b.type} (plain loop)"
    if nested[0]:
        la = pc.list_value_length(a).to_numpy(zero_copy_only=False)
        lb = pc.list_value_length(b).to_numpy(zero_copy_only=False)
        if not np.array_equal(la, lb):
            return f"list lengths differ in {int(np.sum(la != lb))} rows"
        problem = _compare_values(a.flatten(), b.flatten())
        return f"values: {problem}" if problem else None
    return _compare_values(a, b)


#: Above this many rows, (integer) columns are compared through one 64-bit digest per
#: row, read a batch at a time, so the check of the large genomics run (6.5 GB of k-mer
#: counts per side in memory) fits in the machine.
DIGEST_ABOVE_ROWS = 1_000_000
_WEIGHTS = np.random.default_rng(12345).integers(1, 2**63, size=1 << 16, dtype=np.uint64) | np.uint64(1)


def _row_digests(path: str, columns: list[str]) -> tuple[np.ndarray, int]:
    """One uint64 per row: the record id's hash mixed with a weighted sum of every value of
    the (integer) columns, position by position; and the number of distinct record ids."""
    digests, ids = [], set()
    dataset = pq.ParquetDataset(path) if Path(path).is_dir() else None
    files = [f for f in (dataset.files if dataset else [path])]
    for f in files:
        for batch in pq.ParquetFile(f).iter_batches(columns=["record_id", *columns], batch_size=65536):
            rid = batch.column(0).to_pylist()
            ids.update(rid)
            d = np.array([hash(r) & 0xFFFFFFFFFFFFFFFF for r in rid], dtype=np.uint64)
            for k, name in enumerate(columns, 1):
                col = batch.column(name)
                if pa.types.is_fixed_size_list(col.type):
                    width = col.type.list_size
                    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64).reshape(-1, width)
                    d = d * np.uint64(1000003 + k) + values @ _WEIGHTS[:width]
                else:
                    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
                    values = col.flatten().to_numpy(zero_copy_only=False).astype(np.uint64)
                    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
                    pos = np.arange(values.size) - starts
                    weighted = values * _WEIGHTS[pos % _WEIGHTS.size]
                    sums = np.zeros(len(lengths), dtype=np.uint64)
                    np.add.at(sums, np.repeat(np.arange(len(lengths)), lengths), weighted)
                    d = d * np.uint64(1000003 + k) + sums + lengths.astype(np.uint64)
            digests.append(d)
    out = np.sort(np.concatenate(digests)) if digests else np.zeros(0, np.uint64)
    return out, len(ids)


def _schema(table: str) -> pa.Schema:
    """A Parquet file's schema, or that of the first file of a table directory."""
    path = Path(table)
    return pq.read_schema(next(iter(sorted(path.rglob("*.parquet")))) if path.is_dir() else path)


def check_outputs(compared: list[str], runner_table: str, plain_table: str, plain_rows: int) -> dict:
    """Both outputs sorted by record_id: same ids, same row counts, equal ``compared`` columns."""
    if plain_rows > DIGEST_ABOVE_ROWS:
        return check_digests(runner_table, plain_table, plain_rows, compared)
    runner_schema, plain_schema = _schema(runner_table), _schema(plain_table)
    problems = []
    only_runner = sorted(set(runner_schema.names) - set(plain_schema.names))
    only_plain = sorted(set(plain_schema.names) - set(runner_schema.names))
    if only_runner or only_plain:
        problems.append(f"columns differ: only in the runner's {only_runner}, only in the plain loop's {only_plain}")
    a = _sorted_table(runner_table, ["record_id", *compared])
    b = _sorted_table(plain_table, ["record_id", *compared])
    if a.num_rows != b.num_rows or b.num_rows != plain_rows:
        problems.append(f"row counts: runner {a.num_rows}, plain loop {b.num_rows} (it reported {plain_rows})")
    else:
        ids = a["record_id"].to_numpy(zero_copy_only=False)
        if not np.array_equal(ids, b["record_id"].to_numpy(zero_copy_only=False)):
            problems.append("record_id differs")
        elif len(np.unique(ids)) != len(ids):
            problems.append("record_id is not unique")
        else:
            for col in compared:
                why = _compare_column(a[col], b[col])
                if why:
                    problems.append(f"{col}: {why}")
    type_notes = {
        n: {"runner": str(runner_schema.field(n).type), "plain_loop": str(plain_schema.field(n).type)}
        for n in sorted(set(runner_schema.names) & set(plain_schema.names))
        if runner_schema.field(n).type != plain_schema.field(n).type
    }
    return {
        "equal": not problems,
        "problems": problems,
        "rows": a.num_rows,
        "compared_columns": ["record_id", *compared],
        "float_tolerance": FLOAT_TOLERANCE,
        "column_types_that_differ": type_notes,
    }


def check_digests(runner_table: str, plain_table: str, plain_rows: int, compared: list[str]) -> dict:
    """``check_outputs`` for outputs too large to hold: equal multisets of row digests."""
    a, a_ids = _row_digests(runner_table, compared)
    b, b_ids = _row_digests(plain_table, compared)
    problems = []
    if len(a) != len(b) or len(b) != plain_rows:
        problems.append(f"row counts: runner {len(a)}, plain loop {len(b)} (it reported {plain_rows})")
    elif a_ids != len(a) or b_ids != len(b):
        problems.append(f"record_id is not unique ({a_ids} and {b_ids} distinct ids)")
    elif not np.array_equal(a, b):
        missing = int(np.setdiff1d(a, b, assume_unique=True).size)
        problems.append(f"{missing} rows differ (record_id or values; compared by 64-bit row digests)")
    return {
        "equal": not problems,
        "problems": problems,
        "rows": len(a),
        "compared_columns": ["record_id", *compared],
        "compared_by": "one 64-bit digest per row (record id and every value), read a batch at a time",
    }
