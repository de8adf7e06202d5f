"""Spatial kernels (BVH, winding numbers, distances, SDF grids) against analytic answers and the NumPy references.

One module because the kernels are tested on the same tiny meshes built at its top (box,
octahedron, icosphere, hemisphere), which ``tests/properties`` imports from here too."""

from __future__ import annotations

import numpy as np
import pytest
from hpcprep_cfd.kernels.bvh import EXP_AREA, build_bvh, morton_order
from hpcprep_cfd.kernels.caps import boundary_caps
from hpcprep_cfd.kernels.distance import (
    closest_on_triangle,
    leaf_d2,
    search_bounds,
    signed_distance,
    triangle_bounds,
    unsigned_distance,
)
from hpcprep_cfd.kernels.grid import ROW_PACKET, WIDE_PACKET, _edge_bounds, is_closed, sdf_grid
from hpcprep_cfd.kernels.grid_components import components
from hpcprep_cfd.kernels.reference_spatial import (
    far_field_ref,
    grid_nodes,
    point_triangle_ref,
    sdf_grid_ref,
    unsigned_distance_ref,
    winding_number_ref,
)
from hpcprep_cfd.kernels.signs import _integer, _integer_capped, caps_pay
from hpcprep_cfd.kernels.winding import (
    DEFAULT_ACCURACY,
    ERROR_BOUND,
    SNAP_ACCURACY,
    _far_field,
    tree_depth,
    winding_fast_one,
    winding_number,
)

# ------------------------------------------------------------------------------------------------ tiny meshes


def box_mesh(lo=(-1.0, -0.5, -0.25), hi=(1.0, 0.5, 0.25)):
    """Axis-aligned box, 12 outward triangles."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    v = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
    # vertex index = 4 * ix + 2 * iy + iz
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [(a, b, c) for a, b, c, d in quads] + [(a, c, d) for a, b, c, d in quads]
    return v, np.array(f)


def octahedron_mesh(s=1.0):
    """|x| + |y| + |z| <= s, 8 outward triangles."""
    v = np.array([[s, 0, 0], [-s, 0, 0], [0, s, 0], [0, -s, 0], [0, 0, s], [0, 0, -s]], float)
    f = []
    for x in (0, 1):
        for y in (2, 3):
            for z in (4, 5):
                tri = [x, y, z]
                n = np.cross(v[y] - v[x], v[z] - v[x])
                if n @ (v[x] + v[y] + v[z]) < 0:
                    tri = [x, z, y]
                f.append(tri)
    return v, np.array(f)


def icosphere(level=3, radius=1.0):
    t = (1.0 + 5**0.5) / 2.0
    v = [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t]]
    v += [[t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]]
    f = [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2]]
    f += [[10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5]]
    f += [[2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]]
    v = [np.array(p, float) / np.linalg.norm(p) for p in v]
    for _ in range(level):
        cache, nf = {}, []

        def mid(a, b, cache=cache):
            key = (min(a, b), max(a, b))
            if key not in cache:
                m = v[a] + v[b]
                v.append(m / np.linalg.norm(m))
                cache[key] = len(v) - 1
            return cache[key]

        for a, b, c in f:
            ab, bc, ca = mid(a, b), mid(b, c), mid(c, a)
            nf += [[a, ab, ca], [b, bc, ab], [c, ca, bc], [ab, bc, ca]]
        f = nf
    return np.array(v) * radius, np.array(f)


def hemisphere(rings=8, segments=24):
    """Open upper unit hemisphere (z >= 0), outward, rim exactly in the plane z = 0 (latitude-longitude grid)."""
    theta = np.linspace(0, np.pi / 2, rings + 1)[1:]
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    ring = [np.c_[np.sin(t) * np.cos(phi), np.sin(t) * np.sin(phi), np.full(segments, np.cos(t))] for t in theta]
    v = np.vstack([[[0.0, 0.0, 1.0]], *ring])
    v[-segments:, 2] = 0.0
    f = [[0, 1 + j, 1 + (j + 1) % segments] for j in range(segments)]
    for r in range(rings - 1):
        a0, b0 = 1 + r * segments, 1 + (r + 1) * segments
        for j in range(segments):
            j1 = (j + 1) % segments
            f += [[a0 + j, b0 + j, b0 + j1], [a0 + j, b0 + j1, a0 + j1]]
    return v, np.array(f)


# ------------------------------------------------------------------------------------------------ analytic SDFs


def box_sdf(p, lo, hi):
    c, h = (np.asarray(lo) + np.asarray(hi)) / 2, (np.asarray(hi) - np.asarray(lo)) / 2
    q = np.abs(p - c) - h
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside


def octahedron_sdf(p, s=1.0):
    """Exact SDF of |x| + |y| + |z| <= s. By symmetry fold into the first octant; the nearest point of the solid then
    lies on the face x + y + z = s, 0 <= x, y, z: its projection when that lands on the face, else the nearest of the
    face's three edges (each in a coordinate plane, between two axis vertices)."""
    p = np.abs(p)
    plane = (p.sum(axis=1) - s) / np.sqrt(3.0)
    proj = p - ((p.sum(axis=1) - s) / 3.0)[:, None]
    on_face = (proj >= 0).all(axis=1)
    axes = s * np.eye(3)
    best = np.full(len(p), np.inf)
    for a, b in ((0, 1), (1, 2), (2, 0)):
        e = axes[b] - axes[a]
        t = np.clip(((p - axes[a]) @ e) / (e @ e), 0, 1)
        best = np.minimum(best, np.linalg.norm(p - (axes[a] + t[:, None] * e), axis=1))
    outside = np.where(on_face, plane, best)
    return np.where(plane > 0, outside, plane)


