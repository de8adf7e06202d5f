"""Procedural shapes, analytic SDFs, the STL writer and ``hpcprep cfd shapes``.

Every tolerance below is a tessellation error bound derived in the comment next to it, not a
fudge factor: the meshes are inscribed in (sphere, torus, wing, Ahmed body) or equal to (box)
the smooth shapes, which gives one-sided errors with closed-form bounds.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys

import click
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner
from hpcprep_cfd import shapes as S
from hpcprep_cfd.commands import register
from hpcprep_cfd.stlwrite import write_stl

# -- mesh helpers (written here, independent of the code under test) -----------------------


def directed_edges(faces: np.ndarray) -> np.ndarray:
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def assert_closed_oriented(vertices: np.ndarray, faces: np.ndarray, euler: int = 2) -> None:
    """Watertight and consistently oriented: every undirected edge is used exactly twice, once
    in each direction, i.e. each directed edge occurs once and so does its reverse."""
    assert vertices.dtype == np.float64 and vertices.ndim == 2 and vertices.shape[1] == 3
    assert faces.dtype == np.int64 and faces.ndim == 2 and faces.shape[1] == 3
    assert np.all(np.isfinite(vertices))
    assert faces.min() >= 0 and faces.max() < len(vertices)
    assert len(np.unique(vertices, axis=0)) == len(vertices), "duplicate vertices"
    assert len(np.unique(faces)) == len(vertices), "unused vertices"
    edges = directed_edges(faces)
    codes = edges[:, 0] * len(vertices) + edges[:, 1]
    reverse = edges[:, 1] * len(vertices) + edges[:, 0]
    assert len(np.unique(codes)) == len(codes), "a directed edge occurs twice (inconsistent orientation)"
    assert np.all(np.isin(reverse, codes)), "an edge without its reverse (a hole or a flipped face)"
    assert np.all(edges[:, 0] != edges[:, 1])
    assert np.all(triangle_areas(vertices, faces) > 0), "degenerate triangle"
    n_edges = len(edges) // 2
    assert len(vertices) - n_edges + len(faces) == euler
    assert signed_volume(vertices, faces) > 0


def signed_volume(vertices, faces) -> float:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def triangle_areas(vertices, faces) -> np.ndarray:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def unit_normals(vertices, faces) -> np.ndarray:
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    n = np.cross(b - a, c - a)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def point_triangle_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Brute-force unsigned distance from each point to the nearest triangle.

    The nearest point of a triangle is either the foot of the perpendicular (when it falls inside
    the triangle) or lies on one of the three edges; edge distances are never below the true one,
    so the minimum over {plane distance if the foot is inside, the three edge distances} is exact.
    """
    a, b, c = (vertices[faces[:, k]][None] for k in range(3))
    out = np.empty(len(points))
    for i in range(0, len(points), 16):
        p = points[i : i + 16, None, :]
        n = np.cross(b - a, c - a)
        n = n / np.linalg.norm(n, axis=-1, keepdims=True)
        h = np.einsum("pfk,pfk->pf", p - a, np.broadcast_to(n, (p.shape[0], *n.shape[1:])))
        foot = p - h[..., None] * n
        inside = np.ones(h.shape, dtype=bool)
        for u, v in ((a, b), (b, c), (c, a)):
            inside &= np.einsum("pfk,pfk->pf", np.cross(v - u, foot - u), np.broadcast_to(n, foot.shape)) >= 0
        best = np.where(inside, np.abs(h), np.inf)
        for u, v in ((a, b), (b, c), (c, a)):
            e = v - u
            t = np.clip(
                np.einsum("pfk,pfk->pf", p - u, np.broadcast_to(e, (p.shape[0], *e.shape[1:])))
                / np.einsum("pfk,pfk->pf", e, e),
                0.0,
                1.0,
            )
            best = np.minimum(best, np.linalg.norm(p - u - t[..., None] * e, axis=-1))
        out[i : i + 16] = best.min(axis=1)
    return out


def slice_points(vertices, faces, z0: float) -> np.ndarray:
    """Points where the mesh edges cross the plane z = z0 (no vertex may lie on it)."""
    e = np.unique(np.sort(directed_edges(faces), axis=1), axis=0)
    za, zb = vertices[e[:, 0], 2] - z0, vertices[e[:, 1], 2] - z0
    assert not np.any(za == 0)
    cross = za * zb < 0
    t = za[cross] / (za[cross] - zb[cross])
    return vertices[e[cross, 0]] + t[:, None] * (vertices[e[cross, 1]] - vertices[e[cross, 0]])


