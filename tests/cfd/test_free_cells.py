"""The free cells of a closed mesh (cells no triangle touches, in connected pieces), which give most points their
integer winding number without an evaluation: every answer compared with the exact winding number."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
from hpcprep_cfd import shapes
from hpcprep_cfd.kernels import free_cells
from hpcprep_cfd.kernels.bvh import build_bvh
from hpcprep_cfd.kernels.winding import winding_number

from tests.cfd.data import geometry
from tests.cfd.test_spatial_kernels import box_mesh
from tests.conftest import require_module


def exact(v, f, p):
    return require_module("igl").winding_number(v, f, p)


def regions_of(v, f):
    return free_cells.free_regions(build_bvh(v, f).triangles)


def nested_shells():
    """A hollow ball (outer sphere outward, inner sphere inward: winding number 1 in the shell, 0 in the cavity)
    and a second sphere overlapping the first (2 where they overlap): pieces inside the box with 0, 1 and 2."""
    ov, of = shapes.sphere(1.0, subdivisions=4)
    iv, i_f = shapes.sphere(0.5, subdivisions=3)
    sv, sf = shapes.sphere(0.8, subdivisions=4, center=(1.2, 0.0, 0.0))
    v = np.vstack([ov, iv, sv])
    f = np.vstack([of, i_f[:, ::-1] + len(ov), sf + len(ov) + len(iv)])
    return v, f


def test_every_free_cell_centre_has_its_piece_s_winding_number():
    # The claim the shortcut rests on: one integer per piece, 0 for the pieces that reach the grid's faces.
    v, f = nested_shells()
    r = regions_of(v, f)
    ny, nz = r.dims[1], r.dims[2]
    cells = np.flatnonzero(r.label != free_cells.MARKED)
    idx = np.stack([cells // (ny * nz), (cells // nz) % ny, cells % nz], axis=1)
    w = np.rint(exact(v, f, r.lo + (idx + 0.5) * r.h))
    pieces = r.label[cells]
    for piece in np.unique(pieces):
        assert len(set(w[pieces == piece])) == 1, piece
    assert set(w[pieces == free_cells.OUTSIDE]) == {0.0}
    # the cavity, the shell and the overlap each got a piece of their own, and most cells are free
    assert {0.0, 1.0, 2.0} <= set(w[pieces != free_cells.OUTSIDE])
    assert len(r.seeds) >= 4
    assert (r.label == free_cells.MARKED).mean() < 0.5


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_winding_numbers_through_the_grid_equal_the_exact_ones(offset):
    # Far from the origin too, where the coordinate-to-cell map rounds most.
    v, f = nested_shells()
    v = v + offset
    rng = np.random.default_rng(0)
    p = v.min(axis=0) - 0.2 + rng.random((20_000, 3)) * (v.max(axis=0) - v.min(axis=0) + 0.4)
    assert free_cells.worth_a_grid(len(f), len(p))
    w = winding_number(v, f, p)
    assert np.array_equal(w, np.rint(exact(v, f, p)))
    # without the grid (too few points for one) the same values
    assert np.array_equal(winding_number(v, f, p[:100]), w[:100])


def test_points_a_hair_off_the_surface_are_evaluated_not_looked_up():
    # Points 1e-9 of the size off the surface fall in marked cells, whichever side they are on.
    v, f = nested_shells()
    tri = v[f]
    rng = np.random.default_rng(1)
    t = rng.integers(0, len(f), 5000)
    a, b = rng.random((2, len(t)))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    on = tri[t, 0] + a[:, None] * (tri[t, 1] - tri[t, 0]) + b[:, None] * (tri[t, 2] - tri[t, 0])
    n = np.cross(tri[t, 1] - tri[t, 0], tri[t, 2] - tri[t, 0])
    n /= np.linalg.norm(n, axis=1)[:, None]
    p = np.vstack([on + 1e-9 * n, on - 1e-9 * n])
    r = regions_of(v, f)
    assert np.all(free_cells.region_of(p, r) == free_cells.MARKED)
    w = winding_number(v, f, np.vstack([p, rng.random((20_000, 3))]))[: len(p)]
    assert np.array_equal(w, np.rint(exact(v, f, p)))


def turned(v, degrees=(30.0, 20.0)):
    a, b = np.radians(degrees)
    rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(b), -np.sin(b)], [0.0, np.sin(b), np.cos(b)]])
    return v @ (rx @ rz).T


def test_large_triangles_mark_only_the_cells_their_plane_crosses():
    # A turned box of 12 triangles: each spans hundreds of cells, slanted; without the plane test every cell of
    # its box would be marked. The cells inside are free and looked up as inside (1).
    v, f = box_mesh()
    v = turned(v)
    r = regions_of(v, f)
    assert (r.label == free_cells.MARKED).mean() < 0.6
    assert len(r.seeds) == 2  # outside and the box's inside
    rng = np.random.default_rng(2)
    p = rng.uniform(-1.2, 1.2, (4000, 3))
    piece = free_cells.region_of(p, r)
    assert (piece > free_cells.OUTSIDE).sum() > 100  # points looked up inside
    w = winding_number(v, f, p)
    local = p @ turned(np.eye(3)).T  # back in the box's frame (the turn is orthogonal)
    inside = np.all(np.abs(local) < [1.0, 0.5, 0.25], axis=1)
    assert np.array_equal(w, inside.astype(float))


def test_points_outside_the_box_and_not_finite():
    v, f = box_mesh()
    r = regions_of(v, f)
    p = np.array([[5.0, 0.0, 0.0], [1.0 + 1e-12, 0.0, 0.0], [np.nan, 0.0, 0.0], [0.0, np.inf, 0.0]])
    assert list(free_cells.region_of(p, r)) == [free_cells.OUTSIDE, free_cells.OUTSIDE, -1, -1]
    w = winding_number(v, f, np.vstack([p, np.zeros((10, 3))]))
    assert list(w[:2]) == [0.0, 0.0] and np.isnan(w[2:4]).all() and np.all(w[4:] == 1.0)


def test_tutorial_hull_most_points_looked_up_and_all_exact():
    # bullet.stl.gz (closed): the points of its padded box, as the benchmark asks.
    trimesh = require_module("trimesh")
    with gzip.open(geometry("bullet.stl.gz")) as fh:
        m = trimesh.load(fh, file_type="stl", force="mesh")
    v, f = np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)
    lo, hi = v.min(axis=0), v.max(axis=0)
    p = lo - 0.1 * (hi - lo) + np.random.default_rng(3).random((len(f), 3)) * 1.2 * (hi - lo)
    piece = free_cells.region_of(p, regions_of(v, f))
    assert (piece == free_cells.MARKED).mean() < 0.3
    assert np.array_equal(winding_number(v, f, p), np.rint(exact(v, f, p)))