# ------------------------------------------------------------------------------------------------ BVH


def test_bvh_invariants():
    v, f = icosphere(3)
    b = build_bvh(v, f)
    assert np.array_equal(np.sort(b.perm), np.arange(len(f)))
    assert np.array_equal(b.triangles, v[f][b.perm])
    inner = b.left >= 0
    assert np.array_equal(b.right[inner], b.left[inner] + 1)
    # Every triangle sits in exactly one leaf, and every box contains its triangles.
    seen = np.zeros(len(f), int)
    for n in np.flatnonzero(~inner):
        s, c = b.start[n], b.count[n]
        seen[s : s + c] += 1
        pts = b.triangles[s : s + c].reshape(-1, 3)
        assert (pts >= b.boxes[n, 0]).all() and (pts <= b.boxes[n, 1]).all()
        assert (np.linalg.norm(pts - b.spheres[n, :3], axis=1) <= b.spheres[n, 3] * (1 + 1e-12)).all()
    assert (seen == 1).all()
    for n in np.flatnonzero(inner):
        for ch in (b.left[n], b.right[n]):
            assert (b.boxes[ch, 0] >= b.boxes[n, 0]).all() and (b.boxes[ch, 1] <= b.boxes[n, 1]).all()
    area = 0.5 * np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]).sum(axis=0)
    assert np.allclose(b.expansion[0, EXP_AREA : EXP_AREA + 3], area, atol=1e-12)
    assert b.signed_volume == pytest.approx(4 / 3 * np.pi, rel=0.02)


# ------------------------------------------------------------------------------------------------ winding numbers


def _node_triangles(b, node):
    """BVH-ordered triangles under ``node`` (children's ranges are adjacent, so it is one slice)."""
    lo = hi = node
    while b.left[lo] >= 0:
        lo = b.left[lo]
    while b.left[hi] >= 0:
        hi = b.right[hi]
    return b.triangles[b.start[lo] : b.start[hi] + b.count[hi]]


@pytest.mark.parametrize("n", [300, 50_000])  # a comparison sort below _RADIX_FROM, a radix sort above
def test_morton_order_sorts_by_interleaved_coordinate_bits(n):
    rng = np.random.default_rng(n)
    p = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1]
    p[1::2] = p[::2][: len(p[1::2])]  # ties: every point twice
    p[5, 1] = np.nan
    lo, hi = np.nanmin(p, axis=0), np.nanmax(p, axis=0)
    codes = []
    for row in p:
        if not np.isfinite(row).all():
            codes.append(2**63 - 1)
            continue
        q = ((row - lo) / (hi - lo) * 2097151.0).astype(np.int64)
        codes.append(sum(((int(q[d]) >> b) & 1) << (3 * b + d) for b in range(21) for d in range(3)))
    codes = np.array(codes, dtype=np.int64)
    order = morton_order(p)
    assert np.array_equal(np.sort(order), np.arange(n))
    assert np.all(np.diff(codes[order]) >= 0) and order[-1] == 5
    if n > 1024:
        assert np.array_equal(order, np.argsort(codes, kind="stable"))


def test_folded_far_field_equals_moment_expansion():
    # The kernel stores N and two polynomials instead of the moment tensors; same Taylor terms, so it must equal the
    # tensor evaluation to rounding, for leaves and inner nodes, in every direction.
    v, f = icosphere(2)
    v = v * [1.0, 0.7, 0.4] + [0.3, -0.2, 0.1]
    b = build_bvh(v, f)
    rng = np.random.default_rng(7)
    nodes = [0, 1, 2, *rng.choice(len(b.left), 12, replace=False)]
    for node in nodes:
        tri = _node_triangles(b, node)
        p, radius = b.spheres[node, :3], b.spheres[node, 3]
        assert np.allclose(b.expansion[node, :3], p) and np.isclose(b.expansion[node, 3], radius**2)
        for _ in range(4):
            d = rng.normal(size=3)
            q = p + d / np.linalg.norm(d) * radius * rng.uniform(1.5, 6.0)
            y = p - q
            got = _far_field(b.expansion, node, y[0], y[1], y[2], y @ y, True)
            want = far_field_ref(tri, p, q)
            assert abs(got - want) <= 1e-12 * max(1.0, np.abs(_far_field(b.expansion, node, *y, y @ y, False)))
            # and it is an expansion of the real thing: close to the exact solid angle sum at 6 radii
            if np.linalg.norm(y) > 5.5 * radius:
                exact = 4 * np.pi * winding_number_ref(tri.reshape(-1, 3), np.arange(3 * len(tri)).reshape(-1, 3), q)[0]
                assert abs(got - exact) < 2e-3 * np.abs(b.expansion[node, 4:7]).sum() / radius**2 + 1e-12