def sinc(x: float) -> float:
    return math.sin(x) / x


# -- every generator: closed, oriented, outward ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "kwargs", "euler"),
    [
        ("sphere", {"subdivisions": 0}, 2),
        ("sphere", {"subdivisions": 3, "radius": 2.5, "center": (1, -2, 3)}, 2),
        ("box", {"subdivisions": 1}, 2),
        ("box", {"subdivisions": 5, "size": (2, 3, 0.5), "center": (1, 1, 1)}, 2),
        ("torus", {"n_major": 3, "n_minor": 3}, 0),
        ("torus", {"major": 2.0, "minor": 0.7, "n_major": 40, "n_minor": 17}, 0),
        ("naca0012_wing", {"n_chord": 2, "n_span": 1}, 2),
        ("naca0012_wing", {"chord": 1.5, "span": 3.0, "n_chord": 60, "n_span": 5}, 2),
        ("ahmed_body", {}, 2),
        ("ahmed_body", {"slant_deg": 0.0, "n_fillet": 1, "n_width": 1, "n_height": 1, "n_length": 1, "n_slant": 1}, 2),
        ("ahmed_body", {"slant_deg": 35.0, "n_fillet": 12, "n_width": 3, "n_height": 5}, 2),
    ],
)
def test_generators_give_closed_outward_meshes(name, kwargs, euler):
    vertices, faces = getattr(S, name)(**kwargs)
    assert_closed_oriented(vertices, faces, euler)


def test_registry_defaults_are_closed_and_scale_with_resolution():
    for name in S.SHAPES:
        _, v, f = S.make(name)
        assert_closed_oriented(v, f, 0 if name == "torus" else 2)
        _, _, coarse = S.make(name, 0.5)
        _, _, fine = S.make(name, 2.0)
        assert len(coarse) < len(f) < len(fine), name
    with pytest.raises(ValueError, match="unknown shape 'cube'"):
        S.make("cube")
    with pytest.raises(ValueError, match="unknown parameters"):
        S.make("sphere", radius=1.0, sides=3)


def test_bad_parameters_are_rejected_with_the_reason():
    with pytest.raises(ValueError, match="minor .* must be smaller than major"):
        S.torus(major=1.0, minor=1.0)
    with pytest.raises(ValueError, match="radius must be a positive number"):
        S.sphere(radius=-1)
    with pytest.raises(ValueError, match="subdivisions must be an integer >= 1"):
        S.box(subdivisions=0)
    with pytest.raises(ValueError, match="size must be positive"):
        S.box(size=(1, 0, 1))
    with pytest.raises(ValueError, match="radius .* below half the width"):
        S.ahmed_body(radius=0.2)
    with pytest.raises(ValueError, match="slant_deg must be in"):
        S.ahmed_body(slant_deg=90)
    with pytest.raises(ValueError, match="reaches into the front fillet"):
        S.ahmed_body(length=0.3)
    with pytest.raises(ValueError, match="points must have shape"):
        S.sphere_sdf(np.zeros((4, 2)))


# -- volumes and areas against the analytic shapes -------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5])
def test_box_is_exact(n):
    size, center = np.array([2.0, 3.0, 0.5]), np.array([1.0, -1.0, 4.0])
    v, f = S.box(size=size, center=center, subdivisions=n)
    assert len(f) == 12 * n * n and len(v) == 6 * n * n + 2
    assert signed_volume(v, f) == pytest.approx(3.0, rel=1e-14)
    assert triangle_areas(v, f).sum() == pytest.approx(2 * (6.0 + 1.5 + 1.0), rel=1e-14)
    assert S.box_volume(size) == 3.0 and S.box_area(size) == 17.0
    np.testing.assert_array_equal(v.min(axis=0), center - size / 2)
    np.testing.assert_array_equal(v.max(axis=0), center + size / 2)
    # Every vertex is on the box surface: at least one coordinate on a face plane.
    on_face = np.isclose(np.abs(v - center), size / 2, rtol=0, atol=1e-15)
    assert np.all(on_face.any(axis=1))


