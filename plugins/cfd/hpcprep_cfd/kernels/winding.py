"""Generalised winding number of a triangle mesh (Jacobson et al. 2013), exact or hierarchical.

``w(q) = sum_t Omega_t(q) / (4 pi)``, with ``Omega_t`` the signed solid angle of triangle ``t`` seen from ``q``
(positive when ``q`` is on the side its normal ``(b - a) x (c - a)`` points away from). For a closed mesh with
outward normals ``w`` is 1 inside and 0 outside (``k`` inside ``k`` nested shells); for open meshes and triangle
soups it varies smoothly and ``w > 0.5`` is the usual inside test.

Exact solid angle of one triangle (Van Oosterom & Strackee 1983), with ``a, b, c`` the vertices minus ``q``::

    tan(Omega / 2) = a . (b x c) / (|a||b||c| + (a . b)|c| + (b . c)|a| + (c . a)|b|)

evaluated with ``atan2`` so the result covers the full ``(-2 pi, 2 pi)`` range. A query point on a vertex or a
degenerate triangle gives ``atan2(0, 0) = 0``, never NaN.

Hierarchical mode (in the spirit of Barill et al. 2018, "Fast winding numbers for soups and clouds", who stop at
order 2): walking the BVH, a node whose expansion centre ``p`` is farther than ``accuracy * radius`` from ``q``
is replaced by a Taylor expansion of the dipole kernel ``g(y) = y / |y|^3`` about ``y0 = p - q``::

    4 pi w_node ~= sum_i N_i g_i + sum_ij M_ij dg_i/dy_j + 1/2 sum_ijk T_ijk d2g_i/dy_j dy_k
                   + 1/6 sum_ijkl U_ijkl d3g_i/dy_j dy_k dy_l   (at y0)

with ``N``, ``M``, ``T``, ``U`` the node's moments of order 0 to 3 (area vectors times powers of ``x - p``, see
:mod:`.bvh`, which stores them folded into three polynomials in ``y``: the same terms in a fraction of the
arithmetic); nearer nodes are opened, and leaves are summed exactly. Beyond twice the threshold distance only
orders 0 and 1 are kept: what is dropped there is no larger than the truncation error at the threshold (the
measured bounds below include this at every accuracy). The
truncation error of one node is of order ``|N| (radius / d)^4 / d^2`` (``d`` the distance to the centre), so it
shrinks about ``accuracy^-4`` with the accuracy; how node errors add up depends on the mesh, so the total is
bounded empirically. Measured on the tutorial meshes of openfoam-examples (flange, bullet, propellerTip, DTC; 1500
points in the padded bounding box and 1000 within about 1% of the size from the surface, five point sets each)
the largest ``|w - w_exact|`` was 0.031 / 0.027 / 0.013 / 0.0095 / 0.0034 / 0.0012 for accuracy 1.5 / 1.6 / 1.8
/ 2 / 2.4 / 3 (bullet or flange the worst; leaves of 8 triangles, ``bvh.LEAF_SIZE``); ``ERROR_BOUND`` rounds these up and ``tests/cfd/test_vs_libigl.py``
checks them. ``accuracy`` is a ratio of distance to radius like libigl's ``accuracy_scale``, but the trees
differ (ours is binary and its radius is the exact largest vertex distance from the expansion centre), so equal
numbers are not equal accuracy: at 2 ours has up to twice libigl's error at its default 2 (bullet: 0.0095 against
0.0049); at 2.4 it is below libigl's on every mesh and point set above (bullet: at most 0.0021 against libigl's
0.0029 to 0.0049), hence the default. ``accuracy=None`` sums every triangle exactly
(``O(F)`` per point). The inside test ``w > 0.5`` is unaffected wherever the exact ``w`` is farther than the
bound from 0.5 (for closed meshes: everywhere off the surface).

Closed meshes (:func:`.closed.is_closed`: every edge used equally often in both directions) have an integer winding
number off the surface, so :func:`winding_number` gives them the exact value there: a first pass at the low
``SNAP_ACCURACY`` (largest error 0.067 on the meshes above, ``ERROR_BOUND[1.3]``), and every value within
``SNAP_TOLERANCE`` of an integer is that integer. The rest get a second pass at the requested ``accuracy``: points
on the surface's edges and vertices, where the value is the enclosed share of the solid angle (1/4 on an edge of a
cube, 1/8 at its corner, 1/2 on a flat edge), and any point whose first pass erred by more than the tolerance. So
on a closed mesh the value is exact off the surface whatever ``accuracy`` says, at about a third of the cost of one
pass at the default. On the surface itself the exact value is ill-conditioned (on a face the solid angle of the
face's own triangle is +-2 pi or 0 by rounding, for libigl's exact sum too); a surface point whose value lies
within the tolerance of an integer (a face, the tip of a needle) is rounded to it. Given many points (at least a
quarter as many as triangles), most of them need no pass at all: a grid of about one cell per triangle splits the
mesh's box into cells no triangle touches, in connected pieces with one integer each (:mod:`.free_cells`), so a
point in a free cell takes its piece's integer (0 outside, one rounded evaluation per inner piece) and only the
points in the cells by the surface (about one in ten in the padded box of the DTC hull) are evaluated as above.

Open meshes whose boundary is a small part of them (a hull with holes) get the same treatment through caps
(:mod:`.caps`): with ``C`` the fans that close each piece of the boundary, ``w = w_(mesh + C) - w_C``, the first
term an integer found as above and the second, a mesh of a few triangles per hole, at the requested ``accuracy``.
The error is then that of ``w_C`` alone (on the DTC hull with every 97th face removed: 1e-4 at the default,
against 1.7e-3 for one pass over the mesh). Points where ``w_(mesh + C)`` is not near an integer (on or by the
mesh or a cap) take it at the requested accuracy. Without a boundary to cap cheaply (a soup), or with a tree
passed in (``bvh=``, built for the mesh alone), the mesh gets one pass at the requested accuracy.

``solid_angle``, ``winding_exact_one``, ``winding_fast_one`` and ``_far_field`` are also compiled for the GPU from
this source (``cuda.py``): keep them scalar code over the arrays they are given (no allocation, no ``prange``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import free_cells
from .bvh import BVH, LEAF_SIZE, as_points, build_bvh, mesh_bvh, morton_order
from .caps import boundary_caps
from .closed import is_closed
from .health import check_mesh

ERROR_BOUND = {1.3: 0.08, 1.5: 0.04, 1.6: 0.03, 1.8: 0.02, 2.0: 0.015, 2.4: 0.006, 3.0: 0.002}
"""Measured bound on ``max |w_hierarchical - w_exact|`` for an ``accuracy`` (see the module docstring)."""

DEFAULT_ACCURACY = 2.4
"""Default ``accuracy``: the smallest of the measured settings whose largest error is no larger than libigl's at
its default (``FastWindingNumberBVH``, ``accuracy_scale`` 2, second order) on the same points of every tutorial
mesh (module docstring; checked by ``tests/cfd/test_vs_libigl.py``)."""

SNAP_ACCURACY = 1.3
"""``accuracy`` of the first pass on a closed mesh, whose values near an integer are rounded to it."""

SNAP_TOLERANCE = 0.1
"""A first-pass value this close to an integer is that integer. Errors at ``SNAP_ACCURACY`` are below 0.08, so
rounding to the wrong integer would take an error eleven times that; a larger error costs a second pass."""

FEW_QUERIES_LEAF_SIZE = 16
"""Triangles per leaf of a closed (or capped) mesh's tree when the free cells will take most of the points (nine in
ten in the DTC hull's padded box): the tree then serves only the points by the surface and the build is most of
the cost. Leaves of 16 halve the nodes to build (0.062 -> 0.051 s on the 116 062-triangle hull) and to visit (a
call with 50 000 points 0.095 -> 0.075 s closed, 0.16 -> 0.14 s with 1 197 holes). Leaves are summed exactly, so
no less accurate (the largest errors on the benchmark's points are those of leaves of 8 to the last digit)."""

_INV_4PI = 1.0 / (4.0 * math.pi)


@njit(cache=True, nogil=True, inline="always")
def solid_angle(tri, t, qx, qy, qz):
    """Signed solid angle of BVH-ordered triangle ``t`` seen from ``(qx, qy, qz)`` (Van Oosterom-Strackee)."""
    ax, ay, az = tri[t, 0, 0] - qx, tri[t, 0, 1] - qy, tri[t, 0, 2] - qz
    bx, by, bz = tri[t, 1, 0] - qx, tri[t, 1, 1] - qy, tri[t, 1, 2] - qz
    cx, cy, cz = tri[t, 2, 0] - qx, tri[t, 2, 1] - qy, tri[t, 2, 2] - qz
    la = math.sqrt(ax * ax + ay * ay + az * az)
    lb = math.sqrt(bx * bx + by * by + bz * bz)
    lc = math.sqrt(cx * cx + cy * cy + cz * cz)
    det = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
    den = la * lb * lc + (ax * bx + ay * by + az * bz) * lc + (bx * cx + by * cy + bz * cz) * la
    den += (cx * ax + cy * ay + cz * az) * lb
    return 2.0 * math.atan2(det, den)


@njit(cache=True, nogil=True)
def winding_exact_one(tri, qx, qy, qz):
    total = 0.0
    for t in range(tri.shape[0]):
        total += solid_angle(tri, t, qx, qy, qz)
    return total * _INV_4PI


@njit(cache=True, nogil=True)
def winding_fast_one(tri, left, start, count, ex, beta2, qx, qy, qz, stack):
    """Hierarchical winding number at one point; ``ex`` = ``BVH.expansion``, ``beta2`` = accuracy**2; ``stack`` has
    length >= tree depth + 1."""
    if left.shape[0] == 0:
        return 0.0
    total = 0.0
    stack[0] = 0
    sp = 1
    while sp > 0:
        sp -= 1
        node = stack[sp]
        yx = ex[node, 0] - qx
        yy = ex[node, 1] - qy
        yz = ex[node, 2] - qz
        r2 = yx * yx + yy * yy + yz * yz
        near2 = beta2 * ex[node, 3]  # squared radius in the row: the far test needs no sqrt
        if r2 > near2:
            # Beyond twice the threshold distance the order-2 and -3 terms are smaller than the truncation error
            # of the full expansion at the threshold, so they are skipped there.
            total += _far_field(ex, node, yx, yy, yz, r2, r2 <= 4.0 * near2)
        elif left[node] < 0:
            s = start[node]
            for t in range(s, s + count[node]):
                total += solid_angle(tri, t, qx, qy, qz)
        else:
            # right child = left + 1 (see bvh.py); push it first so the left subtree is walked first.
            stack[sp] = left[node] + 1
            stack[sp + 1] = left[node]
            sp += 2
    return total * _INV_4PI


@njit(cache=True, nogil=True, inline="always")
def _far_field(ex, node, yx, yy, yz, r2, second):
    """4 pi times the expanded winding number of node ``node`` (its row of ``BVH.expansion``), ``y = p - q``:
    ``N.y / r^3 + Q2(y) / r^5 (+ Q3(y) / r^7 + Q4(y) / r^9 when second)``, the Taylor terms of order 0, 1 (, 2,
    3) of the dipole kernel folded into polynomials (bvh.py, EXP_Q2)."""
    inv = 1.0 / math.sqrt(r2)
    inv2 = inv * inv
    xx, yy2, zz = yx * yx, yy * yy, yz * yz
    xy, xz, yz2 = yx * yy, yx * yz, yy * yz
    w = ex[node, 4] * yx + ex[node, 5] * yy + ex[node, 6] * yz
    q2 = ex[node, 7] * xx + ex[node, 8] * yy2 + ex[node, 9] * zz
    q2 += ex[node, 10] * xy + ex[node, 11] * xz + ex[node, 12] * yz2
    if second:
        q3 = ex[node, 13] * xx + ex[node, 14] * xy + ex[node, 15] * xz
        q3 += ex[node, 16] * yy2 + ex[node, 17] * yz2 + ex[node, 18] * zz
        q3 *= yx
        q3 += yy * (ex[node, 19] * yy2 + ex[node, 20] * yz2 + ex[node, 21] * zz) + yz * (ex[node, 22] * zz)
        q4 = xx * (ex[node, 23] * xx + ex[node, 24] * xy + ex[node, 25] * xz)
        q4 += xx * (ex[node, 26] * yy2 + ex[node, 27] * yz2 + ex[node, 28] * zz)
        q4 += xy * (ex[node, 29] * yy2 + ex[node, 30] * yz2 + ex[node, 31] * zz) + xz * (ex[node, 32] * zz)
        q4 += yy2 * (ex[node, 33] * yy2 + ex[node, 34] * yz2 + ex[node, 35] * zz)
        q4 += zz * (ex[node, 36] * yz2 + ex[node, 37] * zz)
        q2 += (q3 + q4 * inv2) * inv2
    return (w + q2 * inv2) * inv2 * inv


@njit(cache=True, nogil=True)
def tree_depth(left, right):
    """Depth of the tree (root alone = 1), to size traversal stacks."""
    n = left.shape[0]
    if n == 0:
        return 0
    depth = np.zeros(n, dtype=np.int64)
    depth[0] = 1
    best = 1
    for node in range(n):  # parents come before children
        if left[node] >= 0:
            depth[left[node]] = depth[node] + 1
            depth[right[node]] = depth[node] + 1
            best = max(best, depth[node] + 1)
    return best


@njit(cache=True, nogil=True, parallel=True)
def _winding_many(tri, left, right, start, count, ex, beta, points, exact):
    n = points.shape[0]
    out = np.empty(n)
    depth = tree_depth(left, right)
    order = morton_order(points)
    for o in prange(n):
        i = order[o]
        qx, qy, qz = points[i, 0], points[i, 1], points[i, 2]
        if not (math.isfinite(qx) and math.isfinite(qy) and math.isfinite(qz)):
            out[i] = np.nan
        elif exact:
            out[i] = winding_exact_one(tri, qx, qy, qz)
        else:
            stack = np.empty(depth + 2, dtype=np.int64)
            out[i] = winding_fast_one(tri, left, start, count, ex, beta * beta, qx, qy, qz, stack)
    return out


def snapped(evaluate, points: np.ndarray, accuracy: float | None, closed: bool, triangles=None) -> np.ndarray:
    """Winding numbers from ``evaluate(points, accuracy)``; on a closed mesh the integer value off the surface
    (module docstring). With the mesh's ``triangles`` (``BVH.triangles``) and enough points, the points in cells
    of a grid that no triangle touches take their piece's integer (:mod:`.free_cells`) and only the others are
    evaluated. Shared by the CPU and GPU kernels, which differ only in ``evaluate``."""
    if not closed or accuracy is None or len(points) == 0:
        return evaluate(points, accuracy)
    if triangles is None or not free_cells.worth_a_grid(len(triangles), len(points)):
        return _rounded(evaluate, points, accuracy)
    regions = free_cells.free_regions(triangles)
    piece = free_cells.region_of(points, regions)
    value = np.zeros(len(regions.seeds))  # OUTSIDE: 0
    if len(value) > 1:
        value[1:] = np.rint(_rounded(evaluate, free_cells.seed_points(regions), accuracy)) + 0.0
    w = np.empty(len(points))
    free = piece != free_cells.MARKED
    w[free] = value[piece[free]]
    rest = np.flatnonzero(~free)
    if len(rest):
        w[rest] = _rounded(evaluate, np.ascontiguousarray(points[rest]), accuracy)
    return w


def _rounded(evaluate, points: np.ndarray, accuracy: float) -> np.ndarray:
    """A first pass at ``SNAP_ACCURACY``, its values near an integer rounded, the rest at ``accuracy``."""
    w = evaluate(points, min(accuracy, SNAP_ACCURACY))
    k = np.rint(w)
    near = np.abs(w - k) <= SNAP_TOLERANCE
    w[near] = k[near] + 0.0  # + 0.0: no negative zeros
    rest = np.flatnonzero(~near & np.isfinite(w))
    if len(rest):
        w[rest] = evaluate(np.ascontiguousarray(points[rest]), accuracy)
    return w


def winding_from_bvh(bvh: BVH, points: np.ndarray, accuracy: float | None) -> np.ndarray:
    """Hierarchical (or exact) winding numbers for validated points with a built tree, never rounded."""
    if len(points) == 0:
        return np.zeros(0)
    exact = accuracy is None
    beta = 0.0 if exact else float(accuracy)
    return _winding_many(
        bvh.triangles,
        bvh.left,
        bvh.right,
        bvh.start,
        bvh.count,
        bvh.expansion,
        beta,
        points,
        exact,
    )


def winding_number(
    vertices, faces, points, accuracy: float | None = DEFAULT_ACCURACY, *, bvh: BVH | None = None
) -> np.ndarray:
    """Generalised winding number of the mesh ``(vertices, faces)`` at each point, float64 shape ``(P,)``.

    ``accuracy=None`` sums the exact solid angle of every triangle. A number ``beta`` (> 1, like libigl's
    ``accuracy_scale``; default 2.4) uses the BVH: nodes farther than ``beta`` times their radius are replaced by
    their far-field expansion (to order 3); near nodes are exact. Larger ``beta`` is slower and more accurate; the
    measured error bound is ``ERROR_BOUND[beta]`` (module docstring). On a closed mesh the value off the surface
    is the exact integer, found at lower accuracy and rounded; an open mesh with a small boundary is closed by
    caps and its value is that of the closed mesh less the caps' (module docstring). A prebuilt tree
    (``build_bvh``) can be passed as ``bvh``; it is then used as it is, without caps. Points with NaN coordinates
    give NaN.
    """
    if accuracy is not None and not accuracy > 1.0:
        raise ValueError(f"accuracy must be None (exact) or a number > 1, got {accuracy}")
    v, f = check_mesh(vertices, faces)
    points = as_points(points)
    if accuracy is None:
        closed = False
    elif bvh is None:
        caps = boundary_caps(v, f)  # (none needed: closed, as is_closed decides; too many: a soup)
        closed = caps is not None and len(caps[1]) == 0
        if caps is not None and not closed:
            return capped(v, f, *caps, points, accuracy)
    else:
        closed = is_closed(v, f)
    v, f, bvh = mesh_bvh(v, f, bvh, _leaf_size(closed, len(f), len(points)))
    return snapped(lambda p, acc: winding_from_bvh(bvh, p, acc), points, accuracy, closed, bvh.triangles)


def _leaf_size(closed: bool, n_triangles: int, n_points: int) -> int:
    """Leaves of the tree :func:`snapped` is given: ``FEW_QUERIES_LEAF_SIZE`` where the free cells will take most
    points, ``bvh.LEAF_SIZE`` otherwise."""
    if closed and free_cells.worth_a_grid(n_triangles, n_points):
        return FEW_QUERIES_LEAF_SIZE
    return LEAF_SIZE


def capped(v, f, apexes, cap_faces, points: np.ndarray, accuracy: float) -> np.ndarray:
    """Winding numbers of the open mesh ``(v, f)`` as those of the mesh closed by its caps minus the caps'
    (module docstring)."""
    both_v = np.vstack([v, apexes])
    both_f = np.vstack([f, cap_faces])
    closed = build_bvh(both_v, both_f, _leaf_size(True, len(both_f), len(points)))
    caps = build_bvh(both_v, cap_faces)
    w = snapped(lambda p, acc: winding_from_bvh(closed, p, acc), points, accuracy, True, closed.triangles)
    return w - winding_from_bvh(caps, points, accuracy)
