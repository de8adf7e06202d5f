"""Caps that close open meshes, and the winding numbers of open meshes found through them, against libigl."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_cfd import shapes
from hpcprep_cfd.kernels.bvh import build_bvh
from hpcprep_cfd.kernels.caps import boundary_caps
from hpcprep_cfd.kernels.closed import is_closed, net_edges
from hpcprep_cfd.kernels.distance import WINDING_ACCURACY, orientation_flip, signed_distance, unsigned_distance
from hpcprep_cfd.kernels.signs import caps_pay
from hpcprep_cfd.kernels.winding import DEFAULT_ACCURACY, ERROR_BOUND, winding_from_bvh, winding_number

from tests.cfd.test_vs_libigl import _igl, load, query_points


def closed_up(v, f):
    apexes, caps = boundary_caps(v, f)
    return np.vstack([v, apexes]), np.vstack([f, caps]), len(caps)


def grid_sheet(n: int = 40):
    """A flat, wavy square of 2 n^2 triangles: its whole rim is the boundary."""
    x, y = np.meshgrid(np.linspace(0, 1, n + 1), np.linspace(0, 1, n + 1))
    v = np.stack([x.ravel(), y.ravel(), 0.1 * np.sin(3 * x.ravel()) * np.cos(2 * y.ravel())], axis=1)
    i = np.arange(n)[:, None] * (n + 1) + np.arange(n)[None, :]
    a, b, c, d = i.ravel(), i.ravel() + 1, i.ravel() + n + 1, i.ravel() + n + 2
    return v, np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])


def holed(f, every: int):
    return np.ascontiguousarray(f[np.arange(len(f)) % every != 0])


def test_caps_close_open_meshes_of_every_kind():
    sheet_closed = closed_up(*grid_sheet())
    assert boundary_caps(*sheet_closed[:2])[1].shape == (0, 3)  # a closed mesh needs none
    v, f = load("flange.stl.gz")  # closed once its duplicate vertices are welded
    cases = {
        "holes": (v, holed(f, 50)),
        "inside-out holes": (v, holed(f[:, ::-1], 50)),
        "open tutorial mesh": load("propellerTip.obj.gz"),
        "sheet": grid_sheet(),
    }
    # two holes that share a vertex: the boundary passes through it twice
    t0 = 0
    shared = f[t0, 0]
    t1 = next(t for t in range(1, len(f)) if shared in f[t] and not set(f[t]) & (set(f[t0]) - {shared}))
    cases["holes sharing a vertex"] = (v, np.delete(f, [t0, t1], axis=0))
    # a soup's repeated vertices: the boundary is only found once equal coordinates are welded
    sv, sf = v[holed(f, 50)].reshape(-1, 3), np.arange(3 * len(holed(f, 50))).reshape(-1, 3)
    cases["soup with holes"] = (sv, sf)
    for name, (cv, cf) in cases.items():
        assert not is_closed(cv, cf), name
        both_v, both_f, n_caps = closed_up(cv, cf)
        assert is_closed(both_v, both_f), name
        assert 0 < n_caps <= 0.05 * 3 * len(cf), (name, n_caps)
    # each hole of one triangle is capped by a fan of three
    assert closed_up(sheet_closed[0], np.delete(sheet_closed[1], [5], axis=0))[2] == 3


def test_a_mesh_closed_once_a_seam_is_welded_needs_no_caps():
    # the sheet closed up, then split along a seam: the faces on one side use copies of the seam's vertices
    v, f, _ = closed_up(*grid_sheet())
    seam = np.unique(f[:40])  # vertices of the first row of triangles
    copies = {int(i): len(v) + k for k, i in enumerate(seam)}
    v2 = np.vstack([v, v[seam]])
    f2 = f.copy()
    f2[:20] = np.vectorize(lambda i: copies.get(int(i), int(i)))(f[:20])
    as_indexed, _ = net_edges(np.arange(len(v2)), len(v2), f2, len(f2))
    assert 0 < len(as_indexed) <= 0.05 * 3 * len(f2)  # a small boundary until the seam is welded
    assert is_closed(v2, f2)
    assert boundary_caps(v2, f2)[1].shape == (0, 3)
    # so it gets a closed mesh's exact integers, the same as before the split
    p = np.random.default_rng(0).random((500, 3)) * [1.2, 1.2, 0.4] - [0.1, 0.1, 0.2]
    w = winding_number(v2, f2, p)
    assert np.array_equal(w, winding_number(v, f, p)) and np.array_equal(w, np.rint(w))
    assert set(np.abs(w).tolist()) == {0.0, 1.0}


def test_a_boundary_as_large_as_the_mesh_gets_no_caps():
    rng = np.random.default_rng(0)
    v = rng.random((300, 3))
    f = rng.integers(0, 300, (100, 3))  # random triangles: nearly every edge is boundary
    assert boundary_caps(v, f) is None
    p = rng.random((50, 3))
    # one pass over the mesh, as before caps
    assert np.array_equal(winding_number(v, f, p), winding_from_bvh(build_bvh(v, f), p, DEFAULT_ACCURACY))


@pytest.mark.parametrize("name", ["propellerTip", "flange with holes", "sheet"])
def test_open_mesh_winding_numbers_through_caps_match_libigl_exact(name):
    """``w = w_(mesh + caps) - w_caps``: the first term exact (rounded), so the error is the caps' alone, well
    under the documented bound and under one pass over the mesh at the same accuracy."""
    igl = _igl()
    if name == "propellerTip":
        v, f = load("propellerTip.obj.gz")
    elif name == "sheet":
        v, f = grid_sheet()
    else:
        v, f = load("flange.stl.gz")
        f = holed(f, 97)
    p = query_points(v, f, n_box=1500, n_near=1000, seed=4)
    exact = igl.winding_number(v, f, p)
    err = np.abs(winding_number(v, f, p) - exact).max()
    one_pass = np.abs(winding_from_bvh(build_bvh(v, f), p, DEFAULT_ACCURACY) - exact).max()
    assert err < ERROR_BOUND[DEFAULT_ACCURACY]
    assert err <= one_pass / 3, (err, one_pass)
    fwn = igl.FastWindingNumberBVH()
    fwn.init(v, f)
    assert err <= np.abs(fwn.winding_number(p, 2.0) - exact).max()
    # with the mesh's own tree passed in, one pass over it (no caps to build)
    assert np.array_equal(winding_number(v, f, p, bvh=build_bvh(v, f)), winding_from_bvh(build_bvh(v, f), p, 2.4))


@pytest.mark.parametrize(
    "name", ["cyclone", "propellerTip", "sphere with holes", "hemisphere", "flange with holes", "wigley"]
)
def test_signed_distances_of_open_meshes_take_the_exact_winding_numbers_sign(name):
    """The sign through caps (few and small: the cyclone's inlets, the propeller's rim, a few holes) or one
    winding number of the mesh per point (many holes; a rim as large as the mesh: wigley's open deck) is that of
    the exact winding number wherever it is farther from 0.5 than the sign's error bound; the magnitudes are the
    unsigned distances."""
    igl = _igl()
    if name == "flange with holes":
        v, f = load("flange.stl.gz")
        f = holed(f, 50)
    elif name == "sphere with holes":
        v, f = shapes.sphere(radius=1.0, subdivisions=4)
        f = np.delete(f, np.arange(5) * 1000, axis=0)
    elif name == "hemisphere":  # one large cap: the caps' own winding number decides many signs
        from tests.cfd.test_spatial_kernels import hemisphere

        v, f = hemisphere(8, 24)
    else:
        v, f = load(f"{name}.obj.gz" if name == "propellerTip" else f"{name}.stl.gz")
    caps = boundary_caps(v, f)
    assert caps is not None and len(caps[1])
    assert caps_pay(v, *caps) == (name in ("cyclone", "propellerTip", "sphere with holes", "hemisphere"))
    p = query_points(v, f, n_box=3000, n_near=2000, seed=5)
    d, closest, fid = signed_distance(v, f, p)
    ud, uclosest, ufid = unsigned_distance(v, f, p)
    assert np.array_equal(np.abs(d), ud) and np.array_equal(closest, uclosest) and np.array_equal(fid, ufid)
    w = orientation_flip(build_bvh(v, f)) * igl.winding_number(v, f, p)
    clear = (np.abs(w - 0.5) > ERROR_BOUND[WINDING_ACCURACY]) & (ud > 0)
    assert clear.sum() > 0.95 * len(p)
    assert np.array_equal(d[clear] < 0, w[clear] > 0.5)
    assert 0 < (d < 0).sum() < len(p)