def test_sphere_volume_and_area_bounds_shrink_with_subdivision():
    # The icosphere is convex with all vertices on the sphere, so it contains the ball of radius
    # d = min distance from the centre to a face plane and lies inside the sphere:
    # V_ball * (d/r)^3 <= V <= V_ball and 4 pi d^2 <= A <= 4 pi r^2 (area is monotone for convex sets).
    r, c = 2.5, np.array([1.0, -2.0, 3.0])
    errors = []
    for s in range(1, 6):
        v, f = S.sphere(radius=r, subdivisions=s, center=c)
        assert len(f) == 20 * 4**s
        np.testing.assert_allclose(np.linalg.norm(v - c, axis=1), r, rtol=1e-14)
        n = unit_normals(v, f)
        d = np.einsum("ij,ij->i", v[f[:, 0]] - c, n).min()
        assert 0 < d < r
        vol, area = signed_volume(v, f), triangle_areas(v, f).sum()
        assert S.sphere_volume(r) * (d / r) ** 3 <= vol <= S.sphere_volume(r)
        assert 4 * math.pi * d**2 <= area <= S.sphere_area(r)
        errors.append((1 - vol / S.sphere_volume(r), 1 - area / S.sphere_area(r), 1 - d / r))
    errors = np.array(errors)
    # Halving the edges divides the sagitta-type error by ~4: demand at least 3.
    assert np.all(errors[1:] < errors[:-1] / 3)


def test_torus_volume_and_area_match_their_closed_forms():
    R, r = 2.0, 0.7
    rel_errors = []
    for nM, nm in ((12, 6), (24, 12), (48, 24), (96, 48)):
        v, f = S.torus(major=R, minor=r, n_major=nM, n_minor=nm)
        a, b = 2 * math.pi / nM, 2 * math.pi / nm
        # The mesh is n_major wedges, each the chord-sweep of the inscribed regular n_minor-gon
        # (area nm/2 r^2 sin b, centroid at R): volume element rho sin(a) d(rho) dz, so
        # V = nM sin(a) * R * polygon area = V_torus * sinc(a) * sinc(b), exactly.
        exact = nM * math.sin(a) * R * (nm / 2) * r**2 * math.sin(b)
        vol = signed_volume(v, f)
        assert vol == pytest.approx(exact, rel=1e-12)
        assert vol == pytest.approx(S.torus_volume(R, r) * sinc(a) * sinc(b), rel=1e-12)
        # 1 - sinc(x) <= x^2 / 6.
        assert 0 < 1 - vol / S.torus_volume(R, r) <= (a * a + b * b) / 6
        # Each quad is a trapezoid with parallel sides 2 rho sin(a/2) and height between
        # cos(a/2) and 1 times the polygon edge 2 r sin(b/2); summing over the ring (the
        # cos v terms cancel): A / A_torus in [sinc(a/2) sinc(b/2) cos(a/2), sinc(a/2) sinc(b/2)].
        area = triangle_areas(v, f).sum()
        ratio = area / S.torus_area(R, r)
        top = sinc(a / 2) * sinc(b / 2)
        assert top * math.cos(a / 2) <= ratio <= top
        rel_errors.append((1 - vol / S.torus_volume(R, r), 1 - ratio))
    rel_errors = np.array(rel_errors)
    assert np.all(rel_errors[1:] < rel_errors[:-1] / 3)


def _thickness_integral_by_quadrature() -> float:
    # x = u^2 removes the sqrt(x) singularity at the leading edge; the integrand becomes a
    # polynomial of degree 9 in u, which 20-point Gauss-Legendre integrates exactly.
    u, w = np.polynomial.legendre.leggauss(20)
    u, w = (u + 1) / 2, w / 2
    x = u * u
    yt = 5 * 0.12 * (0.2969 * u - 0.1260 * x - 0.3516 * x**2 + 0.2843 * x**3 - 0.1036 * x**4)
    return float(np.sum(w * yt * 2 * u))


def _naca_perimeter_by_quadrature(chord: float) -> float:
    # Same substitution: ds = sqrt(dx^2 + dy^2) = sqrt((2u)^2 + (dy/du)^2) du, smooth in u.
    u, w = np.polynomial.legendre.leggauss(200)
    u, w = (u + 1) / 2, w / 2
    dydu = 5 * 0.12 * (0.2969 - 0.1260 * 2 * u - 0.3516 * 4 * u**3 + 0.2843 * 6 * u**5 - 0.1036 * 8 * u**7)
    return 2 * chord * float(np.sum(w * np.hypot(2 * u, dydu)))


