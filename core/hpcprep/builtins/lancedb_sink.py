"""``lancedb``: records into a LanceDB table (local or s3://), with its ANN index built at the end.

One module for the sink's whole life, driver side (prepare, commit, discard, finish
with compaction and the index) and worker side (the writer), since both follow one
protocol described here; converting blocks to what Lance stores is in ``lance_arrow``.

How the rows get in
-------------------
Each Ray write task writes its rows as Lance fragments (data files of the table that
no version lists yet) and returns their metadata; no data passes through the driver.
After each commit group the driver commits all the group's fragments in one Lance
transaction: the table gains one version per group, not one per write task, and
fragments of a write task that failed and was retried are never committed, since only
the results of tasks that finished reach the driver. The first commit creates the
table, from the schema the writers brought (they must agree; the error names the
columns where they do not); later groups' writers conform to the table's schema.

On S3, Lance needs conditional writes (``If-None-Match``, which AWS S3 has) for
commits that may race with other writers of the same table (``mode = "append"``);
for a store without them, use a ``s3+ddb://`` URI (DynamoDB commit lock).

How a resumed run stays exact
-----------------------------
Every row carries ``_hpcprep_write`` = ``<run>:g<group>:<attempt>:<task>``: the run
(stable across ``--resume``, new on ``--overwrite``), the commit group, the runner's
attempt and the write task. A driver killed between the Lance commit and the run's
own record of the group leaves the group's rows in the table; ``discard_group``
deletes this run's rows of a group written by any other attempt, and ``commit``
checks that the table holds exactly the rows the writers reported. Rows of other
runs (``mode = "append"``) are never touched.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field

from ..columns import is_scalar_type
from ..stages import FLOAT_VECTOR_TYPES, Input, LocalPath, Params, Sink, SinkContext, SinkWriter, StageExamples
from .lance_arrow import conform, to_lance_table
from .off_driver import run_off_driver

log = logging.getLogger("hpcprep.lancedb")

WRITE_COLUMN = "_hpcprep_write"
META_RUN_DIR = "hpcprep.run_dir"
META_METRIC = "hpcprep.metric"
META_VECTOR = "hpcprep.vector_column"

INDEX_TYPES = ("IVF_PQ", "IVF_FLAT", "IVF_SQ", "IVF_RQ", "IVF_HNSW_SQ", "IVF_HNSW_PQ", "IVF_HNSW_FLAT")
PQ_TYPES = ("IVF_PQ", "IVF_HNSW_PQ")
HNSW_TYPES = ("IVF_HNSW_SQ", "IVF_HNSW_PQ", "IVF_HNSW_FLAT")
#: ``index = "auto"``: from this many rows an ANN index (AUTO_ANN_TYPE); below it, for a
#: metric other than LanceDB's default l2, one partition of raw vectors (a copy of the
#: vectors, searched whole, so every search stays exact), and for l2 no index. Either index
#: carries the metric, so a plain ``table.search()`` of any LanceDB client measures distance
#: as the spec says (without an index LanceDB uses l2). IVF_SQ builds in seconds (100 000 x
#: 512: 4.7 s on 2 cores, against 37 s for IVF_PQ and 57 s for IVF_HNSW_SQ) and keeps 8 bits
#: per dimension.
AUTO_ANN_ROWS = 100_000
AUTO_ANN_TYPE = "IVF_SQ"
#: Queries sampled to measure an ANN index's recall@10 unless report_recall says otherwise.
DEFAULT_RECALL_QUERIES = 100
TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class LanceDBSinkParams(Params):
    uri: LocalPath = Field(
        description="LanceDB database: a local directory (shared by all nodes of a cluster) or s3://bucket/prefix"
    )
    table: str = Field(description="table name in the database (letters, digits, _ . -)")
    mode: Literal["create", "overwrite", "append"] = Field(
        "create",
        description="create: fail if the table exists (unless resuming); overwrite: replace it; "
        "append: add rows, creating it if missing",
    )
    vector_column: str = Field(
        "vector", description="column of fixed-length float vectors (stored as float32) to index and search"
    )
    columns: list[str] | None = Field(
        None,
        description="columns stored beside the vector; default: record_id, source and every scalar column "
        "(numbers, text, flags, times), so lists and bytes (one-hot matrices, file contents) stay in Parquet",
    )
    index: Literal[(*INDEX_TYPES, "auto", "none")] | None = Field(  # type: ignore[valid-type]
        "auto",
        description="index built at the end: auto (an IVF_SQ index from 100 000 rows; below, one exact "
        "partition that carries the metric), none, or " + ", ".join(INDEX_TYPES),
    )
    metric: Literal["l2", "cosine", "dot"] = Field(
        "l2", description="distance of the index and of `hpcprep search` (l2 is squared Euclidean)"
    )
    num_partitions: int | None = Field(None, ge=1, description="IVF partitions (default: LanceDB's, ~sqrt(rows))")
    num_sub_vectors: int | None = Field(
        None, ge=1, description="PQ sub-vectors, must divide the dimension (PQ indexes; default: LanceDB's)"
    )
    num_bits: int | None = Field(
        None, ge=1, le=8, description="bits per PQ code (4 or 8) or per RQ dimension (default: LanceDB's)"
    )
    max_iterations: int = Field(50, ge=1, description="k-means iterations when training the IVF partitions")
    sample_rate: int = Field(
        256,
        ge=1,
        description="training vectors sampled per partition; LanceDB trains at most rows / sample_rate partitions",
    )
    hnsw_m: int = Field(20, ge=2, description="HNSW edges per node (IVF_HNSW_* indexes)")
    hnsw_ef_construction: int = Field(300, ge=1, description="HNSW candidate list size while building")
    accelerator: Literal["cuda", "mps"] | None = Field(
        None, description="train the IVF/PQ index on this device (needs torch); default: CPU"
    )
    compact: bool = Field(
        True,
        description="compact the small fragments of parallel writers before indexing; a table this run "
        "created (not mode = append) also drops the versions of its appends, so it takes its data's size on disk",
    )
    report_recall: int | None = Field(
        None,
        ge=0,
        description="sample this many rows as queries and report the index's recall@10 against exact search "
        f"(0: off; default {DEFAULT_RECALL_QUERIES} for an ANN index)",
    )
    write_buffer_mb: int = Field(
        256, ge=1, description="a write task writes a fragment each time it holds this many MiB"
    )
    endpoint_url: str | None = Field(None, description="S3 endpoint (default: AWS_ENDPOINT_URL)")
    access_key: str | None = Field(None, description="S3 access key (default: AWS_ACCESS_KEY_ID); never logged")
    secret_key: str | None = Field(None, description="S3 secret key (default: AWS_SECRET_ACCESS_KEY); never logged")
    region: str | None = Field(None, description="S3 region (default: AWS_REGION)")


class LanceDBSink(Sink):
    """LanceDB table for vector search, local or s3://, with an optional ANN index."""

    name = "lancedb"
    Params = LanceDBSinkParams

    def __init__(self, params=None):
        super().__init__(params)
        self.inputs = (Input(self.params.vector_column, FLOAT_VECTOR_TYPES, "one vector per row, stored as float32"),)
        self._run_id = ""  # set by prepare; travels to the workers with the sink
        self._schema: pa.Schema | None = None  # the table's, once it exists; writers conform to it

    # -- configuration ---------------------------------------------------------------

    def target(self) -> str:
        return f"{self.params.uri} (table {self.params.table})"

    def problems(self) -> list[str]:
        p = self.params
        out = []
        if not TABLE_NAME.match(p.table):
            out.append(f"table: {p.table!r} is not a valid LanceDB table name (use letters, digits, _ . -)")
        if "://" not in p.uri:
            from ..storage import check_writable

            why = check_writable(Path(p.uri))
            if why:
                out.append(f"uri: {why}")
        if p.vector_column == WRITE_COLUMN:
            out.append(f"vector_column: {WRITE_COLUMN} is the sink's own provenance column")
        index = p.index
        if p.num_sub_vectors is not None and index not in PQ_TYPES:
            out.append(f"num_sub_vectors applies to {' and '.join(PQ_TYPES)} indexes, not index = {index!r}")
        if p.num_bits is not None and index not in (*PQ_TYPES, "IVF_RQ"):
            out.append(f"num_bits applies to PQ and IVF_RQ indexes, not index = {index!r}")
        if p.num_bits is not None and index in PQ_TYPES and p.num_bits not in (4, 8):
            out.append(f"num_bits: PQ codes have 4 or 8 bits, got {p.num_bits}")
        if p.report_recall and index in (None, "none"):
            out.append("report_recall needs an index to measure")
        return out

    def storage_options(self) -> dict[str, str] | None:
        """Object-store options for lancedb (secrets included: never log them)."""
        from ..search import s3_storage_options

        p = self.params
        return s3_storage_options(p.uri, p.endpoint_url, p.access_key, p.secret_key, p.region)

    def _db(self):
        import lancedb

        return lancedb.connect(self.params.uri, storage_options=self.storage_options())

    def _open(self, db=None):
        """The table, or None if it does not exist (a folder holding only fragments that
        no commit lists yet is not a table)."""
        from ..search import table_names

        db = db or self._db()
        if self.params.table not in table_names(db):
            return None
        try:
            return db.open_table(self.params.table)
        except ValueError as exc:
            if "was not found" in str(exc):
                return None
            raise

    def _where(self, *prefixes: str, exclude: str | None = None) -> str:
        parts = [f"{WRITE_COLUMN} LIKE '{p}%'" for p in prefixes]
        if exclude:
            parts.append(f"{WRITE_COLUMN} NOT LIKE '{exclude}%'")
        return " AND ".join(parts)

    def _group_prefix(self, group: int) -> str:
        return f"{self._run_id}:g{group:05d}:"

    # -- driver side ------------------------------------------------------------------

    def prepare(self, ctx: SinkContext) -> None:
        p = self.params
        self._run_id = self._load_run_id(ctx)
        db = self._db()
        table = self._open(db)
        where = f"lancedb sink: table {p.table!r} in {p.uri}"
        if table is not None and ctx.mode != "resume":
            if p.mode == "create":
                meta = table.schema.metadata or {}
                ours = meta.get(META_RUN_DIR.encode(), b"").decode() == ctx.run_dir
                if not (ctx.mode == "overwrite" and ours):
                    raise FileExistsError(
                        f'{where} already exists; set mode = "overwrite" to replace it or '
                        'mode = "append" to add rows to it'
                    )
                db.drop_table(p.table)
                table = None
            elif p.mode == "overwrite":
                db.drop_table(p.table)
                table = None
        if table is not None:
            self._check_existing(table, where)
            table = self._open(db)
        self._schema = None if table is None else table.schema

    def _check_existing(self, table, where: str) -> None:
        schema = table.schema
        vc = self.params.vector_column
        if vc not in schema.names:
            raise ValueError(f"{where} has no column {vc!r} (it has {schema.names}); set vector_column")
        t = schema.field(vc).type
        if not (pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type)):
            raise ValueError(f"{where}: column {vc!r} is {t}, not a fixed-size list of floats")
        if WRITE_COLUMN not in schema.names:
            # A table hpcprep did not create: give it the provenance column (all null).
            table.add_columns(pa.field(WRITE_COLUMN, pa.string()))

    def _load_run_id(self, ctx: SinkContext) -> str:
        """A run id kept in the run directory: the same on --resume, new otherwise."""
        key = hashlib.blake2b(f"{self.params.uri}\0{self.params.table}".encode(), digest_size=6).hexdigest()
        path = Path(ctx.run_dir) / "_state" / f"lancedb-{key}.json"
        if ctx.mode == "resume" and path.exists():
            return json.loads(path.read_text())["run_id"]
        run_id = uuid.uuid4().hex[:12]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"run_id": run_id, "uri": self.params.uri, "table": self.params.table}))
        return run_id

    def discard_group(self, ctx: SinkContext, sources: list[str]) -> None:
        # In a new or overwritten run the run id is fresh: no other attempt of it exists.
        if ctx.mode != "resume":
            return
        table = self._open()
        if table is None:
            return
        prefix = self._group_prefix(ctx.group)
        where = self._where(prefix, exclude=f"{prefix}{_attempt(ctx)}:")
        stale = table.count_rows(where)
        if stale:
            table.delete(where)
            log.info("lancedb sink: removed %d rows of an interrupted attempt of group %d", stale, ctx.group)

    def dataset_uri(self) -> str:
        return f"{self.params.uri.rstrip('/')}/{self.params.table}.lance"

    def commit(self, ctx: SinkContext, results: list) -> dict:
        import lance

        rows = sum(r["rows"] for r in results)
        fragments = [f for r in results for f in r["fragments"]]
        if not fragments:
            return {"rows": 0, "fragments": 0}
        options = self.storage_options()
        table = self._open()
        if table is None:
            schema = _agreed_schema([r["schema"] for r in results if r["rows"]], self.params.table)
            p = self.params
            meta = {META_RUN_DIR: ctx.run_dir, META_METRIC: p.metric, META_VECTOR: p.vector_column}
            operation = lance.LanceOperation.Overwrite(schema.with_metadata(meta), fragments)
            lance.LanceDataset.commit(self.dataset_uri(), operation, storage_options=options)
        else:
            operation = lance.LanceOperation.Append(fragments)
            lance.LanceDataset.commit(
                self.dataset_uri(), operation, read_version=table.version, storage_options=options
            )
        table = self._open()
        self._schema = table.schema
        held = table.count_rows(self._where(f"{self._group_prefix(ctx.group)}{_attempt(ctx)}:"))
        if held != rows:
            raise RuntimeError(
                f"lancedb sink: table {self.params.table!r} holds {held} rows written for commit group "
                f"{ctx.group}, but its write tasks reported {rows}; run again with --resume to redo the group"
            )
        return {"rows": rows, "fragments": len(fragments), "version": table.version}

    def finish(self, ctx: SinkContext) -> dict:
        p = self.params
        report: dict[str, Any] = {"uri": p.uri, "table": p.table, "mode": p.mode}
        table = self._open()
        if table is None:
            report.update(rows=0, note="no rows were written, so the table was not created")
            return report
        if p.compact:
            t = time.perf_counter()
            run_off_driver(_compact, self, p.mode != "append")
            report["compact_seconds"] = round(time.perf_counter() - t, 3)
            table = self._open()
        rows = table.count_rows()
        # rows: the whole table (earlier runs too, in append mode); rows_written: this run's.
        report.update(rows=rows, rows_written=table.count_rows(self._where(f"{self._run_id}:")))
        report["vector_column"] = p.vector_column
        vc_type = table.schema.field(p.vector_column).type
        report["dimension"] = vc_type.list_size
        kind = self._index_type(rows)
        if kind is not None:
            report.update(run_off_driver(_index, self, vc_type.list_size, kind))
        report["version"] = table.version
        return report

    def _index_type(self, rows: int) -> str | None:
        p = self.params
        if p.index in (None, "none") or not rows:
            return None
        if p.index == "auto":
            if rows >= AUTO_ANN_ROWS:
                return AUTO_ANN_TYPE
            return "exact" if p.metric != "l2" else None
        return p.index

    def _index_config(self, dim: int, kind: str):
        from lancedb import index as li

        p = self.params
        if kind == "exact":
            return li.IvfFlat(distance_type=p.metric, num_partitions=1)
        common = dict(
            distance_type=p.metric,
            num_partitions=p.num_partitions,
            max_iterations=p.max_iterations,
            sample_rate=p.sample_rate,
        )
        if p.accelerator:
            common["accelerator"] = p.accelerator
        pq_args = {}
        if kind in PQ_TYPES:
            if p.num_sub_vectors is not None:
                if dim % p.num_sub_vectors:
                    raise ValueError(
                        f"lancedb sink: num_sub_vectors = {p.num_sub_vectors} does not divide the "
                        f"dimension {dim} of {p.vector_column!r}"
                    )
                pq_args["num_sub_vectors"] = p.num_sub_vectors
            if p.num_bits is not None:
                pq_args["num_bits"] = p.num_bits
        hnsw = dict(m=p.hnsw_m, ef_construction=p.hnsw_ef_construction)
        if kind == "IVF_PQ":
            return li.IvfPq(**common, **pq_args)
        if kind == "IVF_FLAT":
            return li.IvfFlat(**common)
        if kind == "IVF_SQ":
            return li.IvfSq(**common)
        if kind == "IVF_RQ":
            return li.IvfRq(**common, **({"num_bits": p.num_bits} if p.num_bits else {}))
        if kind == "IVF_HNSW_SQ":
            return li.IvfHnswSq(**common, **hnsw)
        if kind == "IVF_HNSW_PQ":
            return li.IvfHnswPq(**common, **pq_args, **hnsw)
        common.pop("accelerator", None)
        return li.IvfHnswFlat(**common, **hnsw)

    def _build_index(self, table, dim: int, kind: str) -> dict:
        p = self.params
        config = self._index_config(dim, kind)
        t = time.perf_counter()
        table.create_index(p.vector_column, config=config, replace=True)
        seconds = time.perf_counter() - t
        rows = table.count_rows()
        if kind == "exact":
            return {
                "type": "IVF_FLAT",
                "metric": p.metric,
                "seconds": round(seconds, 3),
                "num_partitions": 1,
                "exact": True,
                "chosen_by": f"index = auto: {rows} rows, under {AUTO_ANN_ROWS}, metric {p.metric}: one "
                "partition, searched whole, so that a plain search uses the metric",
            }
        info: dict[str, Any] = {"type": kind, "metric": p.metric, "seconds": round(seconds, 3)}
        if p.index == "auto":
            info["chosen_by"] = f"index = auto: {rows} rows, at least {AUTO_ANN_ROWS}"
        for name in ("num_partitions", "num_sub_vectors", "num_bits"):
            if getattr(p, name) is not None:
                info[name] = getattr(p, name)
        if p.num_partitions and rows // p.sample_rate < p.num_partitions:
            info["note"] = (
                f"LanceDB trains at most rows / sample_rate = {rows // p.sample_rate} of the "
                f"{p.num_partitions} partitions asked for; lower sample_rate or num_partitions"
            )
        if kind in HNSW_TYPES:
            info.update(m=p.hnsw_m, ef_construction=p.hnsw_ef_construction)
        for idx in table.list_indices():
            if list(idx.columns) == [p.vector_column]:
                stats = table.index_stats(idx.name)
                info["name"] = idx.name
                if stats is not None:
                    info["indexed_rows"] = stats.num_indexed_rows
                    info["unindexed_rows"] = stats.num_unindexed_rows
                details = getattr(idx, "index_details", None) or {}
                comp = details.get("compression") or {}
                if "num_sub_vectors" in comp:
                    info["num_sub_vectors"] = comp["num_sub_vectors"]
        return info

    # -- worker side ------------------------------------------------------------------

    def open_writer(self, ctx: SinkContext) -> SinkWriter:
        return _LanceWriter(self, ctx)

    @classmethod
    def examples(cls, workdir):
        import numpy as np

        rng = np.random.default_rng(0)
        good = {
            "source": np.array(["a.txt", "b.txt", "c.txt"], dtype=object),
            "record_id": np.array(["a", "b", "c"], dtype=object),
            "vector": rng.standard_normal((3, 8)).astype(np.float32),
        }
        return StageExamples(params={"uri": str(Path(workdir) / "lancedb"), "table": "kit"}, good=good)


