"""``cfd.vtk``: each record as VTK XML files ParaView opens, plus one ``.pvd`` for the run.

What a record becomes (columns of COLUMNS.md; ``<base>`` is the source file's stem (and
the record's name when it says more), or an OpenFOAM record's case and patch, then its
record id, made file-safe):

- ``vertices`` + ``faces`` -> ``<base>.vtp`` triangle surface
- ``surface_points`` (+ ``surface_normals``, ``surface_face_ids``) -> ``<base>_samples.vtp``
- ``sdf_points`` (+ ``sdf``, ``sdf_vector``) -> ``<base>_sdf_points.vtp``
- ``sdf_grid`` + shape/origin/spacing -> ``<base>_sdf.vti`` (point data ``sdf``)
- ``voxels`` + shape/origin/spacing -> ``<base>_voxels.vti`` (cell data ``voxels``)
- ``centres`` (OpenFOAM cells or patch faces) -> ``<base>.vtu``: polyhedra when the
  record has ``points``/``cell_faces``/``cell_face_offsets``, else a vertex per centre;
  cell data ``volume`` (``area`` and ``area_vector`` for patches) and every ``field_*``.

How files commit
----------------
Write tasks put their files in ``_hpcprep_vtk/staging/g<group>-<attempt>/<task>/``. On
the driver, ``commit`` first records the group's files in a journal
(``_hpcprep_vtk/groups/g<group>.json``, with the attempt), then moves them to their
final names. ``discard_group`` removes staging folders of other attempts and, when the
journal belongs to another attempt, the final files it lists: so neither files of an
interrupted write nor those of a half-done commit survive a resume, while file names
stay stable (``<base>`` depends only on the record). ``finish`` writes
``<run name>.pvd`` from the journals.

One module because the driver's commit, discard and finish and the workers' writer
follow the one staging-and-journal protocol described below; the VTK XML encoding
itself is in ``vtkxml``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.fs as pafs
from hpcprep import Input, LocalPath, Params, Sink, SinkContext, SinkWriter, StageExamples
from hpcprep.columns import object_column
from hpcprep.storage import claim_sink_dir
from pydantic import Field

from . import vtkxml
from .column_types import FLOAT_LISTS, INDEX_LISTS, NUMERIC_LISTS, STRINGS, TRIPLES

log = logging.getLogger("hpcprep.cfd.vtk")

STATE_DIR = "_hpcprep_vtk"
KINDS = ("mesh", "samples", "sdf_points", "sdf_grid", "voxels", "cells")
Kind = Literal["mesh", "samples", "sdf_points", "sdf_grid", "voxels", "cells"]
MAX_MESSAGES = 20  # failure messages kept per commit group (the counts are always exact)


class VtkSinkParams(Params):
    path: LocalPath = Field(description="directory for the VTK files and the run's .pvd")
    what: Literal["auto"] | list[Kind] = Field(
        "auto", description="what to write: auto (everything a record has) or a list of " + ", ".join(KINDS)
    )
    point_data: list[str] = Field(
        default_factory=list,
        description="extra columns to attach as point data to every output whose point count divides their length",
    )
    pvd: bool = Field(True, description="write <path>/<run name>.pvd listing every file of the run")


class VtkSink(Sink):
    """VTK XML files (.vtp, .vti, .vtu) per record and a .pvd collection, for ParaView."""

    name = "cfd.vtk"
    Params = VtkSinkParams

    def __init__(self, params=None):
        super().__init__(params)
        self.inputs = declared_inputs(self.params)

    def target(self) -> str:
        return self.params.path

    def problems(self) -> list[str]:
        from hpcprep.storage import check_writable

        why = check_writable(Path(self.params.path))
        return [f"path: {why}"] if why else []

    @property
    def root(self) -> Path:
        return Path(self.params.path)

    def _state(self, *parts: str) -> Path:
        return self.root.joinpath(STATE_DIR, *parts)

    # -- driver side ----------------------------------------------------------------------

    def prepare(self, ctx: SinkContext) -> None:
        claim_sink_dir(pafs.LocalFileSystem(), str(self.root), ctx, "cfd.vtk sink")
        self._state("staging").mkdir(parents=True, exist_ok=True)
        self._state("groups").mkdir(parents=True, exist_ok=True)

    def discard_group(self, ctx: SinkContext, sources: list[str]) -> None:
        prefix = f"g{ctx.group:05d}-"
        staging = self._state("staging")
        if staging.is_dir():
            for folder in staging.iterdir():
                if folder.name.startswith(prefix) and folder.name != prefix + ctx.attempt:
                    shutil.rmtree(folder, ignore_errors=True)
        journal = self._journal(ctx.group)
        if journal.exists():
            record = json.loads(journal.read_text())
            if record["attempt"] != ctx.attempt:
                for entry in record["files"]:
                    (self.root / entry["file"]).unlink(missing_ok=True)
                journal.unlink()

    def _journal(self, group: int) -> Path:
        return self._state("groups", f"g{group:05d}.json")

    def open_writer(self, ctx: SinkContext) -> SinkWriter:
        return _VtkWriter(self, ctx)

    def commit(self, ctx: SinkContext, results: list) -> dict:
        entries = [e for r in results for e in r["entries"]]
        seen: dict[str, str] = {}
        for e in entries:
            if e["file"] in seen:
                raise RuntimeError(
                    f"cfd.vtk sink: records {seen[e['file']]!r} and {e['record_id']!r} both map to "
                    f"{e['file']}; record ids must be unique"
                )
            seen[e["file"]] = e["record_id"]
            if (self.root / e["file"]).exists():
                # Checked before the journal is written: a resume removes what the journal lists.
                raise RuntimeError(
                    f"cfd.vtk sink: {self.root / e['file']} was already written by another commit group; "
                    "record ids must be unique"
                )
        counts = {k: sum(r[k] for r in results) for k in ("rows", "written", "skipped", "failed")}
        failures = [m for r in results for m in r["failures"]][:MAX_MESSAGES]
        journal = self._journal(ctx.group)
        record = {"group": ctx.group, "attempt": ctx.attempt, "counts": counts, "failures": failures, "files": entries}
        # The journal goes first: if the moves below are cut short, a resume knows what to remove.
        tmp = journal.with_name("." + journal.name)
        tmp.write_text(json.dumps(record))
        tmp.replace(journal)
        for e in entries:
            os.replace(e["staged"], self.root / e["file"])
        shutil.rmtree(self._state("staging", f"g{ctx.group:05d}-{ctx.attempt}"), ignore_errors=True)
        for message in failures:
            log.warning("cfd.vtk sink: %s", message)
        return {"files": len(entries), **counts, "failures": failures}

    def finish(self, ctx: SinkContext) -> dict:
        records = []
        groups = self._state("groups")
        for journal in sorted(groups.glob("g*.json")) if groups.is_dir() else []:
            records.append(json.loads(journal.read_text()))
        entries = [e for r in sorted(records, key=lambda r: r["group"]) for e in r["files"]]
        counts = {k: sum(r["counts"][k] for r in records) for k in ("rows", "written", "skipped", "failed")}
        failures = [m for r in records for m in r.get("failures", [])][:MAX_MESSAGES]
        report = {"path": str(self.root), "files": len(entries), **counts, "failures": failures}
        shutil.rmtree(self._state("staging"), ignore_errors=True)
        if self.params.pvd:
            pvd = self.root / f"{_safe(ctx.run_name) or 'run'}.pvd"
            parts = [
                {"file": e["file"], "name": e["name"], "timestep": e["timestep"], "part": i}
                for i, e in enumerate(entries)
            ]
            tmp = vtkxml.write_collection(pvd.with_name("." + pvd.name), parts)
            tmp.replace(pvd)
            report["pvd"] = str(pvd)
        return report

    @classmethod
    def examples(cls, workdir):
        # A tetrahedron with an SDF grid around it, as the mesh reader and cfd.sdf_grid make them.
        verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
        faces = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
        grid = np.linspace(-1.0, 1.0, 2 * 3 * 4)
        good = {
            "source": np.array(["tet.stl"], dtype=object),
            "record_id": np.array(["tet:0"], dtype=object),
            "name": np.array(["tet"], dtype=object),
            "vertices": object_column([verts.reshape(-1)]),
            "faces": object_column([faces.reshape(-1)]),
            "sdf_grid": object_column([grid]),
            "sdf_grid_shape": np.array([[2, 3, 4]], dtype=np.int64),
            "sdf_grid_origin": np.array([[-0.5, -0.5, -0.5]]),
            "sdf_grid_spacing": np.array([[1.0, 0.5, 0.5]]),
        }
        return StageExamples(params={"path": str(Path(workdir) / "vtk")}, good=good)


# -- worker side ---------------------------------------------------------------------------


class _VtkWriter(SinkWriter):
    def __init__(self, sink: VtkSink, ctx: SinkContext):
        self.sink = sink
        self.params = sink.params
        self.folder = sink._state("staging", f"g{ctx.group:05d}-{ctx.attempt}", uuid.uuid4().hex)
        self.entries: list[dict] = []
        self.names: set[str] = set()
        self.rows = self.written = self.skipped = self.failed = 0
        self.failures: list[str] = []

    def write(self, table) -> None:
        from hpcprep.columns import column_to_numpy

        wanted = set(KINDS) if self.params.what == "auto" else set(self.params.what)
        needed = _columns_needed(table.column_names, wanted, self.params.point_data)
        columns = {name: column_to_numpy(table, name) for name in needed}
        for row in range(table.num_rows):
            self.rows += 1
            record = {name: values[row] for name, values in columns.items() if not _missing(values[row])}
            rid = str(record.get("record_id", f"row{self.rows}"))
            try:
                jobs = _jobs(record, wanted)
                if not jobs:
                    self.skipped += 1
                    continue
                self._write_record(record, rid, jobs)
                self.written += 1
            except (ValueError, KeyError, TypeError) as exc:
                self.failed += 1
                if len(self.failures) < MAX_MESSAGES:
                    self.failures.append(f"record {rid} ({record.get('source', '?')}): {exc}")

    def _write_record(self, record: dict, rid: str, jobs: list) -> None:
        base = _base_name(record, rid)
        timestep = _timestep(record.get("time"))
        extra = {name: np.asarray(record[name]) for name in self.params.point_data if name in record}
        made: list[dict] = []
        try:
            for suffix, fn in jobs:
                file = base + suffix
                if file in self.names:
                    raise ValueError(f"{file} written twice in one task: record ids must be unique")
                self.folder.mkdir(parents=True, exist_ok=True)
                staged = self.folder / file
                fn(staged, record, extra)
                made.append(
                    {
                        "file": file,
                        "staged": str(staged),
                        "name": Path(file).stem,
                        "timestep": timestep,
                        "record_id": rid,
                    }
                )
        except BaseException:
            for m in made:
                Path(m["staged"]).unlink(missing_ok=True)
            raise
        for m in made:
            self.names.add(m["file"])
        self.entries.extend(made)

    def close(self) -> dict:
        return {
            "entries": self.entries,
            "rows": self.rows,
            "written": self.written,
            "skipped": self.skipped,
            "failed": self.failed,
            "failures": self.failures,
        }


# -- records to files ----------------------------------------------------------------------

#: kind -> (columns that must all be there, optional columns it reads)
_COLUMNS = {
    "mesh": (("vertices", "faces"), ()),
    "samples": (("surface_points",), ("surface_normals", "surface_face_ids")),
    "sdf_points": (("sdf_points",), ("sdf", "sdf_vector")),
    "sdf_grid": (("sdf_grid", "sdf_grid_shape", "sdf_grid_origin", "sdf_grid_spacing"), ()),
    "voxels": (("voxels", "voxel_shape", "voxel_origin", "voxel_spacing"), ()),
    "cells": (("centres",), ("volumes", "area_vectors", "points", "cell_faces", "cell_face_offsets", "kind")),
}
_NAMING = ("source", "record_id", "name", "case", "patch", "time")
#: The types the writers take, by column; the grids' shape, origin and spacing are TRIPLES.
_TYPES = {
    "vertices": FLOAT_LISTS,
    "faces": INDEX_LISTS,
    "surface_points": FLOAT_LISTS,
    "surface_normals": FLOAT_LISTS,
    "surface_face_ids": INDEX_LISTS,
    "sdf_points": FLOAT_LISTS,
    "sdf": FLOAT_LISTS,
    "sdf_vector": FLOAT_LISTS,
    "sdf_grid": FLOAT_LISTS,
    "voxels": NUMERIC_LISTS,
    "centres": FLOAT_LISTS,
    "volumes": FLOAT_LISTS,
    "area_vectors": FLOAT_LISTS,
    "points": FLOAT_LISTS,
    "cell_faces": INDEX_LISTS,
    "cell_face_offsets": INDEX_LISTS,
    "kind": STRINGS,
}


def declared_inputs(params: VtkSinkParams) -> tuple[Input, ...]:
    """What the sink reads. Required: the columns each kind named in ``what`` cannot do
    without, and the ``point_data`` columns. Optional (read, and type-checked, when an
    earlier stage makes them): every column of every kind with ``what = "auto"``, since a
    record gives whatever kinds its columns make; a kind's extras (normals, volumes, ...);
    the columns that name files (``str()`` of any type). ``field_*`` columns are written as
    they come and cannot be named in advance."""
    auto = params.what == "auto"
    declared: dict[str, Input] = {}
    for name in params.point_data:
        declared[name] = Input(name, NUMERIC_LISTS, "point data (point_data)")
    for kind in KINDS if auto else params.what:
        required, optional = _COLUMNS[kind]
        for name in (*required, *optional):
            doc = f"{'needed' if name in required else 'read'} for the {kind!r} files"
            is_optional = auto or name not in required
            if name not in declared or (declared[name].optional and not is_optional):
                declared[name] = Input(name, _TYPES.get(name, TRIPLES), doc, optional=is_optional)
    for name in _NAMING[2:]:  # source and record_id every record has
        declared.setdefault(name, Input(name, "*", "names the files", optional=True))
    return tuple(declared.values())


def _columns_needed(names: list[str], wanted: set[str], point_data: list[str]) -> list[str]:
    needed = set(_NAMING) | set(point_data)
    for kind in wanted:
        required, optional = _COLUMNS[kind]
        needed |= set(required) | set(optional)
    if "cells" in wanted:
        needed |= {n for n in names if n.startswith("field_")}
    return [n for n in names if n in needed]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _jobs(record: dict, wanted: set[str]) -> list:
    """(file suffix, writer) for each kind of output this record has."""
    jobs = []
    for kind in KINDS:
        if kind in wanted and all(c in record for c in _COLUMNS[kind][0]):
            jobs.append(_WRITERS[kind])
    return jobs


def _xyz(record: dict, name: str) -> np.ndarray:
    a = np.asarray(record[name], dtype=np.float64).reshape(-1)
    if a.size % 3:
        raise ValueError(f"column {name!r} holds {a.size} values, not x, y, z triples")
    return a.reshape(-1, 3)


def _per_item(name: str, values, n: int, what: str) -> np.ndarray:
    """A column with one value, or a fixed number of components, per point or cell."""
    a = np.asarray(values).reshape(-1)
    if n == 0 and a.size == 0:
        return a
    if n == 0 or a.size % n:
        raise ValueError(f"column {name!r} holds {a.size} values, which is not a whole number per {n} {what}")
    return a if a.size == n else a.reshape(n, a.size // n)


def _attach(extra: dict, n: int, out: dict) -> dict:
    """Add the ``point_data`` columns whose length fits ``n`` points."""
    for name, values in extra.items():
        if n and values.size and values.size % n == 0:
            out[name] = values.reshape(-1) if values.size == n else values.reshape(n, -1)
    return out


def _write_mesh(path, record, extra):
    verts = _xyz(record, "vertices")
    faces = np.asarray(record["faces"]).reshape(-1)
    if faces.size % 3:
        raise ValueError(f"column 'faces' holds {faces.size} values, not 3 vertex ids per triangle")
    vtkxml.write_polydata(path, verts, faces.reshape(-1, 3), point_data=_attach(extra, len(verts), {}))


def _write_samples(path, record, extra):
    pts = _xyz(record, "surface_points")
    data = {}
    if "surface_normals" in record:
        data["normals"] = _xyz(record, "surface_normals")
    if "surface_face_ids" in record:
        data["face_id"] = _per_item("surface_face_ids", record["surface_face_ids"], len(pts), "samples")
    vtkxml.write_polydata(path, pts, vertices_as_cells=True, point_data=_attach(extra, len(pts), data))


def _write_sdf_points(path, record, extra):
    pts = _xyz(record, "sdf_points")
    data = {}
    if "sdf" in record:
        data["sdf"] = _per_item("sdf", record["sdf"], len(pts), "points")
    if "sdf_vector" in record:
        data["sdf_vector"] = _xyz(record, "sdf_vector")
    vtkxml.write_polydata(path, pts, vertices_as_cells=True, point_data=_attach(extra, len(pts), data))


def _grid(record, prefix: str, values: str):
    shape = tuple(int(s) for s in np.asarray(record[f"{prefix}_shape"]).reshape(-1))
    origin = np.asarray(record[f"{prefix}_origin"], dtype=np.float64).reshape(-1)
    spacing = np.asarray(record[f"{prefix}_spacing"], dtype=np.float64).reshape(-1)
    if len(shape) != 3 or origin.size != 3 or spacing.size != 3:
        raise ValueError(f"{prefix}_shape, _origin and _spacing need 3 values each")
    a = np.asarray(record[values]).reshape(-1)
    if a.size != math.prod(shape):
        raise ValueError(
            f"column {values!r} holds {a.size} values, but {prefix}_shape {list(shape)} needs {math.prod(shape)}"
        )
    return a.reshape(shape), origin, spacing


def _write_sdf_grid(path, record, extra):
    grid, origin, spacing = _grid(record, "sdf_grid", "sdf_grid")
    data = {"sdf": grid}
    for name, values in _attach(extra, grid.size, {}).items():
        data[name] = values.reshape(*grid.shape, -1) if values.ndim == 2 else values.reshape(grid.shape)
    vtkxml.write_image(path, origin, spacing, point_data=data)


def _write_voxels(path, record, extra):
    grid, origin, spacing = _grid(record, "voxel", "voxels")
    vtkxml.write_image(path, origin, spacing, cell_data={"voxels": grid})


def _write_cells(path, record, extra):
    centres = _xyz(record, "centres")
    n = len(centres)
    patch = str(record.get("kind", "cells")) == "patch"
    data = {}
    if "volumes" in record:
        data["area" if patch else "volume"] = _per_item("volumes", record["volumes"], n, "cells")
    if "area_vectors" in record and np.asarray(record["area_vectors"]).size:
        data["area_vector"] = _xyz(record, "area_vectors")
    for name in sorted(record):
        if name.startswith("field_"):
            data[name.removeprefix("field_")] = _per_item(name, record[name], n, "cells")
    faces = np.asarray(record.get("cell_faces", ())).reshape(-1)
    if faces.size and "points" in record and "cell_face_offsets" in record:
        points = _xyz(record, "points")
        starts = np.asarray(record["cell_face_offsets"]).reshape(-1)
        if starts.size != n:
            raise ValueError(f"cell_face_offsets has {starts.size} entries for {n} cells")
        data["centre"] = centres
        vtkxml.write_unstructured(
            path, points, polyhedra=(faces, starts), point_data=_attach(extra, len(points), {}), cell_data=data
        )
    else:
        vtkxml.write_unstructured(path, centres, point_data=_attach(extra, n, {}), cell_data=data)


_WRITERS = {
    "mesh": (".vtp", _write_mesh),
    "samples": ("_samples.vtp", _write_samples),
    "sdf_points": ("_sdf_points.vtp", _write_sdf_points),
    "sdf_grid": ("_sdf.vti", _write_sdf_grid),
    "voxels": ("_voxels.vti", _write_voxels),
    "cells": (".vtu", _write_cells),
}


# -- names ---------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe(text: str, limit: int = 80) -> str:
    """A file-name-safe form: runs of other characters become one '-'; no leading dot."""
    return _UNSAFE.sub("-", str(text)).strip("-.")[:limit]


def _base_name(record: dict, rid: str) -> str:
    """``<case>[_<patch>]_<record id>`` for an OpenFOAM record; otherwise ``<file stem>_<record
    id>``, with the record's name after the stem when it says more (an STL solid's or OBJ
    group's name: often only ``patch1``): unique (record ids are) and stable across runs."""
    if record.get("case") or record.get("patch"):
        label = str(record.get("case") or "")
        if record.get("patch"):
            label = f"{label}_{record['patch']}" if label else str(record["patch"])
    else:
        stem = _stem(str(record.get("source") or ""))
        name = str(record.get("name") or "")
        label = stem if name in ("", stem) else f"{stem}_{name}" if stem else name
    label = _safe(label) or "record"
    return f"{label}_{_safe(rid, 120) or 'noid'}"


def _stem(source: str) -> str:
    """``DTC-scaled`` of ``s3://bucket/geometry/DTC-scaled.stl.gz``."""
    name = source.rstrip("/").rsplit("/", 1)[-1]
    name = name[:-3] if name.lower().endswith(".gz") else name
    return name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name


def _timestep(value) -> float:
    """The OpenFOAM time of a record as the .pvd timestep (0 when it has none)."""
    try:
        t = float(value)
    except (TypeError, ValueError):
        return 0.0
    return t if math.isfinite(t) else 0.0
