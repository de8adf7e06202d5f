"""Nearest-neighbour search in a LanceDB table written by the ``lancedb`` sink.

The backend of ``hpcprep search``: a query vector (from a file, or the vector of a
record) in, the k nearest records out, with their scalar columns and ``_distance``.
The distance is the one the table was indexed with (the sink's ``metric``); ``l2`` is
squared Euclidean, as LanceDB defines it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .columns import is_scalar_type

#: Columns the sink adds for its own bookkeeping; not shown in results.
INTERNAL_PREFIX = "_hpcprep"
#: Lossy indexes (compressed vectors) re-rank this many times k candidates exactly by default.
DEFAULT_REFINE = 10


class SearchError(Exception):
    """A search that cannot run: missing table, bad query, unknown record id."""


# -- query vectors -----------------------------------------------------------------------


def read_query_vector(path) -> np.ndarray:
    """One query vector (float32) from a ``.npy`` file or a text file of numbers.

    Text may separate numbers with whitespace, commas or semicolons, across lines, and
    may wrap them in brackets (``[0.1, 0.2]``).
    """
    p = Path(path)
    if not p.is_file():
        raise SearchError(f"query vector file {path} does not exist")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except Exception as exc:
            raise SearchError(f"{path}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 1:
            raise SearchError(f"{path}: expected one vector (a 1-D array), got an array of shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise SearchError(f"{path}: expected numbers, got an array of {arr.dtype}")
    else:
        try:
            text = p.read_text()
        except UnicodeDecodeError:
            raise SearchError(
                f"{path}: not a text file; give a .npy file or numbers separated by spaces or commas"
            ) from None
        values: list[float] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            for token in re.split(r"[\s,;\[\]]+", line):
                if not token:
                    continue
                try:
                    values.append(float(token))
                except ValueError:
                    raise SearchError(
                        f"{path}, line {lineno}: {token!r} is not a number; expected numbers separated "
                        "by whitespace or commas"
                    ) from None
        arr = np.array(values, dtype=np.float64)
    if arr.size == 0:
        raise SearchError(f"{path}: no numbers in the file")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise SearchError(f"{path}: the vector holds NaN or infinite values")
    return arr


# -- tables ---------------------------------------------------------------------------


def s3_storage_options(
    uri: str,
    endpoint_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    region: str | None = None,
) -> dict[str, str] | None:
    """LanceDB object-store options for an s3:// URI, from the arguments or the usual
    ``AWS_*`` environment variables (as ``hpcprep.storage`` reads them). They hold
    secrets: never log them."""
    if not uri.startswith(("s3://", "s3+ddb://")):
        return None
    env = os.environ.get
    opts: dict[str, str] = {}
    endpoint = endpoint_url or env("AWS_ENDPOINT_URL_S3") or env("AWS_ENDPOINT_URL")
    if endpoint:
        opts["aws_endpoint"] = endpoint
        if endpoint.startswith("http://"):
            opts["allow_http"] = "true"
    access, secret = access_key or env("AWS_ACCESS_KEY_ID"), secret_key or env("AWS_SECRET_ACCESS_KEY")
    if access and secret:
        opts["aws_access_key_id"] = access
        opts["aws_secret_access_key"] = secret
    region = region or env("AWS_REGION") or env("AWS_DEFAULT_REGION")
    if region:
        opts["aws_region"] = region
    return opts


def table_names(db) -> list[str]:
    names: list[str] = []
    token = None
    while True:
        resp = db.list_tables(page_token=token)
        names += list(resp.tables)
        token = getattr(resp, "page_token", None)
        if not token:
            return sorted(names)


def open_table(uri: str, table: str, storage_options: dict | None = None):
    """The LanceDB table ``table`` at ``uri``, or a SearchError that lists the tables there."""
    import lancedb

    if "://" not in uri and not os.path.isdir(uri):
        raise SearchError(f"no LanceDB database at {uri}: the directory does not exist")
    if storage_options is None:
        storage_options = s3_storage_options(uri)
    try:
        db = lancedb.connect(uri, storage_options=storage_options)
        names = table_names(db)
    except Exception as exc:
        raise SearchError(f"cannot open the LanceDB database {uri}: {type(exc).__name__}: {exc}") from None
    if table not in names:
        there = f"tables there: {', '.join(names)}" if names else "it holds no tables"
        raise SearchError(f"no table {table!r} in {uri}; {there}")
    return db.open_table(table)


def vector_columns(schema: pa.Schema) -> list[str]:
    """Columns of fixed-size float vectors."""
    return [f.name for f in schema if pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type)]


def _pick_vector_column(tbl, vector_column: str | None) -> str:
    schema = tbl.schema
    candidates = vector_columns(schema)
    if vector_column is not None:
        if vector_column not in schema.names:
            raise SearchError(f"table {tbl.name!r} has no column {vector_column!r} (vector columns: {candidates})")
        if vector_column not in candidates:
            raise SearchError(
                f"column {vector_column!r} of table {tbl.name!r} is {schema.field(vector_column).type}, "
                "not a fixed-size float vector"
            )
        return vector_column
    meta = schema.metadata or {}
    preferred = meta.get(b"hpcprep.vector_column", b"").decode()
    if preferred in candidates:
        return preferred
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SearchError(f"table {tbl.name!r} has no vector column (fixed-size float list); columns: {schema.names}")
    raise SearchError(f"table {tbl.name!r} has several vector columns {candidates}; choose one with --vector-column")


def vector_index(tbl, vector_column: str) -> dict | None:
    """``{"name", "type", "metric"}`` of the vector index on the column, or None."""
    for idx in tbl.list_indices():
        if list(idx.columns) == [vector_column]:
            stats = tbl.index_stats(idx.name)
            if stats is None or not getattr(stats, "distance_type", None):
                continue  # a scalar index
            return {"name": idx.name, "type": stats.index_type, "metric": stats.distance_type}
    return None


def table_metric(tbl, vector_column: str) -> str:
    """The index's metric, else the one the sink recorded, else l2."""
    index = vector_index(tbl, vector_column)
    if index:
        return index["metric"]
    meta = tbl.schema.metadata or {}
    return meta.get(b"hpcprep.metric", b"l2").decode() or "l2"