def _compact(sink: LanceDBSink, prune: bool) -> None:
    """Merge the writers' fragments; with ``prune``, delete the files of every earlier
    version: each append left one, and a table of many appends would otherwise hold its
    data several times over. Only for tables this run made, which nobody else writes."""
    table = sink._open()
    if prune:
        from datetime import timedelta

        table.optimize(cleanup_older_than=timedelta(0))
    else:
        table.optimize()


def _index(sink: LanceDBSink, dim: int, kind: str) -> dict:
    """Build the index (``kind``, see ``_index_type``) and measure an ANN index's recall:
    ``{"index": ..., "recall": ...}`` for the sink's report."""
    p = sink.params
    table = sink._open()
    out: dict[str, Any] = {"index": sink._build_index(table, dim, kind)}
    ann = not out["index"].get("exact")
    queries = p.report_recall if p.report_recall is not None else DEFAULT_RECALL_QUERIES * ann
    if queries:
        from ..search import index_recall

        out["recall"] = index_recall(table, p.vector_column, queries=queries, k=10)
    return out


class _LanceWriter(SinkWriter):
    def __init__(self, sink: LanceDBSink, ctx: SinkContext):
        self.sink = sink
        self.ctx = ctx
        self.tag = f"{sink._run_id}:g{ctx.group:05d}:{_attempt(ctx)}:{uuid.uuid4().hex[:12]}"
        self.limit = sink.params.write_buffer_mb << 20
        self.schema: pa.Schema | None = sink._schema
        self.pending: list[pa.Table] = []
        self.pending_bytes = 0
        self.rows = 0
        self.fragments: list = []

    def write(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        data = to_lance_table(
            table.select(stored_columns(table.schema, self.sink.params)), self.sink.params.vector_column
        )
        if WRITE_COLUMN in data.column_names:
            data = data.drop_columns([WRITE_COLUMN])  # e.g. records read back from a LanceDB table
        data = data.append_column(WRITE_COLUMN, pa.repeat(pa.scalar(self.tag, pa.string()), data.num_rows))
        if self.schema is None:  # the table does not exist yet: the first block decides
            self.schema = data.schema.remove_metadata()
        self.pending.append(conform(data, self.schema, self.sink.params))
        self.pending_bytes += data.nbytes
        if self.pending_bytes >= self.limit:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        from lance.fragment import write_fragments

        data = pa.concat_tables(self.pending)
        self.pending, self.pending_bytes = [], 0
        self.fragments += write_fragments(
            data, self.sink.dataset_uri(), schema=self.schema, storage_options=self.sink.storage_options()
        )
        self.rows += data.num_rows

    def close(self) -> dict:
        self._flush()
        schema = self.schema.serialize().to_pybytes() if self.rows else None
        return {"rows": self.rows, "fragments": self.fragments, "schema": schema}


def stored_columns(schema: pa.Schema, params) -> list[str]:
    """The columns of a block the table keeps: the vector, then ``params.columns``, or by
    default ``record_id``, ``source`` and every other scalar column (numbers, text, flags,
    times). A table of 1 kb genomic windows then holds their spectra and labels, not their
    one-hot matrices, and a table of files not their bytes; the Parquet output keeps all."""
    vector = params.vector_column
    names = schema.names
    if vector not in names:
        raise KeyError(
            f"lancedb sink: the records have no column {vector!r} (they have {names}); "
            "set vector_column to the encoder's vector output"
        )
    if params.columns is not None:
        missing = [c for c in params.columns if c not in names]
        if missing:
            raise KeyError(f"lancedb sink: columns {missing} are not in the records (they have {names})")
        return [vector, *(c for c in params.columns if c != vector)]
    first = [c for c in ("record_id", "source") if c in names]
    scalars = [f.name for f in schema if f.name not in (vector, *first) and is_scalar_type(f.type)]
    return [vector, *first, *scalars]


def _agreed_schema(serialized: list[bytes], table: str) -> pa.Schema:
    """The one schema every write task of the first group brought, or an error naming
    the columns where they differ."""
    schemas = [pa.ipc.read_schema(pa.py_buffer(s)) for s in serialized]
    first = schemas[0]
    for other in schemas[1:]:
        if other.equals(first):
            continue
        names = sorted(set(first.names) ^ set(other.names))
        names += [f.name for f in first if f.name in other.names and other.field(f.name).type != f.type]
        raise ValueError(
            f"lancedb sink: write tasks brought different columns for new table {table!r}: "
            + ", ".join(
                f"{n} ({first.field(n).type if n in first.names else 'absent'} vs "
                f"{other.field(n).type if n in other.names else 'absent'})"
                for n in names
            )
            + "; the encoders must give every block the same column types"
        )
    return first


def _attempt(ctx: SinkContext) -> str:
    # Keep LIKE patterns and SQL literals safe whatever the runner puts in the attempt.
    return re.sub(r"[^0-9A-Za-z-]", "-", ctx.attempt or "none")
