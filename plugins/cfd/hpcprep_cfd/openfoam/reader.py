"""The ``cfd.openfoam`` reader: OpenFOAM cases to chunks of cells with centres, volumes and fields.

One input item is one case. A read task parses the mesh once (points, faces, owner,
neighbour, boundary; ASCII or binary, gzip or not), computes every cell's centre and
volume with OpenFOAM's definitions (``geometry.py``), reads the chosen fields, and then
yields one record per ``chunk_size`` consecutive cells, so a worker's output stays
bounded by the chunk size. Chunks are not separate items because every chunk needs the
whole face list (a cell's faces are scattered through it): per-chunk read tasks would
each parse the whole mesh again.

A case that cannot be read is one entry in the errors table naming the file at fault
(a missing ``owner``, a truncated binary list, a list whose size does not match its
contents, a face using a point that does not exist). A field whose size is not the
number of cells makes its whole case an error, not just the field: every record of a
case carries the same ``field_<name>`` columns, and the user asked for that field.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
from hpcprep import Column, ErrorRecord, InputItem, LocalPath, Params, Reader, RecordError, StageExamples
from hpcprep import record_id as make_record_id
from hpcprep.columns import object_column
from hpcprep.lazy import lazy_module
from pydantic import Field

from .box_case import write_box_case

if TYPE_CHECKING:
    from .fields import FieldData
    from .polymesh import PolyMesh

# Numba code, imported when a case is first looked for or read (the stage's class needs none: hpcprep.lazy).
fields = lazy_module(".fields", __package__)
foamfile = lazy_module(".foamfile", __package__)
geometry = lazy_module(".geometry", __package__)
polymesh = lazy_module(".polymesh", __package__)

OUTPUTS = (
    Column("source", "string", "the case directory"),
    Column("record_id", "string", "record_id(source, kind, chunk number or patch name)"),
    Column("case", "string", "case name (the case directory's name)"),
    Column("kind", "string", "'cells' (a chunk of cells) or 'patch' (the faces of one boundary patch)"),
    Column("patch", "string", "patch name; '' for cells"),
    Column("time", "string", "time directory the fields come from; '' if none"),
    Column("chunk", "int64", "chunk number (cells) or patch number in the boundary file (patches)"),
    Column("cell_start", "int64", "first cell of the chunk, or the patch's first face label"),
    Column("n_cells", "int64", "rows in this record: cells of the chunk, or faces of the patch"),
    Column("centres", "list<double>", "cell centres (or patch face centres), flattened n x 3"),
    Column("volumes", "list<double>", "cell volumes (or patch face area magnitudes), n"),
    Column("area_vectors", "list<double>", "patch face area vectors (outward), flattened n x 3; empty for cells"),
)
POLYHEDRA = (
    Column("points", "list<double>", "the points these cells use, flattened P x 3 (empty for patches)"),
    Column("cell_faces", "list<int64>", "VTK polyhedron face stream per cell: nFaces, nPts, local ids..., ..."),
    Column("cell_face_offsets", "list<int64>", "start of each cell's stream in cell_faces"),
)


class OpenFoamParams(Params):
    paths: list[LocalPath] = Field(
        description="OpenFOAM cases (with constant/polyMesh), directories holding polyMesh/, polyMesh directories, "
        "globs, or folders of cases"
    )
    chunk_size: int = Field(100_000, ge=1, description="cells per record (records are chunks of consecutive cells)")
    time: str = Field("latest", description="time directory of the fields: 'latest', a directory name, or 'none'")
    fields: list[str] | None = Field(
        None, description="fields to read; default every volScalarField and volVectorField of that time directory"
    )
    boundary: bool = Field(False, description="also one record per boundary patch (face centres, areas, values)")
    polyhedra: bool = Field(False, description="add VTK polyhedron columns points, cell_faces, cell_face_offsets")


def _is_case(path: str) -> bool:
    try:
        polymesh.locate(path)
        return True
    except FileNotFoundError:
        return False


def _find_cases(path: str) -> list[str]:
    """The case itself, or the cases found below a folder (not descending into a case)."""
    if _is_case(path):
        return [path]
    found, stack = [], [path]
    while stack:
        d = stack.pop()
        try:
            subdirs = sorted(e.path for e in os.scandir(d) if e.is_dir())
        except OSError:
            continue
        for sub in subdirs:
            if os.path.basename(sub) in ("constant", "system", "polyMesh"):
                continue
            if os.path.isdir(os.path.join(sub, "constant", "polyMesh")) or os.path.isdir(os.path.join(sub, "polyMesh")):
                found.append(sub)
            else:
                stack.append(sub)
    return sorted(found) or [path]  # nothing found: read() says why


def _mesh_bytes(path: str) -> int | None:
    try:
        _, mesh = polymesh.locate(path)
    except FileNotFoundError:
        return None
    total = 0
    for name in polymesh.MESH_FILES:
        p = foamfile.find_file(mesh, name)
        if p:
            total += os.path.getsize(p)
    return total


def _check_finite(mesh: PolyMesh, *arrays: np.ndarray) -> None:
    """Finite points can still overflow: a volume multiplies three coordinates, so points near
    1e110 give infinite or NaN centres and volumes that the files do not hold."""
    if all(np.isfinite(a).all() for a in arrays):
        return
    largest = float(np.abs(mesh.points).max())
    points = foamfile.find_file(mesh.directory, "points") or os.path.join(mesh.directory, "points")
    raise RecordError(
        f"{points}: cell centres and volumes overflow double precision (coordinates up to {largest:.3g}); "
        "is the mesh scaled in the right unit, or the file damaged?"
    )


class OpenFoamReader(Reader):
    """OpenFOAM cases (ASCII/binary, gzip) as chunks of cells with OpenFOAM-exact centres, volumes and fields."""

    name = "cfd.openfoam"
    Params = OpenFoamParams
    outputs = OUTPUTS

    def __init__(self, params=None):
        super().__init__(params)
        # Field columns are known up front only when the fields are named; otherwise each
        # case adds a field_<name> column (list<double>) per vol field it has.
        extra = tuple(
            Column(f"field_{n}", "list<double>", f"field {n}: n values (scalar) or flattened n x 3 (vector)")
            for n in (self.params.fields or ())
        )
        self.outputs = OUTPUTS + (POLYHEDRA if self.params.polyhedra else ()) + extra
        # Unnamed fields are whatever vol fields each case has: columns no one can declare
        # before the cases are read, so the driver must not refuse a stage reading one.
        self.open_columns = self.params.fields is None and self.params.time != "none"

    def notes(self) -> list[str]:
        if self.params.fields is None and self.params.time != "none":
            return ["field columns (field_<name>) depend on each case's vol fields; cases may differ"]
        return []

    # -- driver -------------------------------------------------------------------------

    def plan(self) -> list[InputItem]:
        cases: list[str] = []
        for pattern in self.params.paths:
            matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
            matches = [m for m in matches if os.path.isdir(m)]
            if not matches:
                raise FileNotFoundError(f"no directory matches {pattern!r}")
            for m in matches:
                cases.extend(_find_cases(os.path.abspath(m)))
        unique = sorted(dict.fromkeys(cases))
        return [InputItem(source=c, index=i, size=_mesh_bytes(c)) for i, c in enumerate(unique)]

    # -- worker -------------------------------------------------------------------------

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        source = item.source
        try:
            root, mesh_dir = polymesh.locate(source)
        except FileNotFoundError as exc:
            raise RecordError(str(exc)) from None
        try:
            mesh = polymesh.read_polymesh(mesh_dir)
            time, field_data = self._fields(root, mesh)
        except foamfile.FoamFileError as exc:
            raise RecordError(str(exc)) from None
        cc, cv, fc, fa = geometry.mesh_geometry(
            mesh.points, mesh.face_offsets, mesh.face_points, mesh.owner, mesh.neighbour, mesh.n_cells
        )
        _check_finite(mesh, cc, cv, fc, fa)
        case = os.path.basename(root.rstrip(os.sep)) or root
        common = {"source": source, "case": case, "time": time}
        cell_csr = geometry.cell_face_csr(mesh.owner, mesh.neighbour, mesh.n_cells) if self.params.polyhedra else None
        size = self.params.chunk_size
        for chunk, start in enumerate(range(0, mesh.n_cells, size)):
            end = min(start + size, mesh.n_cells)
            row = {
                **common,
                "record_id": make_record_id(source, "cells", chunk),
                "kind": "cells",
                "patch": "",
                "chunk": chunk,
                "cell_start": start,
                "n_cells": end - start,
                "centres": cc[start:end].reshape(-1),
                "volumes": cv[start:end],
                "area_vectors": np.zeros(0),
            }
            for fd in field_data:
                row[f"field_{fd.name}"] = fd.internal[start:end].reshape(-1)
            if cell_csr is not None:
                used, stream, starts = geometry.polyhedra(
                    start, end, cell_csr[0], cell_csr[1], mesh.face_offsets, mesh.face_points, len(mesh.points)
                )
                row["points"] = mesh.points[used].reshape(-1)
                row["cell_faces"] = stream
                row["cell_face_offsets"] = starts
            yield self._batch(row)
        if self.params.boundary:
            yield from self._patches(mesh, fc, fa, field_data, common, source)

    def _patches(self, mesh: PolyMesh, fc, fa, field_data: list[FieldData], common: dict, source: str):
        for i, p in enumerate(mesh.patches):
            sl = slice(p.start, p.start + p.size)
            row = {
                **common,
                "record_id": make_record_id(source, "patch", p.name),
                "kind": "patch",
                "patch": p.name,
                "chunk": i,
                "cell_start": p.start,
                "n_cells": p.size,
                "centres": fc[sl].reshape(-1),
                "volumes": np.linalg.norm(fa[sl], axis=1),
                "area_vectors": fa[sl].reshape(-1),
            }
            for fd in field_data:
                values = fd.patches.get(p.name)
                if values is None:
                    width = 3 if fd.kind == "vector" else 1
                    values = np.full(p.size * width, np.nan)
                row[f"field_{fd.name}"] = np.asarray(values, dtype=np.float64).reshape(-1)
            if self.params.polyhedra:
                row["points"] = np.zeros(0)
                row["cell_faces"] = np.zeros(0, np.int64)
                row["cell_face_offsets"] = np.zeros(0, np.int64)
            yield self._batch(row)

    def _fields(self, root: str, mesh: PolyMesh) -> tuple[str, list[FieldData]]:
        """(time directory name, fields) as the parameters ask."""
        want = self.params.fields
        time = self.params.time
        if time == "none":
            return "", []
        times = fields.time_directories(root)
        if time == "latest":
            if not times:
                if want:
                    raise foamfile.FoamFileError(f"{root}: no time directory, so no fields {want}")
                return "", []
            time = times[-1]
        elif not os.path.isdir(os.path.join(root, time)):
            raise foamfile.FoamFileError(
                f"{os.path.join(root, time)}: no such time directory (have: {', '.join(times) or 'none'})"
            )
        time_dir = os.path.join(root, time)
        available = fields.list_fields(time_dir)
        if want is None:
            names = [n for n, (_, cls) in available.items() if cls in fields.FIELD_CLASSES]
        else:
            names = list(want)
            for n in names:
                if n not in available:
                    raise foamfile.FoamFileError(f"{os.path.join(time_dir, n)}: no such field (asked for by 'fields')")
                if available[n][1] not in fields.FIELD_CLASSES:
                    raise foamfile.FoamFileError(
                        f"{available[n][0]}: class {available[n][1] or 'unknown'!r} is not a volScalarField "
                        "or volVectorField"
                    )
        patches = mesh.patches if self.params.boundary else None
        return time, [fields.read_field(available[n][0], n, mesh.n_cells, patches) for n in names]

    @staticmethod
    def _batch(row: dict) -> dict:
        # A batch of one row, typed from its values rather than by hpcprep.columns.RowBatch from the declared
        # outputs: with unnamed fields each case brings field_<name> columns nobody could declare (open_columns).
        out = {}
        for key, value in row.items():
            if isinstance(value, str):
                out[key] = object_column([value])
            elif isinstance(value, (int, np.integer)):
                out[key] = np.array([value], dtype=np.int64)
            else:
                out[key] = object_column([np.ascontiguousarray(value)])
        return out

    @classmethod
    def examples(cls, workdir):
        good = os.path.join(workdir, "box")
        write_box_case(good, (3, 2, 2))
        bad = os.path.join(workdir, "no_owner")
        write_box_case(bad, (2, 1, 1))
        os.remove(os.path.join(bad, "constant", "polyMesh", "owner"))
        params = {"paths": [good], "chunk_size": 5, "boundary": True, "polyhedra": True, "fields": ["T", "U"]}
        return StageExamples(params=params, good=params, bad={"paths": [bad]})