def test_third_order_far_field_is_closer_to_the_exact_sum():
    # The order-3 term is what lets the default accuracy open fewer nodes: from 3 to 12 radii away its error
    # against the exact solid-angle sum must be well below the order-2 expansion's, and fall faster with distance.
    v, f = icosphere(2)
    v = v * [1.0, 0.7, 0.4]
    tri = v[f][:40]
    p = tri.reshape(-1, 3).mean(axis=0)
    radius = np.linalg.norm(tri.reshape(-1, 3) - p, axis=1).max()
    rng = np.random.default_rng(11)
    ratios = {}
    for dist in (3.0, 12.0):
        e2, e3 = [], []
        for _ in range(20):
            d = rng.normal(size=3)
            q = p + d / np.linalg.norm(d) * radius * dist
            exact = 4 * np.pi * winding_number_ref(tri.reshape(-1, 3), np.arange(3 * len(tri)).reshape(-1, 3), q)[0]
            e2.append(abs(far_field_ref(tri, p, q, order=2) - exact))
            e3.append(abs(far_field_ref(tri, p, q, order=3) - exact))
        ratios[dist] = np.median(np.array(e3) / np.array(e2))
    assert ratios[3.0] < 0.5 and ratios[12.0] < ratios[3.0] / 2


def test_winding_inside_outside_sphere():
    v, f = icosphere(3)
    rng = np.random.default_rng(1)
    inside = rng.normal(size=(200, 3))
    inside *= (rng.random(200) * 0.9 / np.linalg.norm(inside, axis=1))[:, None]
    outside = rng.normal(size=(200, 3))
    outside *= ((1.1 + 2 * rng.random(200)) / np.linalg.norm(outside, axis=1))[:, None]
    pts = np.vstack([inside, outside])
    exact = winding_number(v, f, pts, accuracy=None)
    assert np.abs(exact[:200] - 1).max() < 1e-10 and np.abs(exact[200:]).max() < 1e-10
    assert np.abs(exact - winding_number_ref(v, f, pts)).max() < 1e-12
    fast = winding_number(v, f, pts)
    assert np.abs(fast - exact).max() < ERROR_BOUND[DEFAULT_ACCURACY]


def test_winding_number_of_closed_meshes_is_exact_off_the_surface_and_a_fraction_on_its_edges():
    v, f = box_mesh()  # x in [-1, 1], y in [-0.5, 0.5], z in [-0.25, 0.25]
    rng = np.random.default_rng(5)
    inside = rng.uniform(-1, 1, (300, 3)) * [0.999, 0.499, 0.249]
    outside = rng.uniform(-3, 3, (300, 3))
    outside = outside[(np.abs(outside) > [1.001, 0.501, 0.251]).any(axis=1)]
    pts = np.vstack([inside, outside])
    w = winding_number(v, f, pts, accuracy=1.5)
    assert np.array_equal(w[:300], np.ones(300)) and np.array_equal(w[300:], np.zeros(len(outside)))
    assert not np.signbit(w).any()  # no -0.0
    # Inside out: -1 inside. Two nested shells: 2 inside the inner one.
    assert np.array_equal(winding_number(v, f[:, ::-1], inside), -np.ones(300))
    sv, sf = icosphere(2)
    nested_v = np.vstack([sv, 0.5 * sv])
    nested_f = np.vstack([sf, sf + len(sv)])
    q = np.array([[0.0, 0.0, 0.1], [0.7, 0.0, 0.0], [2.0, 0.0, 0.0]])
    assert np.array_equal(winding_number(nested_v, nested_f, q), [2.0, 1.0, 0.0])
    # On the surface's edges the value is the enclosed share of the solid angle, not rounded: 1/4 on an edge of
    # the box, 1/8 at a corner, 1/2 on the diagonal that splits a face into two triangles.
    on_edges = np.array([[1.0, 0.0, 0.25], [1.0, 0.5, 0.25], [0.0, 0.5, 0.0]])
    exact = winding_number(v, f, on_edges, accuracy=None)
    assert np.allclose(exact, [0.25, 0.125, 0.5], atol=1e-12)
    assert np.abs(winding_number(v, f, on_edges) - exact).max() < ERROR_BOUND[DEFAULT_ACCURACY]


def test_winding_open_hemisphere_is_half_on_its_disc():
    v, f = hemisphere()
    assert not is_closed(v, f)
    rng = np.random.default_rng(2)
    r = 0.7 * np.sqrt(rng.random(100))
    a = 2 * np.pi * rng.random(100)
    disc = np.c_[r * np.cos(a), r * np.sin(a), np.zeros(100)]
    # Hemisphere plus its (polygonal) rim disc is closed; from a point of the flat disc that closed surface has
    # w = 1/2 and the flat disc itself contributes 0, so the open hemisphere alone gives exactly 1/2.
    assert np.abs(winding_number(v, f, disc, accuracy=None) - 0.5).max() < 1e-10
    above = disc + [0, 0, 0.3]
    w = winding_number(v, f, above, accuracy=None)
    assert (w > 0.5).all() and (w < 1.0).all()