def test_naca_thickness_formula_and_section_area():
    assert S.naca0012_thickness(1.0) == pytest.approx(0.0, abs=1e-15)  # closed trailing edge
    assert S.naca0012_thickness(0.0) == 0.0
    area = 2 * _thickness_integral_by_quadrature()
    assert S.naca0012_section_area(1.0) == pytest.approx(area, rel=1e-13)
    assert S.naca0012_section_area(2.0) == pytest.approx(4 * area, rel=1e-13)
    # A NACA 0012 section's area is about 0.082 c^2 (0.0822 with the open trailing edge).
    assert 0.081 < area < 0.0825


def _tangent_triangle_bound(x: np.ndarray, chord: float) -> float:
    """Upper bound on (analytic - polygon) area of one surface of the section.

    y_t is concave on (0, c] (its second derivative is negative there), so on each interval the
    curve lies between the chord and both end tangents: the gap is at most the triangle of the
    chord and the two tangents, area (b - a)/2 times the apex's height above the chord. At the
    leading edge the tangent is vertical, so the apex is the x = 0 point of the other tangent."""
    eps = 1e-7 * chord

    def y(s):
        return S.naca0012_thickness(s, chord)

    def dy(s):
        return (y(s + eps) - y(s - eps)) / (2 * eps)

    total = 0.0
    for a, b in zip(x[:-1], x[1:], strict=True):
        ya, yb, gb = y(a), y(b), dy(b)
        if a == 0:
            total += 0.5 * b * (yb - gb * b)
            continue
        ga = dy(a)
        xs = (yb - ya + ga * a - gb * b) / (ga - gb)
        apex = ya + ga * (xs - a)
        chord_at = ya + (yb - ya) * (xs - a) / (b - a)
        total += 0.5 * (b - a) * (apex - chord_at)
    return total


def test_naca_wing_volume_area_and_section():
    chord, span = 1.5, 3.0
    exact_area = S.naca0012_section_area(chord)
    gaps = []
    for n in (25, 50, 100, 200):
        v, f = S.naca0012_wing(chord=chord, span=span, n_chord=n, n_span=5)
        ring = v[v[:, 2] == 0.0]
        xs = np.sort(np.unique(ring[:, 0]))
        assert len(ring) == 2 * n and len(xs) == n + 1
        # Cosine spacing: x_i = c (1 - cos(pi i / n)) / 2.
        np.testing.assert_allclose(xs, chord * (1 - np.cos(np.pi * np.arange(n + 1) / n)) / 2, atol=1e-15)
        np.testing.assert_allclose(np.abs(ring[:, 1]), S.naca0012_thickness(ring[:, 0], chord), atol=1e-15)
        # The section polygon's area: trapezoids between the stations, upper and lower surface.
        vol = signed_volume(v, f)
        polygon_area = 2 * np.sum(
            (xs[1:] - xs[:-1]) * (S.naca0012_thickness(xs[1:], chord) + S.naca0012_thickness(xs[:-1], chord)) / 2
        )
        assert vol == pytest.approx(span * polygon_area, rel=1e-12)
        gap = exact_area - vol / span
        assert 0 < gap <= 2 * _tangent_triangle_bound(xs, chord)
        # Wing area: the section is convex, so the polygon perimeter is below the true one.
        area = triangle_areas(v, f).sum()
        exact_wing_area = 2 * exact_area + span * _naca_perimeter_by_quadrature(chord)
        assert 0 < exact_wing_area - area
        gaps.append((gap / exact_area, 1 - area / exact_wing_area))
    gaps = np.array(gaps)
    assert np.all(gaps[1:] < gaps[:-1] / 3)
    assert gaps[-1, 0] < 1e-4 and gaps[-1, 1] < 1e-4

    # Mid-span section (n_span odd, so the plane cuts the walls between stations).
    v, f = S.naca0012_wing(chord=chord, span=span, n_chord=100, n_span=5)
    pts = slice_points(v, f, span / 2)
    np.testing.assert_allclose(pts[:, 2], span / 2, atol=1e-12)
    assert np.all(np.abs(pts[:, 1]) <= S.naca0012_thickness(pts[:, 0], chord) + 1e-12)
    assert pts[:, 0].min() == pytest.approx(0.0, abs=1e-12) and pts[:, 0].max() == pytest.approx(chord)
    top = pts[np.argmax(pts[:, 1])]
    thickness = pts[:, 1].max() - pts[:, 1].min()
    # The closed-trailing-edge polynomial peaks at 0.120014 c at x = 0.2995 c; the station
    # spacing there (h ~ 0.015 c, |y''| < 0.4) costs at most |y''| h^2 / 8 ~ 1e-5 c of thickness.
    assert thickness == pytest.approx(0.12 * chord, abs=3e-5 * chord)
    assert abs(top[0] / chord - 0.3) < 0.01


