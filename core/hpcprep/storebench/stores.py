"""Parquet and LanceDB as a user of each would drive them, behind one small interface.

A store is made empty at a place (a local directory or an ``s3://`` prefix), takes the
table once (``ingest``), and then answers reads. ``search`` returns the ``record_id`` of
the hits, nearest first; ``settings()`` lists the search settings worth a row of their
own (index and query parameters), ``use(setting)`` switches to one of them (building its
index the first time, timed apart from the queries).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..storage import S3Options, filesystem_for

ID = "record_id"


@dataclass
class Place:
    """Where a store keeps its data: a local directory or an s3:// prefix (with its options)."""

    uri: str
    s3: S3Options | None = None

    @property
    def kind(self) -> str:
        return "s3" if self.uri.startswith("s3://") else "local"

    def child(self, name: str) -> Place:
        return Place(f"{self.uri.rstrip('/')}/{name}", self.s3)

    def fs(self) -> tuple[pafs.FileSystem, str]:
        return filesystem_for(self.uri, self.s3)

    def size_bytes(self) -> int:
        fs, root = self.fs()
        infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
        return sum(i.size or 0 for i in infos if i.type == pafs.FileType.File)

    def lance_options(self) -> dict | None:
        if self.kind != "s3":
            return None
        from ..search import s3_storage_options

        s = self.s3 or S3Options()
        return s3_storage_options(self.uri, s.endpoint_url, s.access_key, s.secret_key, s.region)


@dataclass
class Setting:
    """One search configuration: what ``use`` builds or sets, and how the row names it."""

    label: str
    index: str | None = None  # None: exact search
    query: dict = field(default_factory=dict)


def _ids_filter(ids: list[str]) -> pc.Expression:
    return pc.field(ID).isin(pa.array(ids, pa.string()))


def _sql_in(ids: list[str]) -> str:
    return f"{ID} IN (" + ", ".join("'" + i.replace("'", "''") + "'" for i in ids) + ")"


def vector_array(table: pa.Table | pa.RecordBatch, column: str) -> np.ndarray:
    """A fixed-size-list column as an ``(n, d)`` NumPy array."""
    col = table.column(column)
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    return col.flatten().to_numpy(zero_copy_only=False).reshape(len(col), -1)


class ParquetStore:
    """One Parquet file per write through pyarrow: ``row_group_size`` None is pyarrow's default (one group of up
    to 1 Mi rows); the tuned store uses small groups and a page index, so lookups by id (rows in id order, as a
    run writes them) read only the groups whose min/max hold the ids. No index: search is a scan of the ids and
    vectors and an exact brute force, as a user without a vector store would do it."""

    #: Each search reads every vector, so a few queries tell its latency.
    max_queries = 5

    def __init__(self, place: Place, vector: str, row_group_size: int | None, label: str):
        self.place, self.vector, self.row_group_size, self.name = place, vector, row_group_size, label
        self.fs, self.root = place.fs()
        self.fs.create_dir(self.root, recursive=True)
        self.parts = 0

    def size_bytes(self) -> int:
        return self.place.size_bytes()

    def _options(self) -> dict:
        tuned = {"row_group_size": self.row_group_size, "write_page_index": True} if self.row_group_size else {}
        return {"compression": "zstd", **tuned}

    def _write(self, table: pa.Table) -> None:
        path = f"{self.root}/part-{self.parts:05d}.parquet"
        self.parts += 1
        pq.write_table(table, path, filesystem=self.fs, **self._options())

    def _read(self, columns=None, filters=None) -> pa.Table:
        return pq.read_table(self.root, filesystem=self.fs, columns=columns, filters=filters)

    def ingest(self, table: pa.Table) -> None:
        self._write(table)

    def scan(self) -> pa.Table:
        return self._read()

    def project(self, columns: list[str]) -> pa.Table:
        return self._read(columns)

    def lookup(self, ids: list[str]) -> pa.Table:
        return self._read(filters=_ids_filter(ids))

    def settings(self) -> list[Setting]:
        return [Setting("exact (scan + brute force)")]

    def use(self, setting: Setting) -> float:
        return 0.0

    def search(self, query: np.ndarray, k: int, where: tuple | None = None) -> list[str]:
        """Exact top ``k`` over a scan of the ids and vectors, a record batch at a time (so the vectors of a large
        table are never all in memory at once)."""
        import pyarrow.dataset as pads

        from .measure import TopK

        filters = pc.field(where[0]) < where[1] if where else None
        data = pads.dataset(self.root, filesystem=self.fs, format="parquet")
        top, ids, seen = TopK(query, k), [], 0
        for batch in data.to_batches(columns=[ID, self.vector], filter=filters):
            if batch.num_rows:
                top.add(vector_array(batch, self.vector), np.arange(seen, seen + batch.num_rows))
                ids.append(batch.column(ID))
                seen += batch.num_rows
        if not ids:
            return []
        return pa.chunked_array(ids).take(pa.array(top.result()[0])).to_pylist()

    def append(self, table: pa.Table) -> None:
        self._write(table)

    def update(self, changed: pa.Table, column: str) -> None:
        # Parquet files are immutable: the user rewrites every file that holds one of the rows.
        ids, value = changed.column(ID).to_pylist(), changed.column(column)[0].as_py()
        fs = self.fs
        for info in fs.get_file_info(pafs.FileSelector(self.root)):
            if not info.base_name.endswith(".parquet"):
                continue
            t = pq.read_table(info.path, filesystem=fs)
            hit = pc.is_in(t.column(ID), pa.array(ids, pa.string()))
            if not pc.any(hit).as_py():
                continue
            col = t.column(column)
            new = pc.if_else(hit, pa.scalar(value, col.type), col)
            t = t.set_column(t.schema.get_field_index(column), column, new)
            pq.write_table(t, info.path, filesystem=fs, **self._options())