def result_columns(schema: pa.Schema) -> list[str]:
    """Scalar columns shown in results: ids, source, numbers, strings, times."""
    keep = [f.name for f in schema if not f.name.startswith(INTERNAL_PREFIX) and is_scalar_type(f.type)]
    first = [c for c in ("record_id", "source") if c in keep]
    return first + [c for c in keep if c not in first]


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def vector_of(tbl, vector_column: str, record_id: str) -> np.ndarray:
    """The vector of the record ``record_id`` (the first, if several rows share it).

    A value that is no record id may name the record instead, as ``NAME`` or ``NAME:OFFSET``
    in tables with a ``name`` (and ``offset``) column, such as genomics windows
    (``chr3:8001000``); a name shared by several rows needs its offset."""
    names = tbl.schema.names
    if "record_id" in names:
        rows = _rows_where(tbl, vector_column, f"record_id = {_sql_str(record_id)}")
        if rows.num_rows:
            return _vector(rows, vector_column, record_id)
    by_name = _name_filter(record_id, names)
    if by_name is not None:
        where, shown = by_name
        count = tbl.count_rows(where)
        if count == 1:
            return _vector(_rows_where(tbl, vector_column, where), vector_column, record_id)
        if count > 1:
            raise SearchError(
                f"{count} records of table {tbl.name!r} have {shown}: add the offset (NAME:OFFSET) or use a record_id"
            )
    raise SearchError(f"no record {record_id!r} in table {tbl.name!r}" + _how_to_name(tbl, names))


def _rows_where(tbl, vector_column: str, where: str) -> pa.Table:
    return tbl.search().where(where).select([vector_column]).limit(1).to_arrow()


def _vector(rows: pa.Table, vector_column: str, what: str) -> np.ndarray:
    value = rows.column(vector_column)[0]
    if not value.is_valid:
        raise SearchError(f"record {what!r} has no vector in column {vector_column!r}")
    return np.asarray(value.values.to_numpy(zero_copy_only=False), dtype=np.float32)


def _name_filter(text: str, names: list[str]) -> tuple[str, str] | None:
    """The filter (and its description) for ``NAME:OFFSET`` or ``NAME``; None without a name column."""
    if "name" not in names:
        return None
    head, _, tail = text.rpartition(":")
    if head and tail.isdigit() and "offset" in names:
        return f"name = {_sql_str(head)} AND offset = {int(tail)}", f"name {head!r} and offset {tail}"
    return f"name = {_sql_str(text)}", f"name {text!r}"


def _how_to_name(tbl, names: list[str]) -> str:
    """How records of this table can be named, with a real id as the example."""
    ways = []
    if "record_id" in names:
        first = tbl.search().select(["record_id"]).limit(1).to_arrow()
        example = f", e.g. {first.column('record_id')[0].as_py()!r}" if first.num_rows else ""
        ways.append(f"a record_id (a hash of the source and the position{example})")
    if "name" in names:
        ways.append("NAME:OFFSET (its name and offset columns)" if "offset" in names else "its name")
    return "; name a record by " + " or ".join(ways) if ways else ""