def _normals_and_slant_faces(v, f):
    n = unit_normals(v, f)
    return n, (n[:, 0] > 1e-9) & (n[:, 2] > 1e-9)


@pytest.mark.parametrize("slant", [25.0, 35.0])
def test_ahmed_body_slant_and_bounding_box(slant):
    L, W, H, R, sl = 1.044, 0.389, 0.288, 0.1, 0.222
    v, f = S.ahmed_body(slant_deg=slant, n_slant=5, n_width=7)
    np.testing.assert_allclose(v.min(axis=0), [0.0, -W / 2, 0.0], atol=1e-15)
    np.testing.assert_allclose(v.max(axis=0), [L, W / 2, H], atol=1e-15)
    n, rear = _normals_and_slant_faces(v, f)
    assert rear.sum() == 2 * 5 * 7
    # The slant surface makes slant_deg with the horizontal, so its normal makes slant_deg with
    # the vertical: tan = n_x / n_z; its area is width x slant length.
    np.testing.assert_allclose(np.degrees(np.arctan2(n[rear, 0], n[rear, 2])), slant, atol=1e-9)
    np.testing.assert_allclose(n[rear, 1], 0.0, atol=1e-12)
    assert triangle_areas(v, f)[rear].sum() == pytest.approx(W * sl, rel=1e-12)
    # The vertical base: height H - sl sin(slant), width W.
    base = np.isclose(n[:, 0], 1.0, atol=1e-12)
    assert triangle_areas(v, f)[base].sum() == pytest.approx(W * (H - sl * math.sin(math.radians(slant))), rel=1e-12)
    # The flat front face: (W - 2R) x (H - 2R).
    front = np.isclose(n[:, 0], -1.0, atol=1e-12)
    assert triangle_areas(v, f)[front].sum() == pytest.approx((W - 2 * R) * (H - 2 * R), rel=1e-12)
    # The fillets are rounded in both views: vertices on the top-front arc and side-front arc.
    top_arc = v[(v[:, 0] < R) & (v[:, 2] > H - R) & (np.abs(v[:, 1]) < W / 2 - R)]
    np.testing.assert_allclose(np.hypot(top_arc[:, 0] - R, top_arc[:, 2] - (H - R)), R, rtol=1e-12)
    side_arc = v[(v[:, 0] < R) & (v[:, 1] > W / 2 - R) & (v[:, 2] > R) & (v[:, 2] < H - R)]
    np.testing.assert_allclose(np.hypot(side_arc[:, 0] - R, side_arc[:, 1] - (W / 2 - R)), R, rtol=1e-12)
    assert len(top_arc) > 0 and len(side_arc) > 0


def test_ahmed_volume_and_area_converge_to_the_closed_forms():
    W, H, R = 0.389, 0.288, 0.1
    errors = []
    for nf in (4, 8, 16, 32, 128):
        v, f = S.ahmed_body(slant_deg=30.0, n_fillet=nf)
        vol, area = signed_volume(v, f), triangle_areas(v, f).sum()
        exact_vol, exact_area = S.ahmed_volume(slant_deg=30.0), S.ahmed_area(slant_deg=30.0)
        # The mesh is the intersection of the two extruded profiles with their fillet arcs
        # replaced by inscribed chords: what is missing lies in the 2 x nf circular segments
        # (area R^2/2 (dt - sin dt) each) of each view, times at most H (top view) or W (side view).
        dt = math.pi / 2 / nf
        bound = (H + W) * nf * R**2 * (dt - math.sin(dt))
        assert 0 < exact_vol - vol <= bound
        # Convex body containing the convex mesh: the mesh has the smaller area.
        assert 0 < exact_area - area
        errors.append((exact_vol - vol, exact_area - area))
    errors = np.array(errors)
    assert np.all(errors[1:] < errors[:-1] / 3)
    assert errors[-1, 1] / S.ahmed_area(slant_deg=30.0) < 1e-5