def test_winding_soup_and_hole():
    v, f = icosphere(2)
    pts = np.array([[0.0, 0, 0], [0.2, -0.3, 0.1], [3.0, 0, 0]])
    soup_v = v[f].reshape(-1, 3)  # every triangle with its own three vertices
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)
    assert np.allclose(winding_number(soup_v, soup_f, pts, None), [1, 1, 0], atol=1e-10)
    # A hole: w of the mesh minus some faces is w(sphere) minus the removed faces' share.
    removed, kept = f[:5], f[5:]
    w_removed = winding_number(v, removed, pts, None)
    w_holed = winding_number(v, kept, pts, None)
    assert np.allclose(w_holed, [1, 1, 0] - w_removed, atol=1e-12)
    assert 0.9 < w_holed[0] < 1.0
    assert np.abs(winding_number(v, kept, pts) - w_holed).max() < ERROR_BOUND[DEFAULT_ACCURACY]


def test_degenerate_triangles_give_no_nan():
    v, f = icosphere(1)
    extra_v = np.vstack([v, [[0.3, 0.3, 0.3], [0.6, 0.6, 0.6], [0.9, 0.9, 0.9]]])
    n = len(v)
    degenerate = np.array([[0, 0, 1], [2, 2, 2], [n, n + 1, n + 2], [n, n + 2, n + 1]])
    faces = np.vstack([f, degenerate])
    pts = np.vstack([extra_v, np.random.default_rng(3).normal(size=(50, 3))])
    for acc in (None, 2.0):
        w = winding_number(extra_v, faces, pts, accuracy=acc)
        assert np.isfinite(w).all()
    d, c, fid = signed_distance(extra_v, faces, pts)
    assert np.isfinite(d).all() and np.isfinite(c).all()
    ref, _, _ = unsigned_distance_ref(extra_v, faces, pts)
    assert np.allclose(np.abs(d), ref, rtol=1e-12, atol=1e-15)
    # A mesh of degenerate triangles only: distance to a segment (0.3..0.9 on the diagonal).
    seg_d, _, _ = unsigned_distance(extra_v, degenerate[2:], np.array([[0.0, 0, 0], [1.0, 0.0, 0.0]]))
    assert seg_d[0] == pytest.approx(np.sqrt(3 * 0.09))
    t = np.clip(1.0 / 3.0, 0.3, 0.9)
    assert seg_d[1] == pytest.approx(np.linalg.norm(np.array([1.0, 0, 0]) - t))
    g, _, _ = sdf_grid(extra_v, faces, 6)
    assert np.isfinite(g).all()


# ------------------------------------------------------------------------------------------------ distances


def test_distances_match_reference():
    v, f = icosphere(2)
    v = v * [1.0, 0.7, 0.4] + [0.1, -0.2, 0.3]  # an ellipsoid: no symmetry to hide mistakes
    rng = np.random.default_rng(4)
    pts = rng.uniform(-1.5, 1.5, size=(400, 3))
    d, c, fid = unsigned_distance(v, f, pts)
    dr, cr, _ = unsigned_distance_ref(v, f, pts)
    assert np.abs(d - dr).max() < 1e-12
    assert np.abs(np.linalg.norm(pts - c, axis=1) - d).max() < 1e-12
    # the returned face really holds the closest point: the distance to that face alone equals d
    for i in range(20):
        dface, _, _ = unsigned_distance_ref(v, f[fid[i : i + 1]], pts[i : i + 1])
        assert dface[0] == pytest.approx(d[i], rel=1e-12)
    sd, _, _ = signed_distance(v, f, pts)
    assert np.array_equal(np.abs(sd), d)
    w = winding_number_ref(v, f, pts)
    assert np.array_equal(sd < 0, w > 0.5)


def test_the_search_bounds_never_exceed_a_true_distance():
    # nearest_one skips a leaf or a triangle when its bound reaches the best distance so far; a bound above the
    # true distance would lose the nearest triangle. Checked against the exact distance to every triangle and to
    # every leaf's triangles, from points near and far, on a bumpy sphere (leaves far from flat) with a sliver,
    # a needle and a collapsed triangle added.
    v, f = icosphere(2)
    v = v * (1.0 + 0.15 * np.sin(7 * v[:, :1]) * np.cos(5 * v[:, 1:2]))
    n = len(v)
    v = np.vstack([v, [[2.0, 0, 0], [2.0, 1e-9, 0], [3.0, 0, 0], [2.5, 2.5, 2.5]]])
    f = np.vstack([f, [[n, n + 1, n + 2], [n, n + 2, n + 2], [n + 3, n + 3, n + 3]]])
    bvh = build_bvh(v, f)
    tri_bounds, leaf_bounds = search_bounds(bvh)
    rng = np.random.default_rng(6)
    pts = np.vstack([rng.uniform(-3.5, 3.5, (150, 3)), v[rng.integers(0, len(v), 150)] + rng.normal(0, 0.02, (150, 3))])
    tri = bvh.triangles
    d2, _ = point_triangle_ref(pts, tri)  # (points, triangles in BVH order)
    h = np.einsum("tk,ptk->pt", tri_bounds[:, :3], pts[:, None, :] - tri[None, :, 0])
    to_centroid = pts[:, None, :] - tri_bounds[None, :, 3:6]
    lateral = np.sqrt(np.maximum((to_centroid**2).sum(-1) - h * h, 0.0)) - tri_bounds[None, :, 6]
    assert (h * h + np.maximum(lateral, 0.0) ** 2 <= d2 * (1 + 1e-12)).all()
    assert (h * h + np.maximum(lateral, 0.0) ** 2 > 0.5 * d2).mean() > 0.5
    leaves = np.flatnonzero(bvh.left < 0)
    tight = 0
    for leaf in leaves:
        own = d2[:, bvh.start[leaf] : bvh.start[leaf] + bvh.count[leaf]].min(axis=1)
        bound = np.array([leaf_d2(leaf_bounds, leaf, *p) for p in pts])
        assert (bound <= own * (1 + 1e-12)).all()
        tight += (bound > 0.5 * own).sum()
    assert tight > 0.5 * len(leaves) * len(pts)  # and they are bounds worth having


