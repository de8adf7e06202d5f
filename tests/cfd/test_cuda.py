"""The CUDA distances, winding numbers and SDF grids against the CPU kernels, on a real tutorial mesh
(the closed flange, one open patch of it, the flange turned inside out) and an analytic sphere, with
points in the padded box, near and on the surface and NaN; run on Numba's CUDA simulator
(HPCPREP_TEST_CUDA=device: on a GPU). Then the stages' CUDA variants against their CPU variants."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_cfd import kernels, shapes
from hpcprep_cfd.encoders import SdfGrid, SdfPoints
from hpcprep_cfd.kernels.distance import sign_caps as distance_caps
from hpcprep_cfd.kernels.reference_spatial import point_triangle_ref
from hpcprep_cfd.meshfiles import read_mesh

from tests.cfd.data import geometry
from tests.cfd.test_encoders import batch_of
from tests.conftest import encode_on_both_variants, require_cuda

require_cuda()
from hpcprep_cfd.kernels import cuda as gpu  # noqa: E402

RTOL = 1e-9  # float64 on both sides; only the order of a sum may differ


def close(a, b):
    np.testing.assert_allclose(b, a, rtol=RTOL, atol=1e-12, equal_nan=True)


@pytest.fixture(scope="module")
def meshes() -> dict:
    parts = read_mesh(geometry("flange.stl.gz"), split="parts").parts
    flange = read_mesh(geometry("flange.stl.gz")).parts[0]
    patch = next(p for p in parts if p.name == "patch3")  # 192 triangles, open
    v, f = flange.vertices, flange.faces
    sphere = shapes.sphere(radius=1.0, subdivisions=3)
    return {
        "flange": (v, f),
        "flange inside out": (v, f[:, ::-1].copy()),
        "open patch": (patch.vertices, patch.faces),
        # open, signed through the caps of its three holes (on the host, as the CPU signs it)
        "sphere with holes": (sphere[0], np.delete(sphere[1], [3, 100, 200], axis=0)),
        "sphere": shapes.sphere(radius=1.0, subdivisions=2),
    }


def query_points(v, f, n=120, seed=0) -> np.ndarray:
    """Points in the box padded by 10 %, near the surface, exactly on vertices, and one NaN."""
    rng = np.random.default_rng(seed)
    lo, hi = v.min(0), v.max(0)
    pad = 0.1 * (hi - lo)
    box = rng.uniform(lo - pad, hi + pad, (n, 3))
    on, _, _ = kernels.sample_surface(v, f, n // 2, seed)
    near = on + rng.normal(0, 1e-3 * np.linalg.norm(hi - lo), on.shape)
    return np.concatenate([box, near, v[f[:5, 0]], [[np.nan, 0.0, 0.0]]])


@pytest.mark.parametrize("name", ["flange", "flange inside out", "open patch", "sphere with holes", "sphere"])
def test_signed_and_unsigned_distances_equal_the_cpu(meshes, name):
    v, f = meshes[name]
    p = query_points(v, f)
    for fn in ("unsigned_distance", "signed_distance"):
        cd, cc, cf = getattr(kernels, fn)(v, f, p)
        gd, gc, gf = getattr(gpu, fn)(v, f, p)
        close(cd, gd)
        close(cc, gc)
        assert np.array_equal(np.sign(cd), np.sign(gd), equal_nan=True), f"{fn}: a point changed side"
        assert gf.dtype == np.int64 and gf[-1] == -1 and cf[-1] == -1
        # the same face, or another one exactly as near (a tie: the CPU's search starts from a neighbour's face)
        for i in np.flatnonzero(gf != cf):
            d2, _ = point_triangle_ref(p[i : i + 1], v[f[[cf[i], gf[i]]]])
            assert d2[0, 0] == pytest.approx(d2[0, 1], rel=1e-12, abs=1e-24)
    if name == "sphere with holes":
        assert distance_caps(v, f) is not None, "the sign goes through the caps"
    if name != "open patch":
        assert (gd[: len(p) - 1] < 0).any() and (gd[: len(p) - 1] > 0).any(), "points on both sides"


@pytest.mark.parametrize("accuracy", [2.4, 1.6, None])
def test_winding_numbers_equal_the_cpu(meshes, accuracy):
    for name in ("flange", "open patch"):
        v, f = meshes[name]
        p = query_points(v, f, n=16)  # the simulator walks the tree in Python: few points
        close(kernels.winding_number(v, f, p, accuracy), gpu.winding_number(v, f, p, accuracy))


def test_sdf_grid_equals_the_cpu(meshes):
    for name in ("flange", "open patch", "sphere with holes"):
        v, f = meshes[name]
        cpu_grid, cpu_origin, cpu_spacing = kernels.sdf_grid(v, f, (5, 4, 6))
        grid, origin, spacing = gpu.sdf_grid(v, f, (5, 4, 6))
        assert grid.shape == (5, 4, 6)
        assert np.array_equal(origin, cpu_origin) and np.array_equal(spacing, cpu_spacing)
        close(cpu_grid, grid)
    v, f = meshes["sphere"]
    bounds = ((-1.2, -1.2, -1.2), (1.2, 1.2, 1.2))
    close(kernels.sdf_grid(v, f, 5, bounds=bounds)[0], gpu.sdf_grid(v, f, 5, bounds=bounds)[0])


def test_a_mesh_on_the_device_serves_many_batches(meshes):
    v, f = meshes["sphere"]
    on_device = gpu.DeviceMesh(v, f, kernels.build_bvh(v, f))
    for seed in (1, 2):
        p = query_points(v, f, n=40, seed=seed)
        close(kernels.signed_distance(v, f, p)[0], on_device.signed_distance(p)[0])
        close(kernels.winding_number(v, f, p), on_device.winding_number(p))
    empty = on_device.signed_distance(np.zeros((0, 3)))
    assert [a.shape for a in empty] == [(0,), (0, 3), (0,)]


def test_errors_are_the_cpus(meshes):
    v, f = meshes["sphere"]
    calls = [
        ("signed_distance", (v, f[:0], np.zeros((1, 3)))),
        ("signed_distance", (v, f, np.zeros((4, 2)))),
        ("winding_number", (v, f, np.zeros((1, 3)), 0.5)),
        ("sdf_grid", (v, f, 1)),
        ("unsigned_distance", (v, f + len(v), np.zeros((1, 3)))),
    ]
    for fn, args in calls:
        with pytest.raises(ValueError) as cpu_error:
            getattr(kernels, fn)(*args)
        with pytest.raises(ValueError) as gpu_error:
            getattr(gpu, fn)(*args)
        assert str(gpu_error.value) == str(cpu_error.value)


@pytest.mark.parametrize(
    ("cls", "params"), [(SdfPoints, {"n_volume": 40, "n_surface": 40, "seed": 3}), (SdfGrid, {"resolution": 5})]
)
def test_cuda_variant_of_the_stage_gives_the_cpu_columns(meshes, cls, params):
    cpu_columns, gpu_columns = encode_on_both_variants(cls, params, batch_of(meshes["sphere"], meshes["open patch"]))
    for name, cpu_column in cpu_columns.items():
        gpu_column = gpu_columns[name]
        assert gpu_column.type == cpu_column.type, name
        # float32 columns: float64 results within RTOL may round to neighbouring float32 values
        for a, b in zip(cpu_column.to_pylist(), gpu_column.to_pylist(), strict=True):
            np.testing.assert_allclose(np.asarray(b, float), np.asarray(a, float), rtol=1e-6, atol=1e-7)


def test_a_tree_too_deep_for_the_gpu_stack_is_answered_on_the_cpu():
    """Triangles at x = 2**k make a tree one level deeper per triangle: more than a GPU thread's stack."""
    n = 300  # 63 levels
    x = 2.0 ** np.arange(n)
    zero, one = np.zeros(n), np.ones(n)
    v = np.concatenate([np.stack([x, zero, zero], 1), np.stack([x, one, zero], 1), np.stack([x, zero, one], 1)])
    f = np.stack([np.arange(n), np.arange(n) + n, np.arange(n) + 2 * n], 1)
    assert gpu.DeviceMesh(v, f).on_cpu
    p = np.array([[3.0, 0.2, 0.2], [2.0**150 + 1.0, 0.5, -1.0], [-1.0, -1.0, -1.0]])
    for cpu_result, gpu_result in zip(kernels.signed_distance(v, f, p), gpu.signed_distance(v, f, p), strict=True):
        assert np.array_equal(cpu_result, gpu_result)
    assert np.array_equal(kernels.winding_number(v, f, p), gpu.winding_number(v, f, p))
    assert not gpu.DeviceMesh(*shapes.sphere(radius=1.0, subdivisions=2)).on_cpu
