"""Encoder stages over surface meshes: health, repair, normalisation, samples, SDFs, voxels, descriptors.

Every stage reads the mesh columns of ``cfd.mesh`` (``vertices`` and ``faces``, flattened
V x 3 and F x 3; see ``COLUMNS.md``) and is a thin wrapper over ``hpcprep_cfd.kernels``.
Outputs are float32 (what a data loader wants); the kernels compute in float64. Stages
that draw random points derive each record's stream from ``seed`` and the record id,
so a record gets the same points whichever worker, batch or run handles it.

One module because the stages are the same thin shape (parameters, declared mesh
inputs, one kernel call per record, float32 outputs) and share the mesh-column
helpers at the top; the work is in ``kernels``, one module per algorithm.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pyarrow as pa
from hpcprep import Column, Encoder, Input, Params, RecordError, StageExamples, record_id
from hpcprep.columns import column_of, list_column, vector_column
from pydantic import Field, field_validator

from . import kernels
from .column_types import FLOAT_LISTS, INDEX_LISTS

MESH_HINT = "mesh encoders need the cfd.mesh reader (columns vertices and faces)"
Resolution = int | tuple[int, int, int]


def _mesh_arrays(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    """One record's flattened mesh as (V, 3) float64 and (F, 3) int64, or a RecordError saying what is wrong."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.size % 3:
        raise RecordError(f"vertices hold {v.size} values, not x, y, z per vertex")
    if f.size % 3:
        raise RecordError(f"faces hold {f.size} values, not three vertex indices per triangle")
    if f.size == 0:
        raise RecordError("the mesh has no faces")
    try:
        return kernels.check_mesh(v.reshape(-1, 3), f.reshape(-1, 3))
    except ValueError as exc:  # indices out of range, non-finite vertices
        raise RecordError(str(exc)) from None


def meshes(batch) -> list[tuple[np.ndarray, np.ndarray]]:
    """The batch's meshes, checked (see :func:`_mesh_arrays`)."""
    vs = column_of(batch, "vertices", MESH_HINT)
    fs = column_of(batch, "faces", MESH_HINT)
    return [_mesh_arrays(v, f) for v, f in zip(vs, fs)]


def record_seed(seed: int, rid: str) -> int:
    """A 63-bit seed for one record: the stage's seed mixed with a hash of the record id."""
    digest = int.from_bytes(hashlib.blake2b(str(rid).encode(), digest_size=8).digest(), "little")
    return (digest ^ (seed * 0x9E3779B97F4A7C15)) & (2**63 - 1)


def float32_lists(parts: list[np.ndarray]) -> pa.Array:
    """A ``list<float32>`` column, one flattened array per record (what the encoders output)."""
    return list_column([np.ascontiguousarray(p, dtype=np.float32).reshape(-1) for p in parts], pa.float32())


def _triples(rows: list, dtype) -> pa.Array:
    arr = np.asarray(rows, dtype=dtype).reshape(-1, 3)
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1)), 3)


def grid_columns(values: str, prefix: str, frames: list, value_type: pa.DataType) -> dict:
    """Columns for regular grids: the flattened values (C order) and ``<prefix>shape``, ``origin``, ``spacing``,
    from the kernels' ``(grid, origin, spacing)`` triples, one per record."""
    dtype = value_type.to_pandas_dtype()
    return {
        values: list_column([np.ascontiguousarray(g, dtype=dtype).reshape(-1) for g, _, _ in frames], value_type),
        prefix + "shape": _triples([g.shape for g, _, _ in frames], np.int64),
        prefix + "origin": _triples([o for _, o, _ in frames], np.float64),
        prefix + "spacing": _triples([sp for _, _, sp in frames], np.float64),
    }


def _check_resolution(value):
    if isinstance(value, int):
        if value < 2:
            raise ValueError("resolution must be at least 2")
    elif len(value) != 3 or min(value) < 2:
        raise ValueError("resolution must be an int or three ints, each at least 2")
    return value