def _union_of_shells(shells):
    vs, fs, n = [], [], 0
    for v, f in shells:
        vs.append(v)
        fs.append(f + n)
        n += len(v)
    return np.vstack(vs), np.vstack(fs)


@pytest.mark.parametrize("kind", ["overlapping", "nested", "cavity"])
def test_signed_distance_on_closed_meshes_with_several_shells_follows_the_winding_number(kind):
    # Closed meshes whose winding number is not just 0/1 or whose nearest surface does not tell the side: two
    # overlapping spheres (self-intersecting, w = 2 in the overlap), a sphere inside a sphere of the same
    # orientation (w = 2 inside both, 1 between), and one of opposite orientation (a cavity, w = 0 inside it).
    # On closed meshes the sign comes from one winding number per chain of points (distance.py); every point
    # must still get its own winding number's sign. Points: a grid-like random cloud plus points hugging the
    # surfaces, so chains both form and break.
    v, f = icosphere(3)
    if kind == "overlapping":
        v2, f2 = _union_of_shells([(v, f), (v * 0.8 + [0.9, 0.2, 0.0], f)])
    elif kind == "nested":
        v2, f2 = _union_of_shells([(v, f), (v * 0.5 + [0.1, 0.0, 0.0], f)])
    else:
        v2, f2 = _union_of_shells([(v, f), (v * 0.5 + [0.1, 0.0, 0.0], f[:, ::-1])])
    assert is_closed(v2, f2)
    rng = np.random.default_rng(7)
    box = rng.uniform(-1.4, 2.0, size=(3000, 3))
    surf = v2[f2[rng.integers(0, len(f2), 1000)]].mean(axis=1)
    near = surf + rng.normal(scale=0.02, size=surf.shape)
    pts = np.vstack([box, near])
    sd, _, _ = signed_distance(v2, f2, pts)
    d, _, _ = unsigned_distance(v2, f2, pts)
    w = winding_number_ref(v2, f2, pts)
    assert np.array_equal(np.abs(sd), d)
    assert np.array_equal(sd < 0, w > 0.5)
    if kind == "overlapping":
        assert (np.abs(w - 2) < 1e-9).sum() > 50  # the overlap is sampled
    if kind == "nested":
        assert ((np.abs(w - 2) < 1e-9) & (sd < 0)).sum() > 50 and ((np.abs(w - 1) < 1e-9) & (sd < 0)).sum() > 50
    if kind == "cavity":
        assert ((np.abs(w) < 1e-9) & (np.linalg.norm(pts - [0.1, 0, 0], axis=1) < 0.45)).sum() > 20


def test_a_chain_value_far_from_an_integer_is_evaluated_again_at_the_signs_accuracy():
    # The chains of a closed mesh take their integer winding number from the snap accuracy when the value there
    # is within SNAP_TOLERANCE of one (signs._integer). A value that is not is evaluated again: here the root's
    # far field is falsified so that, seen from a point just beyond SNAP_ACCURACY times its radius, the mesh
    # seems to wind 0.6 times around it (rounding would say inside); at the sign's accuracy the root is opened
    # and the point, outside the sphere, gets 0.
    v, f = icosphere(2)
    bvh = build_bvh(v, f)
    ex = bvh.expansion.copy()
    centre, radius = ex[0, :3], np.sqrt(ex[0, 3])
    q = centre + np.array([1.5 * radius, 0.0, 0.0])
    y = centre - q
    r = np.linalg.norm(y)
    ex[0, EXP_AREA:] = 0.0
    ex[0, EXP_AREA : EXP_AREA + 3] = 0.6 * 4.0 * np.pi * r * y  # N.y / (4 pi r^3) = 0.6
    tree = (bvh.triangles, bvh.left, bvh.start, bvh.count, ex)
    stack = np.empty(tree_depth(bvh.left, bvh.right) + 2, dtype=np.int64)
    assert 1.5 > SNAP_ACCURACY
    assert abs(winding_fast_one(*tree, SNAP_ACCURACY**2, *q, stack) - 0.6) < 1e-12
    assert _integer(*tree, 1.6**2, *q, stack) == 0
    # the same through caps: a cap tree far away adds nothing
    cv, cf = icosphere(1, radius=0.01)
    cap = build_bvh(cv + 50.0, cf)
    caps = (cap.triangles, cap.left, cap.start, cap.count, cap.expansion)
    assert _integer_capped(tree, caps, 1.6**2, *q, stack) == 0
    # a value near an integer is rounded without a second look (the snap accuracy's error must stay far below
    # what such a mistake needs; winding.py): the root falsified to 0.97 gives 1
    ex[0, EXP_AREA : EXP_AREA + 3] = 0.97 * 4.0 * np.pi * r * y
    assert _integer(*tree, 1.6**2, *q, stack) == 1