# -- analytic SDFs -----------------------------------------------------------------------------


def test_sdf_known_values():
    c = np.array([1.0, -1.0, 2.0])
    # Sphere, radius 2.
    pts = c + np.array([[0, 0, 0], [4, 0, 0], [0, 0, -2], [0, 1, 0], [3, 4, 0]], dtype=float)
    np.testing.assert_allclose(S.sphere_sdf(pts, 2.0, c), [-2, 2, 0, -1, 3], atol=1e-15)
    # Box 2 x 4 x 6 (half sizes 1, 2, 3).
    size = (2.0, 4.0, 6.0)
    pts = c + np.array(
        [
            [0, 0, 0],  # centre: nearest face at 1
            [0, 0, 2.5],  # inside near the z face
            [0, 0, 5],  # outside a face
            [1, 2, 3],  # a corner
            [2, 3, 4],  # past a corner by (1, 1, 1)
            [-3, -4, -5],  # past the opposite corner by (2, 2, 2)
            [4, 6, 0],  # beside an edge: (3, 4) from it
            [1, 0, 0],  # on a face
        ],
        dtype=float,
    )
    expected = [-1, -0.5, 2, 0, math.sqrt(3), 2 * math.sqrt(3), 5, 0]
    np.testing.assert_allclose(S.box_sdf(pts, size, c), expected, atol=1e-15)
    # Torus, ring 2, tube 0.5.
    pts = c + np.array([[2, 0, 0], [0, 0, 0], [0, 2, 0.5], [-2.5, 0, 0], [0, 0, 3], [3, 0, 0], [0, -1.7, 0]])
    expected = [-0.5, 1.5, 0, 0, math.sqrt(13) - 0.5, 0.5, -0.2]
    np.testing.assert_allclose(S.torus_sdf(pts, 2.0, 0.5, c), expected, atol=1e-15)


def test_sdf_gradient_has_unit_length_off_the_medial_axis():
    rng = np.random.default_rng(3)
    p = rng.uniform(-3, 3, size=(4000, 3))
    h = 1e-6

    def grad(fn):
        return np.stack([(fn(p + h * e) - fn(p - h * e)) / (2 * h) for e in np.eye(3)], axis=1)

    def norm(fn):
        return np.linalg.norm(grad(fn), axis=1)

    # Sphere: smooth except at the centre.
    keep = np.linalg.norm(p, axis=1) > 0.1
    np.testing.assert_allclose(norm(lambda q: S.sphere_sdf(q, 1.5))[keep], 1.0, atol=1e-6)
    # Box: smooth outside (distance to a convex set); inside, away from where two faces tie.
    size = np.array([2.0, 3.0, 4.0])
    q = np.abs(p) - size / 2
    inside = np.all(q < 0, axis=1)
    depth = np.sort(-q, axis=1)
    keep = ~inside | (depth[:, 1] - depth[:, 0] > 1e-3)
    np.testing.assert_allclose(norm(lambda x: S.box_sdf(x, size))[keep], 1.0, atol=1e-6)
    assert keep[inside].sum() > 100 and (~inside).sum() > 100
    # Torus: medial axis is the core circle and the z axis.
    rho = np.hypot(p[:, 0], p[:, 1])
    keep = (np.hypot(rho - 2.0, p[:, 2]) > 0.05) & (rho > 0.05)
    np.testing.assert_allclose(norm(lambda x: S.torus_sdf(x, 2.0, 0.5))[keep], 1.0, atol=1e-6)


def _check_against_mesh(sdf: np.ndarray, points, vertices, faces, hausdorff: float):
    """|sdf| vs brute-force distance to the tessellation: unsigned distances to two surfaces differ
    by at most their Hausdorff distance. The sign must match the generalized winding number (libigl)
    wherever the point is farther than that from the surface."""
    import igl

    reference = point_triangle_distance(points, vertices, faces)
    # The brute force itself against libigl's exact distance to the same triangles.
    np.testing.assert_allclose(np.abs(igl.signed_distance(points, vertices, faces)[0]), reference, atol=1e-12)
    err = np.abs(np.abs(sdf) - reference)
    assert err.max() <= hausdorff + 1e-12, (err.max(), hausdorff)
    inside = igl.winding_number(vertices, faces, points) > 0.5
    far = np.abs(sdf) > hausdorff + 1e-9
    assert far.sum() > len(points) // 2
    np.testing.assert_array_equal(sdf[far] < 0, inside[far])
    return err.max()


