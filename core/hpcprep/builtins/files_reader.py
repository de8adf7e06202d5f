"""``files``: each file becomes one record with its raw bytes."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from ..columns import object_column
from ..file_reader import FileParams, FileReader
from ..stages import Column, InputItem, RecordError, StageExamples, record_id


class FilesParams(FileParams):
    max_bytes: int = Field(1 << 30, ge=1, description="a larger file is an error, not a record")


class FilesReader(FileReader):
    """Raw bytes and path of each file, one record per file."""

    name = "files"
    Params = FilesParams
    outputs = (
        Column("source", "string", "path or URI of the file"),
        Column("record_id", "string", "stable id from the source"),
        Column("path", "string", "same as source, for readability in tables"),
        Column("size", "int64", "file size in bytes"),
        Column("bytes", "binary", "file contents"),
    )

    def read(self, item: InputItem):
        if item.size is not None and item.size > self.params.max_bytes:
            raise RecordError(f"{item.source}: {item.size} bytes is over max_bytes={self.params.max_bytes}")
        data = self.read_bytes(item, gunzip=False)  # the bytes as stored
        yield {
            "source": object_column([item.source]),
            "record_id": object_column([record_id(item.source)]),
            "path": object_column([item.source]),
            "size": np.array([len(data)], dtype=np.int64),
            "bytes": object_column([bytes(data)]),
        }

    @classmethod
    def examples(cls, workdir):
        good = workdir / "good.txt"
        good.write_text("hello\n")
        return StageExamples(
            params={"paths": [str(good)]}, good={"paths": [str(good)]}, bad={"paths": [str(good)], "max_bytes": 1}
        )
