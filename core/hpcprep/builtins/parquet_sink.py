"""``parquet``: write records as Parquet, locally or to S3.

Each Ray write task streams its blocks into one file per partition,
``part-g<group>-<attempt>-<uuid>.parquet``, so a resumed run can remove exactly the
files an unfinished commit group left behind, and a commit the files of writes that
Ray retried. Fixed-size vectors and tensors are written as
``fixed_size_list`` columns with their row shapes in the schema metadata
(``hpcprep.portable``), so readers without Ray get plain arrays.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from ..portable import portable_table
from ..sink_files import GroupFiles
from ..stages import LocalPath, Sink, SinkContext, SinkWriter
from ..storage import S3Params, claim_sink_dir, filesystem_for, is_s3


class ParquetSinkParams(S3Params):
    path: LocalPath = Field(description="directory for the Parquet files: local path or s3://bucket/prefix")
    row_group_size: int = Field(65536, ge=1, description="rows per Parquet row group")
    partition_cols: list[str] = Field(default_factory=list, description="hive-style partition columns (col=value/)")
    compression: str = Field("zstd", description="Parquet compression codec")


class ParquetSink(Sink):
    """Parquet files in a directory, local or s3://, with optional partition columns."""

    name = "parquet"
    Params = ParquetSinkParams

    def target(self) -> str:
        return self.params.path

    def problems(self) -> list[str]:
        if is_s3(self.params.path):
            return []
        from pathlib import Path

        from ..storage import check_writable

        why = check_writable(Path(self.params.path))
        return [f"path: {why}"] if why else []

    def _fs(self):
        fs, root = filesystem_for(self.params.path, self.params.s3())
        return fs, root.rstrip("/")

    def prepare(self, ctx: SinkContext) -> None:
        fs, root = self._fs()
        claim_sink_dir(fs, root, ctx, "parquet sink", self.params.path)

    def discard_group(self, ctx: SinkContext, sources: list[str]) -> None:
        GroupFiles(*self._fs()).discard_other_attempts(ctx)

    def open_writer(self, ctx: SinkContext) -> SinkWriter:
        return _ParquetWriter(self, ctx)

    def commit(self, ctx: SinkContext, results: list) -> dict:
        files = [f for r in results for f in r["files"]]
        GroupFiles(*self._fs()).keep_only(ctx, files)  # a write Ray retried left a file no result names
        return {"files": len(files), "rows": sum(r["rows"] for r in results)}

    def finish(self, ctx: SinkContext) -> dict:
        return {"path": self.params.path}


def _scalar_columns(schema: pa.Schema) -> list[str] | bool:
    """The columns that get min/max statistics: the flat ones. Statistics of the values
    inside list and vector columns (every count of every k-mer vector) prune no reads and
    cost about a tenth of the writing."""
    flat = [f.name for f in schema if not pa.types.is_nested(f.type)]
    return flat or False


class _ParquetWriter(SinkWriter):
    def __init__(self, sink: ParquetSink, ctx: SinkContext):
        self.sink = sink
        self.fs, self.root = sink._fs()
        self.name = GroupFiles.name(ctx, ".parquet")
        self.writers: dict[str, tuple[pq.ParquetWriter, object, str]] = {}
        self.rows = 0

    def _writer_for(self, subdir: str, schema: pa.Schema):
        if subdir not in self.writers:
            folder = f"{self.root}/{subdir}" if subdir else self.root
            self.fs.create_dir(folder, recursive=True)
            path = f"{folder}/{self.name}"
            stream = self.fs.open_output_stream(path)
            writer = pq.ParquetWriter(
                stream, schema, compression=self.sink.params.compression, write_statistics=_scalar_columns(schema)
            )
            self.writers[subdir] = (writer, stream, path)
        return self.writers[subdir][0]

    def _put(self, subdir: str, table: pa.Table) -> None:
        writer = self._writer_for(subdir, table.schema)
        if table.schema != writer.schema:
            table = table.cast(writer.schema)
        writer.write_table(table, row_group_size=self.sink.params.row_group_size)

    def write(self, table: pa.Table) -> None:
        table = portable_table(table)
        self.rows += table.num_rows
        cols = self.sink.params.partition_cols
        if not cols:
            self._put("", table)
            return
        missing = [c for c in cols if c not in table.column_names]
        if missing:
            raise KeyError(f"parquet sink: partition column(s) {missing} not in the records {table.column_names}")
        keys = table.select(cols).group_by(cols).aggregate([]).to_pylist()
        for key in keys:
            mask = None
            for c in cols:
                cond = pc.is_null(table[c]) if key[c] is None else pc.equal(table[c], key[c])
                mask = cond if mask is None else pc.and_(mask, cond)
            part = table.filter(mask).drop_columns(cols)
            subdir = "/".join(f"{c}={'__null__' if key[c] is None else key[c]}" for c in cols)
            self._put(subdir, part)

    def close(self) -> dict:
        files = []
        for writer, stream, path in self.writers.values():
            writer.close()
            stream.close()
            files.append(path)
        return {"files": files, "rows": self.rows}