def test_sdfs_agree_with_distance_to_a_fine_tessellation():
    rng = np.random.default_rng(11)

    # Sphere: the icosphere lies between the radii d and r, so the Hausdorff distance is r - d.
    r, c = 1.3, np.array([0.2, -0.1, 0.3])
    v, f = S.sphere(radius=r, subdivisions=4, center=c)
    d = np.einsum("ij,ij->i", v[f[:, 0]] - c, unit_normals(v, f)).min()
    pts = c + rng.uniform(-2, 2, size=(100, 3))
    surface = rng.normal(size=(20, 3))
    pts = np.concatenate([pts, c + r * surface / np.linalg.norm(surface, axis=1, keepdims=True) * 0.98])
    _check_against_mesh(S.sphere_sdf(pts, r, c), pts, v, f, r - d)

    # Box: the mesh is the box, so the distances agree to rounding.
    size, c = np.array([1.0, 2.0, 0.6]), np.array([0.5, 0.0, -0.2])
    v, f = S.box(size=size, center=c, subdivisions=2)
    pts = c + rng.uniform(-1.5, 1.5, size=(120, 3)) * size
    err = _check_against_mesh(S.box_sdf(pts, size, c), pts, v, f, 0.0)
    assert err < 1e-12

    # Torus: the polygonal tube section is within r (1 - cos(pi / n_minor)) of the circle and the
    # chords between meridians within rho (1 - cos(pi / n_major)) <= (R + r) (1 - cos(pi / n_major)).
    R, r = 1.0, 0.3
    v, f = S.torus(major=R, minor=r, n_major=96, n_minor=32)
    hausdorff = r * (1 - math.cos(math.pi / 32)) + (R + r) * (1 - math.cos(math.pi / 96))
    pts = rng.uniform([-1.6, -1.6, -0.6], [1.6, 1.6, 0.6], size=(120, 3))
    _check_against_mesh(S.torus_sdf(pts, R, r), pts, v, f, hausdorff)


# -- STL writer -------------------------------------------------------------------------------


def _load_triangles(path) -> np.ndarray:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        mesh = trimesh.load(fh, file_type="stl", process=False)
    return np.asarray(mesh.triangles)


@pytest.mark.parametrize("filename", ["s.stl", "s.stl.gz", "a.stl", "a.stl.gz"])
def test_stl_round_trip_through_trimesh(tmp_path, filename):
    v, f = S.sphere(radius=0.7, subdivisions=2, center=(0.1, 0.2, 0.3))
    binary = filename.startswith("s")
    path = write_stl(tmp_path / filename, v, f.astype(np.int32), name="my part", binary=binary)
    raw = gzip.decompress(path.read_bytes()) if filename.endswith(".gz") else path.read_bytes()
    triangles = _load_triangles(path)
    assert triangles.shape == (len(f), 3, 3)
    if binary:
        assert not raw.startswith(b"solid") and len(raw) == 84 + 50 * len(f)
        np.testing.assert_array_equal(triangles, v[f].astype(np.float32))
    else:
        assert raw.startswith(b"solid my_part\n") and raw.rstrip().endswith(b"endsolid my_part")
        np.testing.assert_array_equal(triangles, v[f])  # shortest round-trip decimals: exact


