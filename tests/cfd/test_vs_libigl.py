"""Winding numbers and distances against libigl on real tutorial geometry from openfoam-examples."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hpcprep_cfd.kernels.bvh import build_bvh
from hpcprep_cfd.kernels.distance import WINDING_ACCURACY, signed_distance, unsigned_distance
from hpcprep_cfd.kernels.grid import is_closed, sdf_grid
from hpcprep_cfd.kernels.reference_spatial import grid_nodes
from hpcprep_cfd.kernels.winding import (
    DEFAULT_ACCURACY,
    ERROR_BOUND,
    SNAP_ACCURACY,
    winding_from_bvh,
    winding_number,
)

from tests.cfd.data import geometry
from tests.conftest import require_module

MESHES = ["flange.stl.gz", "bullet.stl.gz", "propellerTip.obj.gz"]


def _igl():
    return require_module("igl")


def load(name):
    trimesh = require_module("trimesh")
    with gzip.open(geometry(name)) as fh:
        m = trimesh.load(fh, file_type=name.split(".")[-2], force="mesh")  # merges duplicate STL vertices
    return np.ascontiguousarray(m.vertices, dtype=np.float64), np.ascontiguousarray(m.faces, dtype=np.int64)


def query_points(v, f, n_box=1500, n_near=1000, seed=0):
    """Points in the bounding box padded by 10%, and points at up to ~1% of the size off random surface points."""
    rng = np.random.default_rng(seed)
    lo, hi = v.min(axis=0), v.max(axis=0)
    ext = hi - lo
    box = lo - 0.1 * ext + rng.random((n_box, 3)) * 1.2 * ext
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    t = rng.choice(len(f), n_near, p=area / area.sum())
    a, b = rng.random((2, n_near))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    on = tri[t, 0] + a[:, None] * (tri[t, 1] - tri[t, 0]) + b[:, None] * (tri[t, 2] - tri[t, 0])
    n = np.cross(tri[t, 1] - tri[t, 0], tri[t, 2] - tri[t, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1), 1e-300)[:, None]
    near = on + n * (rng.normal(size=(n_near, 1)) * 0.01 * ext.max())
    return np.vstack([box, near])


@pytest.fixture(scope="module", params=MESHES)
def case(request):
    igl = _igl()
    v, f = load(request.param)
    p = query_points(v, f)
    w_igl = igl.winding_number(v, f, p)
    return request.param, v, f, build_bvh(v, f), p, w_igl


def test_exact_winding_number_matches_libigl(case):
    _, v, f, bvh, p, w_igl = case
    w = winding_number(v, f, p, accuracy=None, bvh=bvh)
    assert np.abs(w - w_igl).max() < 1e-9


@pytest.mark.parametrize("accuracy", [SNAP_ACCURACY, 1.5, 1.6, 1.8, 2.0, DEFAULT_ACCURACY, 3.0])
def test_hierarchical_winding_number_within_documented_bound(case, accuracy):
    # The hierarchical value itself (winding_from_bvh never rounds), closed meshes included.
    _, _, _, bvh, p, w_igl = case
    err = np.abs(winding_from_bvh(bvh, p, accuracy) - w_igl)
    assert err.max() < ERROR_BOUND[accuracy]
    assert np.median(err) < ERROR_BOUND[accuracy] / 10


def test_default_winding_number_at_least_as_accurate_as_libigl_default(case):
    # The rule for the default: its largest error on these points is no larger than that of libigl's
    # hierarchical winding number at libigl's own default (FastWindingNumberBVH, accuracy_scale 2). Unrounded at
    # 2.0 ours fails this on bullet (0.0095 against 0.0049), so the test can fail.
    igl = _igl()
    name, v, f, bvh, p, w_igl = case
    fwn = igl.FastWindingNumberBVH()
    fwn.init(v, f)
    err_igl = np.abs(fwn.winding_number(p, 2.0) - w_igl).max()
    assert np.abs(winding_from_bvh(bvh, p, DEFAULT_ACCURACY) - w_igl).max() <= err_igl
    assert np.abs(winding_number(v, f, p, bvh=bvh) - w_igl).max() <= err_igl
    if name == "bullet.stl.gz":
        assert np.abs(winding_from_bvh(bvh, p, 2.0) - w_igl).max() > err_igl


def test_winding_number_of_a_closed_mesh_is_the_exact_integer_off_the_surface(case):
    # flange and bullet are closed: every box and near-surface point gets libigl's exact value (an integer up to
    # its rounding), at any accuracy, from a first pass whose own error is up to ERROR_BOUND[SNAP_ACCURACY].
    # propellerTip has open edges: its values are the hierarchical ones, not rounded.
    name, v, f, bvh, p, w_igl = case
    w = winding_number(v, f, p, bvh=bvh)
    if is_closed(v, f):
        assert name != "propellerTip.obj.gz"
        assert np.array_equal(w, np.rint(w)) and set(np.unique(w)) == {0.0, 1.0}
        assert np.abs(w - w_igl).max() < 1e-9
        assert np.array_equal(winding_number(v, f, p, accuracy=1.5, bvh=bvh), w)
        assert np.abs(winding_from_bvh(bvh, p, SNAP_ACCURACY) - w_igl).max() > 1e-3  # the rounding did the work
    else:
        assert name == "propellerTip.obj.gz"
        assert np.array_equal(w, winding_from_bvh(bvh, p, DEFAULT_ACCURACY))
        assert (np.abs(w - np.rint(w)) > 1e-6).mean() > 0.5


def test_unsigned_distance_matches_libigl(case):
    igl = _igl()
    _, v, f, bvh, p, _ = case
    d, c, fid = unsigned_distance(v, f, p, bvh=bvh)
    sq, _, c_igl = igl.point_mesh_squared_distance(p, v, f)
    d_igl = np.sqrt(sq)
    assert np.abs(d - d_igl).max() <= 1e-9 * d_igl.max()
    assert (np.abs(d - d_igl) <= 1e-9 * np.maximum(d_igl, 1e-12 * d_igl.max())).all()
    assert np.abs(np.linalg.norm(p - c, axis=1) - d).max() <= 1e-12 * d_igl.max()
    # the reported face holds the closest point: the distance to that face alone is d
    for i in range(0, len(p), 250):
        d_face, _, _ = unsigned_distance(v, f[fid[i : i + 1]], p[i : i + 1])
        assert d_face[0] == pytest.approx(d[i], rel=1e-12, abs=1e-18)


def test_signed_distance_sign_matches_libigl_winding_sign(case):
    igl = _igl()
    name, v, f, bvh, p, w_igl = case
    s, _, _ = signed_distance(v, f, p, bvh=bvh)
    s_igl, _, _, _ = igl.signed_distance(p, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)
    # (magnitudes are checked against libigl's unsigned distance above: with the winding-number sign type libigl
    # 2.6 returns inexact magnitudes on the open propellerTip mesh, up to 0.014 off its own unsigned distance)
    assert bvh.signed_volume > 0, f"{name} is expected to be oriented outwards"
    if is_closed(v, f):
        # closed: w is 0 or 1 off the surface, so the decisions agree at any distance above rounding
        sure = np.abs(s_igl) > 1e-9 * np.abs(s_igl).max()
    else:
        # open (flange, propellerTip have boundary edges): compare where w is clearly away from 1/2
        sure = np.abs(w_igl - 0.5) > ERROR_BOUND[WINDING_ACCURACY]
    assert sure.mean() > 0.9
    assert np.array_equal((s < 0)[sure], (s_igl < 0)[sure])
    assert (s < 0).any() and (s > 0).any()


def test_closedness_of_the_tutorial_meshes():
    closed = {name: is_closed(*load(name)) for name in MESHES}
    # trimesh leaves 376 duplicate vertices in flange (so it calls it not watertight); once equal coordinates are
    # welded every edge has two faces, one each way, and the winding number is an integer off the surface
    assert closed == {"flange.stl.gz": True, "bullet.stl.gz": True, "propellerTip.obj.gz": False}


def test_inside_out_closed_mesh_keeps_negative_inside():
    igl = _igl()
    v, f = load("bullet.stl.gz")
    p = query_points(v, f, 500, 500, seed=3)
    s, _, _ = signed_distance(v, f, p)
    s_flip, _, _ = signed_distance(v, f[:, ::-1], p)
    assert build_bvh(v, f[:, ::-1]).signed_volume < 0
    assert np.abs(s - s_flip).max() <= 1e-12 * np.abs(s).max()
    assert np.array_equal(s < 0, s_flip < 0) and (s < 0).any()
    # libigl has no such rule: on the flipped mesh its winding-number sign calls every point outside
    s_igl_flip, _, _, _ = igl.signed_distance(p, v, f[:, ::-1], sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)
    assert (s_igl_flip >= 0).all()


@pytest.mark.parametrize("name", ["bullet.stl.gz", "flange.stl.gz"])
def test_sdf_grid_equals_per_node_queries_and_libigl(name):
    igl = _igl()
    v, f = load(name)
    g, origin, spacing = sdf_grid(v, f, (20, 22, 24))
    nodes = grid_nodes(g.shape, origin, spacing)
    d, _, _ = signed_distance(v, f, nodes)
    assert np.abs(g.ravel() - d).max() <= 1e-12 * np.abs(d).max()
    s_igl, _, _, _ = igl.signed_distance(nodes, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)
    assert np.abs(np.abs(g.ravel()) - np.abs(s_igl)).max() <= 1e-9 * np.abs(s_igl).max()
    w = igl.winding_number(v, f, nodes)
    # a node on the surface (the flange's faces lie on grid planes) has no side: distance 0 here, and
    # a rounding-level value of either sign from libigl
    off_surface = np.abs(s_igl) > 1e-12 * np.abs(s_igl).max()
    sure = (np.abs(w - 0.5) > ERROR_BOUND[WINDING_ACCURACY]) & off_surface
    assert np.array_equal((g.ravel() < 0)[sure], (s_igl < 0)[sure]) and (g < 0).any()
    assert np.all(np.abs(g.ravel()[~off_surface]) <= 1e-12 * np.abs(s_igl).max())