def test_inside_out_mesh_still_negative_inside():
    v, f = icosphere(2)
    pts = np.array([[0.0, 0, 0], [0.5, 0.1, 0], [2.0, 0, 0]])
    d, _, _ = signed_distance(v, f, pts)
    d_flipped, _, _ = signed_distance(v, f[:, ::-1], pts)
    assert (d[:2] < 0).all() and d[2] > 0
    # same values up to rounding (the closest-point arithmetic sees the vertices in another order)
    assert np.abs(d - d_flipped).max() < 1e-12 and np.array_equal(d < 0, d_flipped < 0)
    assert build_bvh(v, f[:, ::-1]).signed_volume < 0
    g, _, _ = sdf_grid(v, f, 9)
    g_flipped, _, _ = sdf_grid(v, f[:, ::-1], 9)
    assert np.abs(g - g_flipped).max() < 1e-12 and np.array_equal(g < 0, g_flipped < 0)
    assert (g < 0).any()


# ------------------------------------------------------------------------------------------------ SDF grids


def test_sdf_grid_box_is_analytic():
    lo, hi = (-1.0, -0.5, -0.25), (1.0, 0.5, 0.25)
    v, f = box_mesh(lo, hi)
    g, origin, spacing = sdf_grid(v, f, (21, 13, 9))
    assert g.shape == (21, 13, 9)
    assert np.allclose(origin, np.array(lo) - 0.1 * (np.array(hi) - np.array(lo)))
    assert np.allclose(origin + (np.array(g.shape) - 1) * spacing, np.array(hi) + 0.1 * (np.array(hi) - np.array(lo)))
    nodes = grid_nodes(g.shape, origin, spacing)
    assert np.abs(g.ravel() - box_sdf(nodes, lo, hi)).max() < 1e-6
    assert (g < 0).any() and (g > 0).any()


def test_sdf_grid_octahedron_is_analytic():
    v, f = octahedron_mesh(1.0)
    g, origin, spacing = sdf_grid(v, f, 17, bounds=((-1.3, -1.2, -1.1), (1.2, 1.3, 1.4)))
    nodes = grid_nodes(g.shape, origin, spacing)
    assert np.allclose(origin, [-1.3, -1.2, -1.1])
    assert np.abs(g.ravel() - octahedron_sdf(nodes)).max() < 1e-6


def test_sdf_grid_sphere_within_tessellation_error():
    v, f = icosphere(3)
    g, origin, spacing = sdf_grid(v, f, 24)
    nodes = grid_nodes(g.shape, origin, spacing)
    # The facets lie between the sphere and the ball of radius r_in (smallest facet-plane distance from the
    # centre), so the two distance functions differ by at most 1 - r_in.
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    r_in = np.min(np.abs(np.einsum("ij,ij->i", n, tri[:, 0])) / np.linalg.norm(n, axis=1))
    err = np.abs(g.ravel() - (np.linalg.norm(nodes, axis=1) - 1.0))
    assert err.max() <= (1 - r_in) + 1e-12
    assert err.max() > 0.1 * (1 - r_in)  # the bound is not vacuous


def test_edge_bounds_never_exceed_the_distance_and_are_exact_beside_an_edge():
    rng = np.random.default_rng(5)
    tri = rng.normal(size=(200, 3, 3)) * 10.0 + 1000.0  # away from the origin, so rounding has room to matter
    tri[0] = [[1000.0, 1000.0, 1000.0], [1001.0, 1002.0, 1003.0], [1002.0, 1004.0, 1006.0]]  # collinear: no bound
    tri[1, 2] = tri[1, 1]  # two vertices in one
    tb = triangle_bounds(tri)
    edges = _edge_bounds(tri, tb)
    assert not edges[:2, :, :3].any()
    for t in range(len(tri)):
        a, b, c = tri[t]
        n = tb[t, :3]
        # Points off every side of the triangle, and one beside the middle of edge a-b, out of the plane.
        out = np.cross(b - a, n) if np.dot(np.cross(b - a, n), c - a) < 0 else -np.cross(b - a, n)
        beside = (a + b) / 2 + out / max(np.linalg.norm(out), 1e-300) * 3.0 + 2.0 * n
        for k, p in enumerate([*(tri[t].mean(axis=0) + rng.normal(size=(20, 3)) * 15.0), beside]):
            d2 = closest_on_triangle(tri, t, *p)[0]
            h = np.dot(n, p - a)
            line = max(max(edges[t, e, :3] @ p - edges[t, e, 3] for e in range(3)), 0.0)
            assert h * h + line * line <= d2 * (1 + 1e-12), (t, k)
            if t >= 2 and k == 20 and np.dot(beside - a, b - a) > 0 and np.dot(beside - b, a - b) > 0:
                assert h * h + line * line == pytest.approx(d2, rel=1e-6)


