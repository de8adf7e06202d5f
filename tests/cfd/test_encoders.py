"""The cfd encoder stages: the plugin test kit, and their outputs against analytic answers."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep import RecordError, record_id
from hpcprep.testing import assert_plugin_ok
from hpcprep_cfd import shapes
from hpcprep_cfd.encoders import (
    Health,
    Normalize,
    Repair,
    SdfGrid,
    SdfPoints,
    ShapeDescriptor,
    SurfaceSample,
    Voxelize,
)


def test_the_plugin_passes_the_kit(tmp_path):
    from hpcprep_cfd import plugin

    assert_plugin_ok(plugin, tmp_path)


def batch_of(*meshes, names=None):
    names = names or [f"mesh{i}.stl" for i in range(len(meshes))]
    return {
        "source": np.array(names, dtype=object),
        "record_id": np.array([record_id(n, 0) for n in names], dtype=object),
        "vertices": np.array([v.reshape(-1) for v, _ in meshes] + [None], dtype=object)[:-1],
        "faces": np.array([f.reshape(-1) for _, f in meshes] + [None], dtype=object)[:-1],
    }


def rows(column, width=3):
    """A list column (Arrow) as one (n, width) array per record."""
    return [np.asarray(x, dtype=np.float64).reshape(-1, width) for x in column.to_pylist()]


BOX_SIZE = (2.0, 1.0, 0.5)


@pytest.fixture(scope="module")
def box():
    return shapes.box(size=BOX_SIZE)


@pytest.fixture(scope="module")
def sphere():
    return shapes.sphere(radius=1.0, subdivisions=4)


def test_sdf_points_match_the_analytic_box(box):
    out = SdfPoints({"n_volume": 500, "n_surface": 500, "seed": 3}).encode(batch_of(box))
    (pts,) = rows(out["sdf_points"])
    sdf = np.asarray(out["sdf"].to_pylist()[0])
    (vec,) = rows(out["sdf_vector"])
    assert pts.shape == (1000, 3)
    # float32 output: compare at float32 precision.
    np.testing.assert_allclose(sdf, shapes.box_sdf(pts, size=BOX_SIZE), atol=2e-6)
    assert (sdf < 0).any() and (sdf > 0).any()
    # The vector lands on the surface and its length is |sdf|.
    np.testing.assert_allclose(np.abs(shapes.box_sdf(pts + vec, size=BOX_SIZE)), 0, atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(vec, axis=1), np.abs(sdf), atol=2e-6)
    # Near-surface points are near the surface; volume points fill the padded box.
    assert np.median(np.abs(sdf[500:])) < 0.05 * np.linalg.norm(BOX_SIZE)
    assert np.all(np.abs(pts[:500]) <= np.array(BOX_SIZE) * 0.6 + 1e-9)


def test_random_streams_depend_on_seed_and_record_not_on_batching(box, sphere):
    stage = SurfaceSample({"n": 100, "seed": 7})
    together = stage.encode(batch_of(box, sphere, names=["a.stl", "b.stl"]))
    alone = stage.encode(batch_of(sphere, names=["b.stl"]))
    assert together["surface_points"].to_pylist()[1] == alone["surface_points"].to_pylist()[0]
    other_seed = SurfaceSample({"n": 100, "seed": 8}).encode(batch_of(sphere, names=["b.stl"]))
    assert other_seed["surface_points"].to_pylist()[0] != alone["surface_points"].to_pylist()[0]
    renamed = stage.encode(batch_of(sphere, names=["c.stl"]))
    assert renamed["surface_points"].to_pylist()[0] != alone["surface_points"].to_pylist()[0]


def test_surface_samples_lie_on_the_sphere_with_outward_normals(sphere):
    out = SurfaceSample({"n": 2000}).encode(batch_of(sphere))
    (pts,) = rows(out["surface_points"])
    (nrm,) = rows(out["surface_normals"])
    r = np.linalg.norm(pts, axis=1)
    assert r.max() <= 1 + 1e-6 and r.min() > 0.99  # chords of a subdivision-4 icosphere
    assert np.all(np.einsum("ij,ij->i", pts, nrm) > 0.99)


def test_sdf_grid_of_the_box_is_the_analytic_sdf(box):
    out = SdfGrid({"resolution": [9, 7, 5], "padding": 0.25}).encode(batch_of(box))
    shape = out["sdf_grid_shape"].to_pylist()[0]
    origin = np.asarray(out["sdf_grid_origin"].to_pylist()[0])
    spacing = np.asarray(out["sdf_grid_spacing"].to_pylist()[0])
    grid = np.asarray(out["sdf_grid"].to_pylist()[0]).reshape(shape)
    assert shape == [9, 7, 5]
    i, j, k = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    nodes = origin + np.stack([i, j, k], axis=-1) * spacing
    np.testing.assert_allclose(grid, shapes.box_sdf(nodes.reshape(-1, 3), size=BOX_SIZE).reshape(shape), atol=2e-6)
    np.testing.assert_allclose(origin, -np.array(BOX_SIZE) * 0.75)


def test_voxels_of_the_box(box):
    out = Voxelize({"resolution": [4, 2, 2]}).encode(batch_of(box))
    assert out["voxel_shape"].to_pylist()[0] == [4, 2, 2]
    assert out["voxels"].to_pylist()[0] == [1] * 16  # default bounds are the box itself
    frac = Voxelize({"resolution": 4, "bounds": [[-2, -1, -1], [2, 1, 1]], "fraction": True}).encode(batch_of(box))
    cells = np.asarray(frac["voxels"].to_pylist()[0]).reshape(4, 4, 4)
    volume = cells.sum() * np.prod(frac["voxel_spacing"].to_pylist()[0])
    assert volume == pytest.approx(np.prod(BOX_SIZE), rel=1e-6)


def test_repair_and_health_on_a_broken_sphere(sphere):
    v, f = sphere
    rng = np.random.default_rng(0)
    broken = f.copy()
    flip = rng.random(len(f)) < 0.2
    broken[flip] = broken[flip][:, ::-1]
    broken = np.concatenate([broken, broken[:5], [[0, 0, 1]]])
    before = Health().encode(batch_of((v, broken)))
    assert before["duplicate_faces"][0] == 5 and before["degenerate_faces"][0] == 1
    assert before["inconsistent_edges"][0] > 0
    repaired = Repair().encode(batch_of((v, broken)))
    v2 = np.asarray(repaired["vertices"].to_pylist()[0]).reshape(-1, 3)
    f2 = np.asarray(repaired["faces"].to_pylist()[0]).reshape(-1, 3)
    after = Health().encode(batch_of((v2, f2)))
    assert after["watertight"][0] and not after["inside_out"][0]
    assert after["inconsistent_edges"][0] == 0 and after["duplicate_faces"][0] == 0
    assert after["signed_volume"][0] == pytest.approx(Health().encode(batch_of(sphere))["signed_volume"][0], rel=1e-12)
    assert "duplicate" in repaired["repairs"][0]


def test_health_can_reject_open_meshes(sphere):
    v, f = sphere
    with pytest.raises(RecordError, match="not watertight"):
        Health({"reject_open": True}).encode(batch_of((v, f[:-3])))


def test_normalize_records_how_to_undo_it(box):
    v, f = box
    moved = v * 3.0 + [10.0, -4.0, 2.0]
    out = Normalize({"mode": "unit_box"}).encode(batch_of((moved, f)))
    (v2,) = rows(out["vertices"])
    assert np.ptp(v2, axis=0).max() == pytest.approx(1.0)
    np.testing.assert_allclose(v2 * out["norm_scale"][0] + out["norm_center"].to_pylist()[0], moved, atol=1e-12)


def test_descriptor_is_near_for_similar_shapes(sphere):
    stage = ShapeDescriptor({"samples": 2048})
    v, f = sphere
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    fine = shapes.sphere(radius=2.0, subdivisions=5)
    out = stage.encode(batch_of(sphere, (v @ rot.T * 5.0 + 3.0, f), fine, shapes.box(size=(3, 1, 0.2)), shapes.torus()))
    d = np.asarray(out["descriptor"].to_pylist())
    assert d.shape[1] == stage._dim
    dist = np.linalg.norm(d[0] - d, axis=1)
    assert max(dist[1], dist[2]) < min(dist[3], dist[4]) / 3


@pytest.mark.parametrize("stage", [Health(), Repair(), SurfaceSample({"n": 8}), SdfGrid({"resolution": 4})])
def test_bad_meshes_are_bad_records(stage):
    v, f = shapes.box()
    with pytest.raises(RecordError, match="face indices span"):
        stage.encode(batch_of((v, f + 100)))
    nan = v.copy()
    nan[3, 1] = np.nan
    with pytest.raises(RecordError, match="vertex 3 is not finite"):
        stage.encode(batch_of((nan, f)))
    with pytest.raises(RecordError, match="no faces"):
        stage.encode(batch_of((v, np.zeros((0, 3), np.int64))))