#: LanceDB on S3: exact search only, ten queries. Building an index there reads the vectors in many ranged
#: requests, and the S3 endpoint here (moto) copies the whole object for each (over ten minutes for 100 000 x 768
#: without finishing), so an index's figures would be moto's; the index rows are the local ones.
S3_LANCE = {"index_types": (), "max_queries": 10}


class LanceStore:
    """A LanceDB table, with a BTREE index on ``record_id`` for lookups and, per setting, a vector index."""

    TABLE = "bench"

    def __init__(
        self,
        place: Place,
        vector: str,
        label: str = "lancedb",
        index_types=("IVF_PQ", "IVF_HNSW_SQ"),
        nprobes=(10, 50),
        refine=(None, 10),
        max_queries: int | None = None,
    ):
        import lancedb

        self.place, self.vector, self.name = place, vector, label
        self.nprobes, self.refine, self.max_queries = nprobes, refine, max_queries
        self.db = lancedb.connect(place.uri, storage_options=place.lance_options())
        self.index_types = index_types
        self.built: str | None = None
        self.query: dict = {}
        self.table = None

    def ingest(self, table: pa.Table) -> None:
        self.table = self.db.create_table(self.TABLE, table, mode="overwrite")

    def size_bytes(self) -> int:
        return self.place.size_bytes()

    def index_ids(self) -> None:
        from lancedb.index import BTree

        self.table.create_index(ID, config=BTree())

    def scan(self) -> pa.Table:
        return self.table.to_arrow()

    def project(self, columns: list[str]) -> pa.Table:
        return self.table.to_lance().to_table(columns=columns)

    def lookup(self, ids: list[str]) -> pa.Table:
        return self.table.search().where(_sql_in(ids)).limit(len(ids)).to_arrow()

    def settings(self) -> list[Setting]:
        out = [Setting("exact (flat scan)")]
        for kind in self.index_types:
            if kind.startswith("IVF_HNSW"):
                out += [Setting(f"{kind} ef={ef}", kind, {"ef": ef}) for ef in (32, 128)]
            else:
                out += [
                    Setting(f"{kind} nprobes={n}" + (f" refine={r}" if r else ""), kind, {"nprobes": n, "refine": r})
                    for n in self.nprobes
                    for r in self.refine
                ]
        return out

    def use(self, setting: Setting) -> float:
        """Switch to ``setting``; the seconds spent building its index (0 when already built)."""
        import time

        self.query = setting.query
        if setting.index is None or setting.index == self.built:
            return 0.0
        from lancedb import index as li

        config = {"IVF_PQ": li.IvfPq, "IVF_HNSW_SQ": li.IvfHnswSq}[setting.index](distance_type="l2")
        t0 = time.perf_counter()
        self.table.create_index(self.vector, config=config, replace=True)
        self.built = setting.index
        return time.perf_counter() - t0

    def search(self, query: np.ndarray, k: int, where: tuple | None = None) -> list[str]:
        # _distance named: Lance warns on every query that leaves it implicit.
        q = self.table.search(query, vector_column_name=self.vector).limit(k).select([ID, "_distance"])
        if not self.query:
            q = q.bypass_vector_index()
        if "nprobes" in self.query:
            q = q.nprobes(self.query["nprobes"])
        if self.query.get("refine"):
            q = q.refine_factor(self.query["refine"])
        if "ef" in self.query:
            q = q.ef(self.query["ef"])
        if where:
            q = q.where(f"{where[0]} < {where[1]}", prefilter=True)
        return q.to_arrow().column(ID).to_pylist()

    def append(self, table: pa.Table) -> None:
        self.table.add(table)

    def update(self, changed: pa.Table, column: str) -> None:
        ids, value = changed.column(ID).to_pylist(), changed.column(column)[0].as_py()
        self.table.update(where=_sql_in(ids), values={column: value})