def test_stl_facet_normals_and_degenerate_faces(tmp_path):
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 3, 0], [4, 0, 0], [0, 0, 5]], dtype=float)
    f = np.array([[0, 1, 2], [0, 1, 3], [0, 4, 1]])  # the second is degenerate (collinear)
    path = write_stl(tmp_path / "n.stl", v, f)
    records = np.frombuffer(
        path.read_bytes()[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")])
    )
    assert int.from_bytes(path.read_bytes()[80:84], "little") == 3
    np.testing.assert_array_equal(records["n"], [[0, 0, 1], [0, 0, 0], [0, 1, 0]])
    text = write_stl(tmp_path / "n_ascii.stl", v, f, binary=False).read_text()
    assert "facet normal 0.0 0.0 0.0" in text and text.count("facet normal") == 3


def test_stl_writer_rejects_bad_input(tmp_path):
    v, f = S.box()
    with pytest.raises(ValueError, match=r"bad\.stl: faces index vertices outside"):
        write_stl(tmp_path / "bad.stl", v, f + 1)
    with pytest.raises(ValueError, match=r"bad\.stl: vertices must have shape"):
        write_stl(tmp_path / "bad.stl", v[:, :2], f)
    with pytest.raises(ValueError, match=r"bad\.stl: faces must be integers"):
        write_stl(tmp_path / "bad.stl", v, f.astype(float))
    assert not (tmp_path / "bad.stl").exists()


# -- the command ------------------------------------------------------------------------------


def _cli() -> click.Group:
    group = click.Group("hpcprep")
    register(group)
    return group


def test_shapes_command_writes_loadable_meshes(tmp_path):
    out = tmp_path / "shapes"
    result = CliRunner().invoke(
        _cli(), ["cfd", "shapes", str(out), "--resolution", "coarse", "--slant", "25", "--slant", "35"]
    )
    assert result.exit_code == 0, result.output
    names = ["sphere.stl", "box.stl", "torus.stl", "naca0012.stl", "ahmed_25.stl", "ahmed_35.stl"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "shapes.json"])
    manifest = json.loads((out / "shapes.json").read_text())
    assert manifest["resolution_factor"] == 0.5 and manifest["format"] == "stl-binary"
    entries = {e["file"]: e for e in manifest["shapes"]}
    assert list(entries) == names
    for name in names:
        assert f"wrote {out / name}" in result.output
        mesh = trimesh.load(out / name, file_type="stl")
        entry = entries[name]
        assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0, name
        assert len(mesh.faces) == entry["triangles"] and len(mesh.vertices) == entry["vertices"]
        np.testing.assert_allclose(mesh.bounds, entry["bounds"], atol=1e-6)
        # The file holds the generator's mesh (float32); coarse tessellations are within 5 % of the
        # smooth volume (the worst, the 32 x 16 torus, has sinc(a) sinc(b) = 0.968; the box is exact).
        _, v, f = S.make(
            entry["shape"], 0.5, **({"slant_deg": entry["parameters"]["slant_deg"]} if "ahmed" in name else {})
        )
        assert mesh.volume == pytest.approx(signed_volume(v, f), rel=1e-6), name
        assert mesh.volume == pytest.approx(entry["volume"], rel=0.05), name
    assert entries["box.stl"]["volume"] == 1.0 and entries["box.stl"]["area"] == 6.0
    assert entries["sphere.stl"]["parameters"]["subdivisions"] == 3
    assert entries["ahmed_35.stl"]["parameters"]["slant_deg"] == 35.0
    assert entries["ahmed_35.stl"]["volume"] == pytest.approx(S.ahmed_volume(slant_deg=35.0))
    assert entries["naca0012.stl"]["area"] is None


def test_shapes_command_ascii_numeric_resolution_and_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        _cli(), ["cfd", "shapes", str(tmp_path), "--shapes", "box,ahmed", "--resolution", "0.25", "--ascii"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "box.stl").read_bytes().startswith(b"solid box\n")
    assert (tmp_path / "ahmed_25.stl").read_bytes().startswith(b"solid ahmed_25\n")
    box = trimesh.load(tmp_path / "box.stl", file_type="stl")
    assert len(box.faces) == 12 and box.volume == pytest.approx(1.0)
    manifest = json.loads((tmp_path / "shapes.json").read_text())
    assert manifest["format"] == "stl-ascii" and [e["file"] for e in manifest["shapes"]] == ["box.stl", "ahmed_25.stl"]

    bad = runner.invoke(_cli(), ["cfd", "shapes", str(tmp_path / "x"), "--shapes", "sphere,cube"])
    assert bad.exit_code == 2 and "unknown shapes ['cube']" in bad.output
    bad = runner.invoke(_cli(), ["cfd", "shapes", str(tmp_path / "x"), "--resolution", "-1"])
    assert bad.exit_code == 2 and "positive number" in bad.output
    bad = runner.invoke(_cli(), ["cfd", "shapes", str(tmp_path / "x"), "--slant", "90"])
    assert bad.exit_code == 2
    assert not (tmp_path / "x").exists()


def test_cfd_group_is_registered_and_light():
    from hpcprep.cli import build_cli

    group, _ = build_cli()
    assert "shapes" in group.commands["cfd"].commands
    # The command module imports neither NumPy nor the geometry until a command runs.
    code = "import sys, hpcprep_cfd.commands; sys.exit(1 if 'numpy' in sys.modules else 0)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 0, done.stdout + done.stderr
