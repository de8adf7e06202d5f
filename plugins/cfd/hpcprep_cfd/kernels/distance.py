"""Exact point-to-mesh distances through the BVH, unsigned and signed (negative inside).

Nearest triangle search: depth-first over the BVH with an explicit stack, nearer child first, pruning every node
whose box is not closer than the best triangle so far (squared distances throughout, so pruning is exact: the
result is the minimum over all triangles, whatever the initial guess). ``nearest_one`` also takes a hint triangle,
whose distance seeds the bound; point queries pass the previous point's answer in Morton order. The grid kernel
(``grid.py``) searches packets of nodes with the same bounds, evaluated per node.

Closest point on a triangle: the Voronoi-region walk over the vertices, edges and face (as in Ericson,
"Real-Time Collision Detection", 5.1.5); in the face region the point is projected on the plane along the cross
product of two edges, and a degenerate (zero-area) triangle falls back to its three edges, so collinear or
coincident vertices never produce NaN or a point off the triangle.

Sign rule (``signed_distance``): a point is inside when the mesh's winding number there exceeds 0.5. The winding
number of an inside-out (inward-oriented) closed mesh is -1 inside, so the mesh's signed volume is computed first
(``BVH.signed_volume``) and, when it is negative, the winding number's sign is flipped before the test: a closed
mesh reports negative inside whichever way it is oriented. Open meshes with no enclosed volume keep the sign as
computed. Points exactly on the surface get distance 0.

On a closed mesh the winding number is evaluated once per chain of Morton-consecutive points that provably lie
on the same side (:func:`.signs.sign_by_chains`), not once per point: the same signs, at a third of the winding
evaluations on random points in a hull's box. An open mesh with a small boundary is closed by caps (:mod:`.caps`)
and only the caps' winding number is evaluated per point (:func:`.signs.sign_through_caps`) where the caps are
small (:func:`.signs.caps_pay`); other open meshes (a soup, a ragged sheet, a rim as large as the mesh) get one
evaluation of the mesh per point.

``closest_on_triangle``, ``nearest_one`` and their helpers are also compiled for the GPU from this source
(``cuda.py``): keep them scalar code over the arrays they are given (no allocation, no ``prange``).

One module because unsigned and signed distances share the nearest-triangle search, its
lower bounds and the Morton-order schedule, and the sign rule is only the last step of the
signed one; the GPU variants compile these same functions from here.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from .bvh import BVH, EXP_AREA, EXP_CENTRE, as_points, build_bvh, mesh_bvh, morton_order
from .caps import boundary_caps
from .compare import box_gap, larger
from .signs import caps_pay, sign_by_chains, sign_through_caps
from .winding import tree_depth, winding_fast_one

WINDING_ACCURACY = 1.6
"""``accuracy`` of the hierarchical winding number used for the inside test. Its measured error bound
(``ERROR_BOUND[1.6]`` = 0.03) is far below the 0.5 the test needs, so it stays below ``DEFAULT_ACCURACY`` (2.4,
chosen to match libigl's winding-number values, not a sign): on a closed mesh the exact value is 0 or 1 off the
surface, and on an open one only points with ``|w - 0.5|`` under 0.03 could change side. Where the value is an
integer (a closed surface off it: the chains of :mod:`.signs`), it is first tried at the winding module's
``SNAP_ACCURACY`` and rounded, as :func:`.winding.winding_number` does; this accuracy is the fallback."""


@njit(cache=True, nogil=True, inline="always")
def _seg(px, py, pz, ax, ay, az, bx, by, bz):
    ex, ey, ez = bx - ax, by - ay, bz - az
    ee = ex * ex + ey * ey + ez * ez
    t = 0.0
    if ee > 0.0:
        t = min(1.0, max(0.0, ((px - ax) * ex + (py - ay) * ey + (pz - az) * ez) / ee))
    cx, cy, cz = ax + t * ex, ay + t * ey, az + t * ez
    dx, dy, dz = px - cx, py - cy, pz - cz
    return dx * dx + dy * dy + dz * dz, cx, cy, cz


@njit(cache=True, nogil=True, inline="always")
def _has_normal(abx, aby, abz, acx, acy, acz):
    nx = aby * acz - abz * acy
    ny = abz * acx - abx * acz
    nz = abx * acy - aby * acx
    return nx * nx + ny * ny + nz * nz > 0.0


# Inlined: the searches call it once per candidate triangle, and a call spills their lane arrays.
@njit(cache=True, nogil=True, inline="always")
def closest_on_triangle(tri, t, px, py, pz):
    """Squared distance from ``p`` to BVH-ordered triangle ``t`` and the closest point ``(d2, cx, cy, cz)``."""
    ax, ay, az = tri[t, 0, 0], tri[t, 0, 1], tri[t, 0, 2]
    bx, by, bz = tri[t, 1, 0], tri[t, 1, 1], tri[t, 1, 2]
    cx, cy, cz = tri[t, 2, 0], tri[t, 2, 1], tri[t, 2, 2]
    abx, aby, abz = bx - ax, by - ay, bz - az
    acx, acy, acz = cx - ax, cy - ay, cz - az
    apx, apy, apz = px - ax, py - ay, pz - az
    d1 = abx * apx + aby * apy + abz * apz
    d2 = acx * apx + acy * apy + acz * apz
    if d1 <= 0.0 and d2 <= 0.0:
        qx, qy, qz = ax, ay, az
    else:
        bpx, bpy, bpz = px - bx, py - by, pz - bz
        d3 = abx * bpx + aby * bpy + abz * bpz
        d4 = acx * bpx + acy * bpy + acz * bpz
        if d3 >= 0.0 and d4 <= d3:
            qx, qy, qz = bx, by, bz
        else:
            cpx, cpy, cpz = px - cx, py - cy, pz - cz
            d5 = abx * cpx + aby * cpy + abz * cpz
            d6 = acx * cpx + acy * cpy + acz * cpz
            vc = d1 * d4 - d3 * d2
            vb = d5 * d2 - d1 * d6
            va = d3 * d6 - d5 * d4
            if d6 >= 0.0 and d5 <= d6:
                qx, qy, qz = cx, cy, cz
            elif vc <= 0.0 and d1 >= 0.0 and d3 <= 0.0 and d1 - d3 > 0.0:
                v = d1 / (d1 - d3)
                qx, qy, qz = ax + v * abx, ay + v * aby, az + v * abz
            elif vb <= 0.0 and d2 >= 0.0 and d6 <= 0.0 and d2 - d6 > 0.0:
                w = d2 / (d2 - d6)
                qx, qy, qz = ax + w * acx, ay + w * acy, az + w * acz
            elif va <= 0.0 and d4 - d3 >= 0.0 and d5 - d6 >= 0.0 and (d4 - d3) + (d5 - d6) > 0.0:
                w = (d4 - d3) / ((d4 - d3) + (d5 - d6))
                qx, qy, qz = bx + w * (cx - bx), by + w * (cy - by), bz + w * (cz - bz)
            elif va + vb + vc > 0.0 and _has_normal(abx, aby, abz, acx, acy, acz):
                # Inside the face: the projection on the plane. Barycentric coordinates from the dot products
                # above divide rounding noise by noise on a (nearly) collinear triangle; the projection along
                # the cross product does not.
                nx = aby * acz - abz * acy
                ny = abz * acx - abx * acz
                nz = abx * acy - aby * acx
                s = (apx * nx + apy * ny + apz * nz) / (nx * nx + ny * ny + nz * nz)
                qx, qy, qz = px - s * nx, py - s * ny, pz - s * nz
            else:
                # Degenerate triangle (collinear or coincident vertices): nearest of its three edges.
                best, qx, qy, qz = _seg(px, py, pz, ax, ay, az, bx, by, bz)
                e2, ex, ey, ez = _seg(px, py, pz, bx, by, bz, cx, cy, cz)
                if e2 < best:
                    best, qx, qy, qz = e2, ex, ey, ez
                e2, ex, ey, ez = _seg(px, py, pz, cx, cy, cz, ax, ay, az)
                if e2 < best:
                    best, qx, qy, qz = e2, ex, ey, ez
    dx, dy, dz = px - qx, py - qy, pz - qz
    return dx * dx + dy * dy + dz * dz, qx, qy, qz


@njit(cache=True, nogil=True, inline="always")
def box_d2(boxes, node, px, py, pz):
    # Squared distance from p to the node's box (0 inside it): per axis, the overshoot below lo or above hi.
    ex = box_gap(boxes[node, 0, 0], boxes[node, 1, 0], px)
    ey = box_gap(boxes[node, 0, 1], boxes[node, 1, 1], py)
    ez = box_gap(boxes[node, 0, 2], boxes[node, 1, 2], pz)
    return ex * ex + ey * ey + ez * ez


@njit(cache=True, nogil=True)
def triangle_bounds(tri):
    """Per triangle, what :func:`nearest_one` needs to skip it without the exact test: its unit normal (zero for a
    degenerate one, columns 0-2), its centroid (3-5) and the largest distance from the centroid to a vertex (6),
    widened by 1e-12 relative so rounding cannot make the bound exceed a true distance."""
    n = tri.shape[0]
    out = np.zeros((n, 8))
    for t in range(n):
        ux, uy, uz = tri[t, 1, 0] - tri[t, 0, 0], tri[t, 1, 1] - tri[t, 0, 1], tri[t, 1, 2] - tri[t, 0, 2]
        vx, vy, vz = tri[t, 2, 0] - tri[t, 0, 0], tri[t, 2, 1] - tri[t, 0, 1], tri[t, 2, 2] - tri[t, 0, 2]
        cx, cy, cz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
        norm = math.sqrt(cx * cx + cy * cy + cz * cz)
        if norm > 0.0:
            out[t, 0], out[t, 1], out[t, 2] = cx / norm, cy / norm, cz / norm
        r2 = 0.0
        for d in range(3):
            out[t, 3 + d] = (tri[t, 0, d] + tri[t, 1, d] + tri[t, 2, d]) / 3.0
        for k in range(3):
            dx, dy, dz = tri[t, k, 0] - out[t, 3], tri[t, k, 1] - out[t, 4], tri[t, k, 2] - out[t, 5]
            r2 = max(r2, dx * dx + dy * dy + dz * dz)
        out[t, 6] = math.sqrt(r2) * (1.0 + 1e-12)
    return out


@njit(cache=True, nogil=True)
def leaf_bounds(tri, left, start, count, ex):
    """Per leaf node, a slab and a disc that hold its triangles, for :func:`leaf_d2`: the unit normal of the
    leaf's summed area vector (columns 0-2), its area-weighted centroid ``c`` (3-5), the largest distance of a
    vertex from the plane through ``c`` (6) and the largest distance within that plane (7), both widened by 1e-9
    relative so rounding cannot make the bound exceed a true distance. Inner nodes' rows are unused."""
    n = left.shape[0]
    out = np.zeros((n, 8))
    for node in range(n):
        if left[node] >= 0:
            continue
        nx, ny, nz = ex[node, EXP_AREA], ex[node, EXP_AREA + 1], ex[node, EXP_AREA + 2]
        norm = math.sqrt(nx * nx + ny * ny + nz * nz)
        if norm > 0.0:
            nx, ny, nz = nx / norm, ny / norm, nz / norm
        cx, cy, cz = ex[node, EXP_CENTRE], ex[node, EXP_CENTRE + 1], ex[node, EXP_CENTRE + 2]
        thick = 0.0
        wide2 = 0.0
        reach2 = 0.0
        for t in range(start[node], start[node] + count[node]):
            for k in range(3):
                dx, dy, dz = tri[t, k, 0] - cx, tri[t, k, 1] - cy, tri[t, k, 2] - cz
                h = nx * dx + ny * dy + nz * dz
                d2 = dx * dx + dy * dy + dz * dz
                thick = max(thick, abs(h))
                wide2 = max(wide2, d2 - h * h)
                reach2 = max(reach2, d2)
        slack = 1e-9 * math.sqrt(reach2)
        out[node, 0], out[node, 1], out[node, 2] = nx, ny, nz
        out[node, 3], out[node, 4], out[node, 5] = cx, cy, cz
        out[node, 6] = thick + slack
        out[node, 7] = math.sqrt(max(wide2, 0.0)) + slack
    return out


@njit(cache=True, nogil=True, inline="always")
def leaf_d2(leaf_bounds, node, px, py, pz):
    # A lower bound on the squared distance from p to a leaf's triangles: every one of their points is within the
    # slab (distance <= thick from the plane) and the cylinder (lateral distance <= wide from c).
    dx, dy, dz = px - leaf_bounds[node, 3], py - leaf_bounds[node, 4], pz - leaf_bounds[node, 5]
    h = leaf_bounds[node, 0] * dx + leaf_bounds[node, 1] * dy + leaf_bounds[node, 2] * dz
    across = abs(h) - leaf_bounds[node, 6]
    lateral = math.sqrt(larger(dx * dx + dy * dy + dz * dz - h * h, 0.0)) - leaf_bounds[node, 7]
    out = 0.0
    if across > 0.0:
        out += across * across
    if lateral > 0.0:
        out += lateral * lateral
    return out


@njit(cache=True, nogil=True)
def nearest_one(tri, tri_bounds, leaf_bounds, boxes, left, start, count, px, py, pz, hint, stack, stack_d):
    """Nearest BVH-ordered triangle to ``p``: ``(d2, t, cx, cy, cz)``. ``hint`` (a triangle or -1) seeds the bound.

    Before the exact test a leaf's triangle must pass two lower bounds (``tri_bounds`` from :func:`triangle_bounds`):
    the distance ``h`` to its plane, and ``sqrt(h^2 + (l - r)^2)`` with ``l`` the distance from ``p``'s projection
    on the plane to the centroid and ``r`` the triangle's radius about it (every point of the triangle lies in the
    plane within ``r`` of the centroid). The second rejects the triangles beside the nearest one, whose planes pass
    close to ``p``: on the points of a grid around a 116 k-triangle hull it leaves 3 exact tests per point of 33.
    Leaves are entered only when their slab-and-disc bound (``leaf_bounds`` from :func:`leaf_bounds`) is nearer
    than the best distance: 3 leaves per point there instead of 8."""
    best = np.inf
    bt = -1
    bx = by = bz = np.nan
    if hint >= 0:
        best, bx, by, bz = closest_on_triangle(tri, hint, px, py, pz)
        bt = hint
    sp = 0
    stack[0] = 0
    stack_d[0] = box_d2(boxes, 0, px, py, pz)
    sp = 1
    while sp > 0:
        sp -= 1
        if stack_d[sp] >= best:
            continue
        node = stack[sp]
        if left[node] < 0:
            s = start[node]
            for t in range(s, s + count[node]):
                if t == hint:
                    continue
                pd = (
                    tri_bounds[t, 0] * (px - tri[t, 0, 0])
                    + tri_bounds[t, 1] * (py - tri[t, 0, 1])
                    + tri_bounds[t, 2] * (pz - tri[t, 0, 2])
                )
                h2 = pd * pd
                if h2 >= best:
                    continue
                cx, cy, cz = px - tri_bounds[t, 3], py - tri_bounds[t, 4], pz - tri_bounds[t, 5]
                lat = math.sqrt(larger(cx * cx + cy * cy + cz * cz - h2, 0.0)) - tri_bounds[t, 6]
                if lat > 0.0 and h2 + lat * lat >= best:
                    continue
                d2, qx, qy, qz = closest_on_triangle(tri, t, px, py, pz)
                if d2 < best:
                    best = d2
                    bt = t
                    bx, by, bz = qx, qy, qz
        else:
            a = left[node]
            b = a + 1  # right child (see bvh.py)
            da = box_d2(boxes, a, px, py, pz)
            db = box_d2(boxes, b, px, py, pz)
            # A leaf's slab and disc fit its (nearly flat) patch of surface much closer than its box does.
            if left[a] < 0:
                da = larger(da, leaf_d2(leaf_bounds, a, px, py, pz))
            if left[b] < 0:
                db = larger(db, leaf_d2(leaf_bounds, b, px, py, pz))
            if da > db:
                a, b = b, a
                da, db = db, da
            # Push the farther child first so the nearer one is popped (and tightens the bound) first.
            if db < best:
                stack[sp] = b
                stack_d[sp] = db
                sp += 1
            if da < best:
                stack[sp] = a
                stack_d[sp] = da
                sp += 1
    return best, bt, bx, by, bz


@njit(cache=True, nogil=True, parallel=True)
def _distance_many(
    tri,
    tri_bounds,
    leaf_bounds,
    boxes,
    left,
    right,
    start,
    count,
    perm,
    ex,
    points,
    per_point_sign,
    flip,
    beta,
    n_blocks,
):
    n = points.shape[0]
    dist = np.empty(n)
    closest = np.empty((n, 3))
    fid = np.empty(n, dtype=np.int64)
    depth = tree_depth(left, right)
    order = morton_order(points)
    # Blocks of Morton-consecutive points, each walked in order by one thread: a point's search starts with the
    # previous point's nearest triangle as its bound (nearby points share nearest triangles), which prunes most of
    # the tree at once. The search still visits every box that could hold a nearer triangle, so the distance is
    # the same minimum; only which of several equally near triangles is reported can depend on the hint.
    n_blocks = max(1, min(n, n_blocks))
    for blk in prange(n_blocks):
        stack = np.empty(depth + 2, dtype=np.int64)
        stack_d = np.empty(depth + 2)
        hint = -1
        for o in range(blk * n // n_blocks, (blk + 1) * n // n_blocks):
            i = order[o]
            px, py, pz = points[i, 0], points[i, 1], points[i, 2]
            if not (math.isfinite(px) and math.isfinite(py) and math.isfinite(pz)):
                dist[i] = np.nan
                closest[i, 0] = closest[i, 1] = closest[i, 2] = np.nan
                fid[i] = -1
                continue
            d2, t, cx, cy, cz = nearest_one(
                tri, tri_bounds, leaf_bounds, boxes, left, start, count, px, py, pz, hint, stack, stack_d
            )
            hint = t
            d = math.sqrt(d2)
            if per_point_sign and d > 0.0:
                w = winding_fast_one(tri, left, start, count, ex, beta * beta, px, py, pz, stack)
                if flip * w > 0.5:
                    d = -d
            dist[i] = d
            closest[i, 0] = cx
            closest[i, 1] = cy
            closest[i, 2] = cz
            fid[i] = perm[t]
    return dist, closest, fid, order


def search_bounds(bvh: BVH) -> tuple[np.ndarray, np.ndarray]:
    """``(tri_bounds, leaf_bounds)`` of a tree, the extra arrays :func:`nearest_one` takes."""
    return triangle_bounds(bvh.triangles), leaf_bounds(bvh.triangles, bvh.left, bvh.start, bvh.count, bvh.expansion)


def orientation_flip(bvh: BVH) -> float:
    """-1.0 for an inside-out mesh (negative signed volume), else 1.0: the factor applied to the winding number."""
    return -1.0 if bvh.signed_volume < 0.0 else 1.0


def sign_caps(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """How the sign is found (module docstring): ``(apexes, cap_faces)`` with no cap faces for a closed mesh,
    the caps of an open mesh whose caps pay, None for one winding number of the mesh per point."""
    caps = boundary_caps(v, f)
    return caps if caps is not None and caps_pay(v, *caps) else None


def sign_points(v, bvh: BVH, caps, p: np.ndarray, order: np.ndarray, dist: np.ndarray) -> None:
    """Negate ``dist`` (the unsigned distances of the points ``p``, ``order`` their Morton order) where the
    points are inside: through chains on a closed mesh, through ``caps`` (from :func:`sign_caps`) on an open one.
    A point's sign does not depend on the other points (each chain's value is the same exact integer)."""
    flip = orientation_flip(bvh)
    depth = tree_depth(bvh.left, bvh.right)
    mesh = (bvh.triangles, bvh.left, bvh.start, bvh.count, bvh.expansion)
    if len(caps[1]) == 0:
        sign_by_chains(*mesh, WINDING_ACCURACY, bvh.boxes, p, order, dist, flip, depth)
        return
    cap = build_bvh(np.vstack([v, caps[0]]), caps[1])
    # The chains need min(distance to the mesh, to the caps): only points nearer the caps' box than the mesh
    # need the second (the caps are small: few points).
    gap = np.maximum(np.maximum(cap.boxes[0, 0] - p, p - cap.boxes[0, 1]), 0.0)
    near = np.flatnonzero(np.einsum("ij,ij->i", gap, gap) < dist * dist)
    caps_dist = np.full(len(p), np.inf)
    caps_dist[near] = _nearest(cap, np.ascontiguousarray(p[near]), False, flip)[0]
    depth = max(depth, tree_depth(cap.left, cap.right))
    caps_tree = (cap.triangles, cap.left, cap.start, cap.count, cap.expansion)
    sign_through_caps(mesh, caps_tree, WINDING_ACCURACY, bvh.boxes, p, order, dist, caps_dist, flip, depth)


def _query(vertices, faces, points, bvh, signed):
    v, f, bvh = mesh_bvh(vertices, faces, bvh)
    if len(f) == 0:
        raise ValueError("the mesh has no faces: distances to it are undefined")
    p = as_points(points)
    if len(p) == 0:
        return np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
    caps = sign_caps(v, f) if signed else None
    dist, closest, fid, order = _nearest(bvh, p, signed and caps is None, orientation_flip(bvh))
    if signed and caps is not None:
        sign_points(v, bvh, caps, p, order, dist)
    return dist, closest, fid


def _nearest(bvh: BVH, p: np.ndarray, per_point_sign: bool, flip: float):
    """``(distance, closest, face_ids, order)``, the distance signed here only with ``per_point_sign``."""
    return _distance_many(
        bvh.triangles,
        *search_bounds(bvh),
        bvh.boxes,
        bvh.left,
        bvh.right,
        bvh.start,
        bvh.count,
        bvh.perm,
        bvh.expansion,
        p,
        per_point_sign,
        flip,
        WINDING_ACCURACY,
        64 * numba.get_num_threads(),  # enough blocks to balance the threads; each one long enough to profit
    )


def unsigned_distance(vertices, faces, points, *, bvh: BVH | None = None):
    """Exact Euclidean distance from each point to the mesh surface.

    Returns ``(distance (P,) float64, closest_points (P, 3) float64, face_ids (P,) int64)``; ``face_ids`` index the
    input faces (the lowest-cost one found when several are equally near). Points with NaN give NaN and face -1.
    """
    return _query(vertices, faces, points, bvh, False)


def signed_distance(vertices, faces, points, *, bvh: BVH | None = None):
    """Exact distance to the surface, negative inside (winding number > 0.5; see the module docstring for the rule
    on inside-out meshes). Returns ``(distance, closest_points, face_ids)`` like :func:`unsigned_distance`."""
    return _query(vertices, faces, points, bvh, True)