@pytest.mark.parametrize("mesh", ["sphere", "two_spheres", "hemisphere", "sheet", "box"])
@pytest.mark.parametrize("shape", [(19, 17, 15), (7, 9, 2 * ROW_PACKET + 5)])  # a packet's part; whole ones
def test_sdf_grid_equals_per_node_queries(mesh, shape):
    if mesh == "sphere":
        v, f = icosphere(3)
    elif mesh == "two_spheres":  # overlapping shells: w = 2 where they overlap, concave creases between them
        v1, f1 = icosphere(2)
        v = np.vstack([v1, v1 * 0.8 + [0.9, 0.2, 0]])
        f = np.vstack([f1, f1 + len(v1)])
    elif mesh == "hemisphere":  # open, signed through the cap of its rim
        v, f = hemisphere(6, 16)
    elif mesh == "sheet":  # open, a rim too large to cap cheaply: every node gets its own winding number
        from tests.cfd.test_caps import grid_sheet

        v, f = grid_sheet(40)
        caps = boundary_caps(v, f)
        assert caps is not None and not caps_pay(v, *caps)
    else:
        v, f = box_mesh()
    g, origin, spacing = sdf_grid(v, f, shape)
    nodes = grid_nodes(g.shape, origin, spacing)
    d, _, _ = signed_distance(v, f, nodes)
    assert np.abs(g.ravel() - d).max() <= 1e-12
    assert (g < 0).any() and (g > 0).any()


def node_components(dist, spacing):
    """Components of the grid's link relation node by node (breadth first): label per node, numbered by first
    node, and per component its first node farthest from the surface."""
    flat, n = dist.ravel(), dist.size
    idx = np.arange(n).reshape(dist.shape)
    neighbours = [[] for _ in range(n)]
    for axis in range(3):
        a = np.delete(idx, -1, axis=axis).ravel()
        b = np.delete(idx, 0, axis=axis).ravel()
        linked = flat[a] + flat[b] > spacing[axis] * (1.0 + 1e-9)
        for x, y in zip(a[linked], b[linked]):
            neighbours[x].append(y)
            neighbours[y].append(x)
    label = np.full(n, -1)
    seeds = []
    for start in range(n):
        if label[start] >= 0:
            continue
        label[start] = len(seeds)
        todo, members = [start], [start]
        while todo:
            for y in neighbours[todo.pop()]:
                if label[y] < 0:
                    label[y] = len(seeds)
                    todo.append(y)
                    members.append(y)
        members.sort()
        seeds.append(members[int(np.argmax(flat[members]))])
    return label, np.array(seeds)


@pytest.mark.parametrize("mesh", ["sphere", "two_spheres", "box"])
def test_sign_components_are_the_nodes_components(mesh):
    """The components the grid's signs are copied within, built from runs of a row, are exactly the connected
    components of the node-to-node relation, with the same seeds: none joined across the surface (wrong signs)
    and none left apart (needless winding numbers)."""
    if mesh == "sphere":
        v, f = icosphere(3)
    elif mesh == "two_spheres":
        v1, f1 = icosphere(2)
        v, f = np.vstack([v1, v1 * 0.8 + [0.9, 0.2, 0]]), np.vstack([f1, f1 + len(v1)])
    else:
        v, f = box_mesh()
    g, _, spacing = sdf_grid(v, f, (19, 17, 23))
    dist = np.abs(g)
    run_start, run_comp, seeds = components(dist, spacing)
    label = np.repeat(run_comp, np.diff(run_start)).reshape(-1)
    want_label, want_seeds = node_components(dist, spacing)
    assert len(seeds) == len(want_seeds) >= 2
    assert np.array_equal(label, want_label) and np.array_equal(seeds, want_seeds)
    assert len(run_comp) > len(seeds)  # runs that meet joined: the test is not of one run per component


@pytest.mark.parametrize("mesh", ["sphere", "hemisphere"])
def test_sdf_grid_wide_packets_far_from_the_surface(mesh):
    """A small mesh in a large box: most spans of a row are far from the surface and searched in wide packets
    (the test checks that it has such spans and spans near the surface too); every node equals its own query."""
    v, f = icosphere(3) if mesh == "sphere" else hemisphere(6, 16)
    shape = (9, 11, 2 * WIDE_PACKET + 11)
    g, origin, spacing = sdf_grid(v, f, shape, bounds=((-6, -5, -6), (6, 5, 6)))
    a = np.abs(g)
    far = 0.5 * WIDE_PACKET * spacing[2]
    # each row's first span is wide where the row before it was far from the surface all along that span
    assert (a[:, :-1, :WIDE_PACKET].min(axis=2) > far).any() and (a <= far).any()
    nodes = grid_nodes(g.shape, origin, spacing)
    d, _, _ = signed_distance(v, f, nodes)
    assert np.abs(g.ravel() - d).max() <= 1e-12 * np.abs(d).max()
    assert (g > 0).any() and ((g < 0).any() or mesh == "hemisphere")


def test_sdf_grid_matches_numpy_reference():
    v, f = icosphere(2)
    v = v * [1.0, 0.6, 0.8]
    g, origin, spacing = sdf_grid(v, f, 10)
    ref = sdf_grid_ref(v, f, g.shape, origin, spacing)
    assert np.abs(g - ref).max() < 1e-12


