"""Reader stage ``cfd.mesh``: STL, OBJ and PLY surface meshes (plain or gzip) as indexed triangle meshes.

One Ray read task per file. The parsing lives in :mod:`hpcprep_cfd.meshfiles`; this stage plans the inputs
and turns parts into records (columns as in ``plugins/cfd/COLUMNS.md``, "Mesh records").

A file that cannot be read at all (empty, truncated binary STL, a facet count that does not match the
size, a broken PLY header or short PLY data, damaged gzip, no faces, malformed text) is one error for the
file. A bad part inside a readable file (a NaN coordinate, an OBJ face index out of range or 0, an STL
solid without facets) is an error record for that part with the part's record id; the other parts of
the file are still records.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
from hpcprep import Column, ErrorRecord, InputItem, LocalPath, RecordError, StageExamples, record_id
from hpcprep.columns import list_column, object_column
from hpcprep.file_reader import FileParams, FileReader
from pydantic import Field

from . import meshfiles
from .meshfiles import SUFFIXES

if TYPE_CHECKING:
    from .meshfiles import MeshPart

#: A read task hands on a batch once it holds this many parts or this many coordinates and indices.
MAX_BATCH_ROWS = 256
MAX_BATCH_VALUES = 16_000_000


class MeshParams(FileParams):
    paths: list[LocalPath] = Field(
        description="STL, OBJ or PLY files (plain or gzip), directories, globs or s3:// URIs"
    )
    suffixes: list[str] | None = Field(
        list(SUFFIXES), description="when expanding directories keep only files ending in one of these"
    )
    split: Literal["none", "parts"] = Field(
        "none", description="'parts': one record per STL solid or OBJ o/g group; 'none': one record per file"
    )


class MeshReader(FileReader):
    """Surface meshes from STL (ASCII, binary), OBJ and PLY files, plain or gzip, as indexed triangles."""

    name = "cfd.mesh"
    Params = MeshParams
    outputs = (
        Column("source", "string", "path or URI of the mesh file"),
        Column("record_id", "string", "stable id: record_id(source, part) with the 0-based part (0 for a file)"),
        Column("name", "string", "solid or group name; the file stem for a whole file without one name"),
        Column("format", "string", "stl-ascii, stl-binary, obj or ply"),
        Column("vertices", "list<double>", "vertex positions, V x 3 flattened; only vertices the faces use"),
        Column("faces", "list<int64>", "triangles as 0-based vertex indices, F x 3 flattened"),
        Column("n_vertices", "int64", "V"),
        Column("n_faces", "int64", "F"),
    )

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        source = item.source
        data = self.read_bytes(item, gunzip=False)  # read_mesh tells gzip apart itself, with its own messages
        try:
            mesh = meshfiles.read_mesh(data, source=source, split=self.params.split, on_error="keep")
        except meshfiles.MeshFileError as exc:
            raise RecordError(str(exc)) from None
        pending: list[MeshPart] = []
        values = 0
        for part in mesh.parts:
            if part.error is not None:
                yield ErrorRecord(source, record_id(source, part.index), part.error)
                continue
            pending.append(part)
            values += part.vertices.size + part.faces.size
            if len(pending) >= MAX_BATCH_ROWS or values >= MAX_BATCH_VALUES:
                yield self._batch(source, mesh.format, pending)
                pending, values = [], 0
        if pending:
            yield self._batch(source, mesh.format, pending)

    def _batch(self, source: str, fmt: str, parts: list[MeshPart]) -> dict:
        # Not hpcprep.columns.RowBatch, which keeps one Python value per row: the vertex and face arrays
        # go into one flat Arrow list column each, a single concatenation per batch.
        return {
            "source": object_column([source] * len(parts)),
            "record_id": object_column([record_id(source, p.index) for p in parts]),
            "name": object_column([p.name for p in parts]),
            "format": object_column([fmt] * len(parts)),
            "vertices": list_column([p.vertices.reshape(-1) for p in parts], pa.float64()),
            "faces": list_column([p.faces.reshape(-1) for p in parts], pa.int64()),
            "n_vertices": np.array([len(p.vertices) for p in parts], dtype=np.int64),
            "n_faces": np.array([len(p.faces) for p in parts], dtype=np.int64),
        }

    @classmethod
    def examples(cls, workdir):
        good = os.path.join(workdir, "two_solids.stl")
        with open(good, "w") as f:
            f.write(_solid("left", 0.0) + _solid("right", 5.0))
        bad = os.path.join(workdir, "nan.stl")
        with open(bad, "w") as f:
            f.write(_solid("broken", float("nan")))
        return StageExamples(params={"paths": [good]}, good={"paths": [good], "split": "parts"}, bad={"paths": [bad]})


def _solid(name: str, x: float) -> str:
    """A unit tetrahedron shifted by x, as ASCII STL text."""
    corners = [(x, 0.0, 0.0), (x + 1, 0.0, 0.0), (x, 1.0, 0.0), (x, 0.0, 1.0)]
    lines = [f"solid {name}"]
    for tri in ((0, 2, 1), (0, 1, 3), (0, 3, 2), (1, 2, 3)):
        lines += ["  facet normal 0 0 0", "    outer loop"]
        lines += [f"      vertex {corners[i][0]} {corners[i][1]} {corners[i][2]}" for i in tri]
        lines += ["    endloop", "  endfacet"]
    lines.append(f"endsolid {name}")
    return "\n".join(lines) + "\n"