def search_table(
    tbl,
    vector: np.ndarray,
    vector_column: str,
    k: int = 10,
    *,
    exact: bool = False,
    metric: str | None = None,
    columns: list[str] | None = None,
    nprobes: int | None = None,
    refine_factor: int | None = None,
    with_row_id: bool = False,
) -> pa.Table:
    """The k nearest rows to ``vector`` as Arrow, nearest first (``_distance`` column).

    Without ``exact`` an ANN index on the column is used; lossy indexes (PQ, SQ, RQ)
    re-rank ``refine_factor * k`` candidates with exact distances (default 10).
    """
    metric = metric or table_metric(tbl, vector_column)
    q = tbl.search(vector, vector_column_name=vector_column).distance_type(metric).limit(k)
    if columns is not None:
        q = q.select([*columns, "_distance"])
    if with_row_id:
        q = q.with_row_id(True)
    if exact:
        q = q.bypass_vector_index()
    else:
        index = vector_index(tbl, vector_column)
        if index is not None:
            if nprobes is not None:
                q = q.nprobes(nprobes)
            lossy = any(s in index["type"].upper() for s in ("PQ", "SQ", "RQ"))
            if refine_factor is None and lossy:
                refine_factor = DEFAULT_REFINE
            if refine_factor:
                q = q.refine_factor(refine_factor)
    return q.to_arrow()


def nearest(
    uri: str,
    table: str,
    vector=None,
    record_id: str | None = None,
    k: int = 10,
    vector_column: str | None = None,
    exact: bool = False,
    *,
    nprobes: int | None = None,
    refine_factor: int | None = None,
    storage_options: dict | None = None,
) -> list[dict[str, Any]]:
    """The k nearest records to ``vector``, or to the vector of record ``record_id``.

    Each result is a dict of the record's scalar columns (``record_id`` and ``source``
    first) plus ``_distance``, nearest first. ``exact`` skips the ANN index (a full scan).
    """
    if (vector is None) == (record_id is None):
        raise SearchError("give exactly one of a query vector or a record id")
    if k < 1:
        raise SearchError(f"k must be at least 1, got {k}")
    tbl = open_table(uri, table, storage_options)
    vc = _pick_vector_column(tbl, vector_column)
    dim = tbl.schema.field(vc).type.list_size
    if record_id is not None:
        query = vector_of(tbl, vc, record_id)
    else:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.size != dim:
            raise SearchError(f"the query vector has {query.size} values, but column {vc!r} has dimension {dim}")
        if not np.all(np.isfinite(query)):
            raise SearchError("the query vector holds NaN or infinite values")
    columns = result_columns(tbl.schema)
    result = search_table(tbl, query, vc, k, exact=exact, columns=columns, nprobes=nprobes, refine_factor=refine_factor)
    rows = result.select([*columns, "_distance"]).to_pylist()
    # equal distances (a file and its copy) in the order of their names, the same every time
    rows.sort(key=lambda r: (r["_distance"], str(r.get("source", "")), str(r.get("record_id", ""))))
    return rows


def index_recall(tbl, vector_column: str, queries: int = 50, k: int = 10, seed: int = 0) -> dict:
    """Recall@k of the ANN search (as ``nearest`` runs it) against exact search.

    Queries are the vectors of ``queries`` rows drawn at random (seeded).
    """
    n = tbl.count_rows()
    if n == 0:
        return {"queries": 0, "k": k, "recall": None}
    rng = np.random.default_rng(seed)
    offsets = sorted(rng.choice(n, size=min(queries, n), replace=False).tolist())
    sample = tbl.take_offsets(offsets).select([vector_column]).to_arrow().column(vector_column)
    metric = table_metric(tbl, vector_column)
    hits = total = 0
    for value in sample:
        if not value.is_valid:
            continue
        q = np.asarray(value.values.to_numpy(zero_copy_only=False), dtype=np.float32)
        args = dict(metric=metric, columns=[], with_row_id=True)
        ann = set(search_table(tbl, q, vector_column, k, **args).column("_rowid").to_pylist())
        true = search_table(tbl, q, vector_column, k, exact=True, **args).column("_rowid").to_pylist()
        hits += len(ann & set(true))
        total += len(true)
    index = vector_index(tbl, vector_column) or {}
    lossy = any(s in str(index.get("type", "")).upper() for s in ("PQ", "SQ", "RQ"))
    return {
        "queries": len(sample),
        "k": k,
        "metric": metric,
        "recall": round(hits / total, 4) if total else None,
        "nprobes": "LanceDB default",
        "refine_factor": DEFAULT_REFINE if lossy else None,
    }