def test_prebuilt_bvh_is_reused_and_checked():
    v, f = icosphere(2)
    b = build_bvh(v, f)
    pts = np.random.default_rng(5).normal(size=(30, 3))
    assert np.array_equal(signed_distance(v, f, pts, bvh=b)[0], signed_distance(v, f, pts)[0])
    assert np.array_equal(winding_number(v, f, pts, bvh=b), winding_number(v, f, pts))
    assert np.array_equal(sdf_grid(v, f, 8, bvh=b)[0], sdf_grid(v, f, 8)[0])
    with pytest.raises(ValueError, match="bvh was built for"):
        signed_distance(v, f[:10], pts, bvh=b)


# ------------------------------------------------------------------------------------------------ edge cases


def test_empty_points_and_nan_points():
    v, f = icosphere(1)
    for empty in (np.zeros((0, 3)), np.zeros(0), []):
        assert winding_number(v, f, empty).shape == (0,)
        d, c, fid = signed_distance(v, f, empty)
        assert d.shape == (0,) and c.shape == (0, 3) and fid.shape == (0,)
    d, c, fid = unsigned_distance(v, f, [[np.nan, 0, 0], [2.0, 0, 0]])
    assert np.isnan(d[0]) and fid[0] == -1 and d[1] == pytest.approx(1.0)
    assert np.isnan(winding_number(v, f, [[np.nan, 0, 0]])).all()


def test_bad_input_raises():
    v, f = icosphere(1)
    pts = np.zeros((2, 3))
    with pytest.raises(ValueError, match="vertices"):
        winding_number(v[:, :2], f, pts)
    with pytest.raises(ValueError, match="faces"):
        signed_distance(v, np.zeros((3, 4), int), pts)
    with pytest.raises(ValueError, match="integer"):
        signed_distance(v, f.astype(float), pts)
    with pytest.raises(ValueError, match="indices"):
        signed_distance(v, f + len(v), pts)
    with pytest.raises(ValueError, match="points"):
        unsigned_distance(v, f, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not finite"):
        winding_number(np.full_like(v, np.nan), f, pts)
    with pytest.raises(ValueError, match="accuracy"):
        winding_number(v, f, pts, accuracy=0.5)
    with pytest.raises(ValueError, match="no faces"):
        signed_distance(v, np.zeros((0, 3), int), pts)
    assert np.array_equal(winding_number(v, np.zeros((0, 3), int), pts), [0.0, 0.0])
    with pytest.raises(ValueError, match="resolution"):
        sdf_grid(v, f, 1)
    with pytest.raises(ValueError, match="resolution"):
        sdf_grid(v, f, (4, 4))
    with pytest.raises(ValueError, match="bounds"):
        sdf_grid(v, f, 4, bounds=((0, 0, 0), (0, 1, 1)))
    with pytest.raises(ValueError, match="bounds"):
        sdf_grid(v, f, 4, bounds=(0, 1))


def test_is_closed_welds_soups_and_checks_edge_directions():
    v, f = icosphere(level=2)
    soup_v = v[f].reshape(-1, 3)  # every triangle with its own three vertices
    soup_f = np.arange(len(soup_v)).reshape(-1, 3)
    assert is_closed(v, f) and is_closed(soup_v, soup_f)
    assert not is_closed(v, f[:-1])  # a hole
    flipped = f.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_closed(v, flipped)  # an edge used twice the same way
    doubled = np.vstack([f, f[:1], f[:1, ::-1]])  # an extra opposite pair cancels
    assert is_closed(v, doubled)
    # Many vertices sharing coordinates (long runs of equal x and y) and vertices of high degree: the welding and
    # edge checks take their general paths; +0.0 and -0.0 are one coordinate.
    g = np.stack(np.meshgrid(np.arange(40.0), np.arange(40.0), np.arange(3.0), indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(3)
    tris = rng.integers(0, 60, size=(400, 3))
    assert not is_closed(g, tris)
    assert is_closed(g, np.vstack([tris, tris[:, ::-1]]))
    signed_zero = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-0.0, -0.0, 0.0]])
    tet_v = np.vstack([signed_zero, [[0.0, 0.0, 1.0]]])
    tet_f = np.array([[0, 2, 1], [0, 1, 4], [1, 2, 4], [3, 4, 2]])  # vertex 3 is vertex 0 with -0.0
    assert is_closed(tet_v, tet_f)
    assert not is_closed(tet_v + [[0, 0, 0], [0, 0, 0], [0, 0, 0], [1e-300, 0, 0], [0, 0, 0]], tet_f)


def test_a_collinear_triangle_is_its_segments():
    """Three vertices on one line (found by the property test): rounding left the dot-product walk a
    'face' with noise for barycentric coordinates, and the point on the segment came out 0.59 away."""
    y = 1.6188871305601547
    v = np.array([[-0.27769220259411087, y, y], [0.263671875, y, y], [y, y, y]])
    f = np.array([[0, 0, 0], [1, 0, 2]])
    p = np.array([[0.6705974639830217, y, y], [0.5, y + 1.0, y], [-1.0, y, y]])
    d, closest, _ = unsigned_distance(v, f, p)
    np.testing.assert_allclose(d, [0.0, 1.0, 1.0 - 0.27769220259411087], atol=1e-12)
    np.testing.assert_allclose(d, unsigned_distance_ref(v, f, p)[0], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(p - closest, axis=1), d, atol=1e-12)