class Mesh(Encoder):
    """Base of the mesh encoders: compiled kernels are warmed once per worker."""

    needs_setup = True
    batch_size = 16
    #: What ``meshes(batch)`` reads; the stages that draw random points also read ``record_id``.
    inputs = (
        Input("vertices", FLOAT_LISTS, "vertex positions, V x 3 flattened (cfd.mesh, cfd.repair, cfd.normalize)"),
        Input("faces", INDEX_LISTS, "triangles as 0-based vertex indices, F x 3 flattened"),
    )

    def setup(self) -> None:
        # One call on a tiny mesh, with the small example sizes, compiles (or loads from the
        # Numba cache) the kernels this stage uses before the first real batch.
        small = type(self)(self.params.model_copy(update=self.example_params))
        small.variant = self.variant
        small.encode(_mesh_batch())

    def spatial_kernels(self):
        """The module whose ``signed_distance`` and ``sdf_grid`` this stage's variant runs."""
        if self.variant == "cuda":
            from .kernels import cuda  # only workers of the CUDA variant have numba-cuda

            return cuda
        return kernels

    @classmethod
    def examples(cls, workdir):
        return StageExamples(params=cls.example_params, good=_mesh_batch(), bad=_bad_mesh_batch())

    example_params: dict = {}


# -- health and repair ------------------------------------------------------------------


class HealthParams(Params):
    reject_open: bool = Field(False, description="a mesh that is not watertight becomes an error record")
    reject_inside_out: bool = Field(
        False, description="a closed mesh with negative signed volume becomes an error record"
    )


class Health(Mesh):
    """Mesh checks: degenerate and duplicate faces, open and non-manifold edges, components, volume."""

    name = "cfd.health"
    Params = HealthParams
    outputs = (
        Column("degenerate_faces", "int64", "faces with a repeated vertex or zero area"),
        Column("duplicate_faces", "int64", "faces repeating an earlier face with the same orientation"),
        Column("opposite_pairs", "int64", "pairs of faces on the same vertices with opposite orientation"),
        Column("boundary_edges", "int64", "edges used by one face"),
        Column("non_manifold_edges", "int64", "edges used by more than two faces"),
        Column("inconsistent_edges", "int64", "edges whose two faces run the same way (orientation flips)"),
        Column("components", "int64", "connected components"),
        Column("watertight", "bool", "no boundary and no non-manifold edges"),
        Column("signed_volume", "float64", "volume by the divergence theorem; negative when inside out"),
        Column("inside_out", "bool", "closed and negative signed volume"),
        Column("area", "float64", "surface area"),
    )

    def encode(self, batch):
        p = self.params
        rows = []
        for v, f in meshes(batch):
            h = kernels.mesh_health(v, f)
            if p.reject_open and not h["watertight"]:
                raise RecordError(
                    f"not watertight: {h['boundary_edges']} boundary and {h['non_manifold_edges']} non-manifold edges"
                )
            if p.reject_inside_out and h["inside_out"]:
                raise RecordError(f"inside out: signed volume {h['signed_volume']:.6g}")
            rows.append(h)
        out = {}
        for col in self.outputs:
            dtype = {"int64": np.int64, "bool": np.bool_, "float64": np.float64}[col.type]
            out[col.name] = np.array([h[col.name] for h in rows], dtype=dtype)
        return out


class RepairParams(Params):
    weld_tolerance: float = Field(
        0.0, ge=0, description="weld vertices closer than this (model units); 0 welds exact duplicates"
    )


