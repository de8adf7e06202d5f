"""``parquet``: read Parquet files, typically an earlier run's outputs."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from pydantic import Field

from ..columns import object_column
from ..stages import Column, InputItem, LocalPath, Reader, record_id
from ..storage import S3Params, expand_paths, filesystem_for


class ParquetParams(S3Params):
    paths: list[LocalPath] = Field(description="Parquet files, directories, globs or s3:// URIs")
    columns: list[str] | None = Field(None, description="read only these columns (source and record_id always)")
    batch_rows: int = Field(65536, ge=1, description="rows per batch handed to the pipeline")
    split_row_groups: bool = Field(True, description="one read task per row group, so large files read in parallel")


class ParquetReader(Reader):
    """Rows of Parquet files; keeps source and record_id of earlier hpcprep outputs."""

    name = "parquet"
    Params = ParquetParams
    outputs = (
        Column("source", "string", "kept from the file, or the file's path"),
        Column("record_id", "string", "kept from the file, or derived from path and row"),
    )
    open_columns = True  # the files' own columns come through as they are

    def plan(self) -> list[InputItem]:
        items: list[InputItem] = []
        for path, size in expand_paths(self.params.paths, (".parquet", ".pq"), self.params.s3()):
            groups = None
            if self.params.split_row_groups:
                fs, inner = filesystem_for(path, self.params.s3())
                try:
                    with fs.open_input_file(inner) as f:
                        groups = pq.ParquetFile(f).metadata.num_row_groups
                except Exception:
                    groups = None  # read() reports the broken file as an error
            if groups and groups > 1:
                for rg in range(groups):
                    items.append(InputItem(path, len(items), size, offset=rg, length=1, meta={"row_group": rg}))
            else:
                items.append(InputItem(path, len(items), size))
        return items

    def read(self, item: InputItem):
        fs, inner = filesystem_for(item.source, self.params.s3())
        with fs.open_input_file(inner) as f:
            pf = pq.ParquetFile(f)
            columns = None
            if self.params.columns:
                names = pf.schema_arrow.names
                columns = [c for c in ["source", "record_id", *self.params.columns] if c in names]
                missing = [c for c in self.params.columns if c not in names]
                if missing:
                    raise KeyError(f"{item.source}: no column(s) {missing}; it has {names}")
            row_groups = [item.meta["row_group"]] if "row_group" in item.meta else None
            first_row = sum(pf.metadata.row_group(i).num_rows for i in range(item.meta.get("row_group", 0)))
            for batch in pf.iter_batches(batch_size=self.params.batch_rows, row_groups=row_groups, columns=columns):
                out = {name: _to_numpy(batch.column(name)) for name in batch.schema.names}
                n = batch.num_rows
                if "source" not in out:
                    out["source"] = np.full(n, item.source, dtype=object)
                if "record_id" not in out:
                    out["record_id"] = np.array([record_id(item.source, first_row + i) for i in range(n)], dtype=object)
                first_row += n
                yield out


def _to_numpy(col) -> np.ndarray:
    try:
        return col.to_numpy(zero_copy_only=False)
    except Exception:
        return object_column(col.to_pylist())