class Repair(Mesh):
    """Drop degenerate and duplicate faces, weld vertices, orient faces consistently and outward."""

    name = "cfd.repair"
    Params = RepairParams
    outputs = (
        Column("vertices", "list<double>", "repaired vertices, V x 3"),
        Column("faces", "list<int64>", "repaired faces, F x 3"),
        Column("n_vertices", "int64", "vertices after repair"),
        Column("n_faces", "int64", "faces after repair"),
        Column("repairs", "string", "what was changed, as 'action=count' pairs"),
    )

    def encode(self, batch):
        vs, fs, reports = [], [], []
        for v, f in meshes(batch):
            v2, f2, report = kernels.repair(v, f, weld_tolerance=self.params.weld_tolerance)
            if len(f2) == 0:
                raise RecordError(f"no faces left after repair ({_report_text(report)})")
            vs.append(v2.reshape(-1))
            fs.append(f2.astype(np.int64).reshape(-1))
            reports.append(_report_text(report))
        return {
            "vertices": list_column(vs, pa.float64()),
            "faces": list_column(fs, pa.int64()),
            "n_vertices": np.array([len(v) // 3 for v in vs], dtype=np.int64),
            "n_faces": np.array([len(f) // 3 for f in fs], dtype=np.int64),
            "repairs": np.array(reports, dtype=object),
        }


def _report_text(report: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(report.items()) if v) or "none"


class NormalizeParams(Params):
    mode: Literal["unit_sphere", "unit_box"] = Field(
        "unit_sphere", description="unit_sphere: farthest vertex at distance 1; unit_box: longest side 1"
    )
    center: Literal["bbox", "centroid"] = Field(
        "bbox", description="bounding-box centre or area-weighted surface centroid"
    )


class Normalize(Mesh):
    """Move and scale each mesh into a canonical frame; records how, so it can be undone."""

    name = "cfd.normalize"
    Params = NormalizeParams
    outputs = (
        Column("vertices", "list<double>", "normalised vertices: (original - norm_center) / norm_scale"),
        Column("norm_center", "fixed_size_list<float64>[3]", "the centre that was subtracted"),
        Column("norm_scale", "float64", "the length the mesh was divided by"),
    )

    def encode(self, batch):
        vs, centers, scales = [], [], []
        for v, f in meshes(batch):
            v2, c, s = kernels.normalize(v, faces=f, mode=self.params.mode, center=self.params.center)
            vs.append(np.asarray(v2, dtype=np.float64).reshape(-1))
            centers.append(np.asarray(c, dtype=np.float64))
            scales.append(float(s))
        return {
            "vertices": list_column(vs, pa.float64()),
            "norm_center": _triples(centers, np.float64),
            "norm_scale": np.array(scales, dtype=np.float64),
        }


# -- samples and signed distances --------------------------------------------------------


class SurfaceSampleParams(Params):
    n: int = Field(10_000, ge=1, description="points per mesh, area-weighted")
    seed: int = Field(0, ge=0, description="random seed; each record mixes in its record id")


class SurfaceSample(Mesh):
    """Area-weighted points on the surface with their face normals (point-cloud inputs)."""

    name = "cfd.surface_sample"
    Params = SurfaceSampleParams
    example_params = {"n": 64}
    outputs = (
        Column("surface_points", "list<float32>", "n x 3 points on the surface"),
        Column("surface_normals", "list<float32>", "n x 3 unit normals of the faces the points lie on"),
        Column("surface_face_ids", "list<int64>", "face of each point"),
    )

    def encode(self, batch):
        pts, nrm, ids = [], [], []
        for (v, f), rid in zip(meshes(batch), batch["record_id"]):
            try:
                p, fid, n = kernels.sample_surface(v, f, self.params.n, record_seed(self.params.seed, rid))
            except ValueError as exc:  # zero total area
                raise RecordError(str(exc)) from None
            pts.append(p)
            nrm.append(n)
            ids.append(np.asarray(fid, dtype=np.int64))
        return {
            "surface_points": float32_lists(pts),
            "surface_normals": float32_lists(nrm),
            "surface_face_ids": list_column(ids, pa.int64()),
        }


class SdfPointsParams(Params):
    n_volume: int = Field(4096, ge=0, description="points drawn uniformly in the padded bounding box")
    n_surface: int = Field(
        4096, ge=0, description="points near the surface: surface samples moved by a Gaussian offset"
    )
    sigma: float = Field(
        0.01,
        gt=0,
        description="standard deviation of the near-surface offset, as a fraction of the bounding-box diagonal",
    )
    padding: float = Field(0.1, ge=0, description="bounding-box padding on each side, as a fraction of its extent")
    seed: int = Field(0, ge=0, description="random seed; each record mixes in its record id")


class SdfPoints(Mesh):
    """Volume and near-surface query points with signed distance and the vector to the closest point."""

    name = "cfd.sdf_points"
    Params = SdfPointsParams
    variants = ("cpu", "cuda")
    # Each mesh is one launch of 10^4-10^5 points (a thread each) after its tree is built on the
    # host: a kernel leaves most of a GPU idle, so four actors share one, each with the CPU
    # stages' batches of 16 meshes (more would only hold more meshes in memory).
    gpu_share = 0.25
    gpu_batch_size = 16
    example_params = {"n_volume": 64, "n_surface": 64}
    outputs = (
        Column("sdf_points", "list<float32>", "m x 3 query points: n_volume uniform, then n_surface near the surface"),
        Column("sdf", "list<float32>", "signed distance, negative inside"),
        Column("sdf_vector", "list<float32>", "m x 3 closest surface point minus query point"),
    )

    def encode(self, batch):
        p = self.params
        pts, dist, vec = [], [], []
        spatial = self.spatial_kernels()
        for (v, f), rid in zip(meshes(batch), batch["record_id"]):
            seed = record_seed(p.seed, rid)
            q = self.query_points(v, f, seed)
            d, closest, _ = spatial.signed_distance(v, f, q)
            pts.append(q)
            dist.append(d)
            vec.append(closest - q)
        return {"sdf_points": float32_lists(pts), "sdf": float32_lists(dist), "sdf_vector": float32_lists(vec)}

    def query_points(self, v: np.ndarray, f: np.ndarray, seed: int) -> np.ndarray:
        p = self.params
        lo, hi = v.min(axis=0), v.max(axis=0)
        extent = hi - lo
        lo, hi = lo - p.padding * extent, hi + p.padding * extent
        rng = np.random.default_rng(seed)
        volume = lo + rng.random((p.n_volume, 3)) * (hi - lo)
        if p.n_surface == 0:
            return volume
        try:
            on_surface, _, _ = kernels.sample_surface(v, f, p.n_surface, seed)
        except ValueError as exc:
            raise RecordError(str(exc)) from None
        offset = rng.normal(0.0, p.sigma * float(np.linalg.norm(extent)), size=(p.n_surface, 3))
        return np.concatenate([volume, on_surface + offset])


class GridParams(Params):
    resolution: Resolution = Field(
        64, description="nodes (sdf_grid) or cells (voxelize) per axis: an int or [nx, ny, nz]"
    )
    bounds: tuple[tuple[float, float, float], tuple[float, float, float]] | None = Field(
        None,
        description="[[xmin, ymin, zmin], [xmax, ymax, zmax]]; default: the mesh's bounding box (padded for sdf_grid)",
    )

    _resolution = field_validator("resolution")(_check_resolution)


class SdfGridParams(GridParams):
    padding: float = Field(0.1, ge=0, description="bounding-box padding on each side, as a fraction of its extent")


class SdfGrid(Mesh):
    """Signed distance on a regular grid of nodes (DoMINO/3D-CNN style inputs)."""

    name = "cfd.sdf_grid"
    Params = SdfGridParams
    variants = ("cpu", "cuda")
    # One launch per mesh, a thread per node: as cfd.sdf_points, four actors share a GPU.
    gpu_share = 0.25
    gpu_batch_size = 16
    example_params = {"resolution": 8}
    outputs = (
        Column("sdf_grid", "list<float32>", "nx*ny*nz signed distances, C order: index [i, j, k] = x, y, z"),
        Column("sdf_grid_shape", "fixed_size_list<int64>[3]", "nx, ny, nz"),
        Column("sdf_grid_origin", "fixed_size_list<float64>[3]", "position of node (0, 0, 0)"),
        Column("sdf_grid_spacing", "fixed_size_list<float64>[3]", "distance between nodes along x, y, z"),
    )

    def encode(self, batch):
        p = self.params
        spatial = self.spatial_kernels()
        frames = [spatial.sdf_grid(v, f, p.resolution, bounds=p.bounds, padding=p.padding) for v, f in meshes(batch)]
        return grid_columns("sdf_grid", "sdf_grid_", frames, pa.float32())


class VoxelizeParams(GridParams):
    fraction: bool = Field(
        False, description="volume fraction per cell (float32, cut cells between 0 and 1) instead of occupancy"
    )
    subsamples: int = Field(4, ge=1, le=64, description="rays per cell side in y and z for volume fractions")


class Voxelize(Mesh):
    """Occupancy (cell centre inside) or volume fraction of each cell of a regular grid."""

    name = "cfd.voxelize"
    Params = VoxelizeParams
    example_params = {"resolution": 8}
    outputs = (
        Column("voxels", "list<uint8>", "nx*ny*nz cells, C order: 1 where the cell centre is inside"),
        Column("voxel_shape", "fixed_size_list<int64>[3]", "nx, ny, nz"),
        Column("voxel_origin", "fixed_size_list<float64>[3]", "corner of cell (0, 0, 0)"),
        Column("voxel_spacing", "fixed_size_list<float64>[3]", "cell size along x, y, z"),
    )

    def __init__(self, params=None):
        super().__init__(params)
        if self.params.fraction:
            doc = "nx*ny*nz cells, C order: fraction of the cell inside the mesh"
            self.outputs = (Column("voxels", "list<float32>", doc), *type(self).outputs[1:])

    def encode(self, batch):
        p = self.params
        frames = [
            kernels.voxelize(v, f, p.resolution, bounds=p.bounds, fraction=p.fraction, subsamples=p.subsamples)
            for v, f in meshes(batch)
        ]
        return grid_columns("voxels", "voxel_", frames, pa.float32() if p.fraction else pa.uint8())


class DescriptorParams(Params):
    bins: int = Field(32, ge=4, le=256, description="histogram bins of each distribution in the descriptor")
    samples: int = Field(4096, ge=64, description="surface samples the descriptor is computed from")
    seed: int = Field(
        0, ge=0, description="random seed (the same for every record, so equal shapes give equal vectors)"
    )


class ShapeDescriptor(Mesh):
    """A fixed-length vector, invariant to position, rotation and scale, for similarity search."""

    name = "cfd.shape_descriptor"
    Params = DescriptorParams
    example_params = {"samples": 256}
    outputs = (Column("descriptor", "fixed_size_list<float32>[d]", "L2-normalised shape descriptor"),)

    def __init__(self, params=None):
        super().__init__(params)
        self._dim = kernels.descriptor_length(self.params.bins)
        self.outputs = (Column("descriptor", f"fixed_size_list<float32>[{self._dim}]", self.outputs[0].doc),)

    def encode(self, batch):
        p = self.params
        rows = [kernels.shape_descriptor(v, f, bins=p.bins, samples=p.samples, seed=p.seed) for v, f in meshes(batch)]
        return {"descriptor": vector_column(np.asarray(rows, dtype=np.float32).reshape(-1, self._dim))}


# -- examples for the plugin test kit ---------------------------------------------------


def _tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
    return v, f


def _box() -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[x, y, z] for x in (0, 2) for y in (0, 1) for z in (0, 1)], dtype=np.float64)
    f = np.array(
        [
            [0, 1, 3],
            [0, 3, 2],
            [4, 6, 7],
            [4, 7, 5],
            [0, 4, 5],
            [0, 5, 1],
            [2, 3, 7],
            [2, 7, 6],
            [0, 2, 6],
            [0, 6, 4],
            [1, 5, 7],
            [1, 7, 3],
        ],
        dtype=np.int64,
    )
    return v, f


def _mesh_batch(items=None) -> dict:
    items = items or [_tetrahedron(), _box()]
    sources = [f"example-{i}.stl" for i in range(len(items))]
    return {
        "source": np.array(sources, dtype=object),
        "record_id": np.array([record_id(s, 0) for s in sources], dtype=object),
        "vertices": np.array([v.reshape(-1) for v, _ in items] + [None], dtype=object)[:-1],
        "faces": np.array([f.reshape(-1) for _, f in items] + [None], dtype=object)[:-1],
    }


def _bad_mesh_batch() -> dict:
    v, f = _tetrahedron()
    return _mesh_batch([(v, f + 10), (v, f + 10)])  # face indices past the last vertex


MESH_ENCODERS = (Health, Repair, Normalize, SurfaceSample, SdfPoints, SdfGrid, Voxelize, ShapeDescriptor)
