"""Signed distance field on a regular grid, exact at every node, without one independent query per node.

Two facts about the exact distance ``d`` to a surface make a grid much cheaper than its nodes queried one by one:

1. Warm start: ``|d(a)| <= |d(b)| + |a - b|``, so a neighbour's nearest triangle is an excellent first guess for
   the next node. Nodes are searched in packets of ``ROW_PACKET`` consecutive nodes of a row (``k`` fastest), or
   of ``WIDE_PACKET`` far from the surface (see there): one
   walk of the BVH serves the whole packet, each node starting with the distance to its neighbour's nearest
   triangle in the previous row as its bound. A box is entered while it could hold a triangle nearer than some
   node's bound, and a triangle is tested exactly for each node whose bound its lower bounds (distance to its
   plane, then within the plane: outside its disc about the centroid and outside its edges' lines) do not
   already exclude, so every node still gets the same minimum a cold query finds. Along a row only ``z``
   changes, so the ``x``/``y`` parts of those bounds are computed once per packet.
2. Sign propagation: when ``|d(a)| + |d(b)| > |a - b|`` the balls of radius ``|d(a)|`` about ``a`` and ``|d(b)|``
   about ``b`` cover the segment ``ab`` and hold no surface point, so ``ab`` does not touch the surface. For a
   closed mesh (every edge used equally often in both directions, after welding coincident vertices) the winding
   number is constant off the surface along such a segment, so ``a`` and ``b`` are on the same side. The nodes are
   split into the connected components of that neighbour relation (:mod:`.grid_components`); the winding number
   is evaluated once per component (at its node farthest from the surface) and its sign copied to the whole
   component. Nodes next to the surface end up in small components and get their own winding number.

For meshes that are not closed the winding number is not piecewise constant. Where caps close the mesh cheaply
(holes, inlets: :func:`.distance.sign_caps`) the nodes' signs are found as for points (:mod:`.signs`: the closed
mesh's integer per chain, the caps' winding number per node); otherwise (soups, large rims) every node gets its
own evaluation. Either way each node's sign is the one :func:`signed_distance` gives at that point (winding
number > 0.5 inside, flipped for an inside-out mesh): the result equals per-node exact queries.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .bvh import BVH, mesh_bvh, morton_order
from .closed import is_closed
from .compare import box_gap, larger
from .distance import (
    WINDING_ACCURACY,
    closest_on_triangle,
    leaf_d2,
    orientation_flip,
    search_bounds,
    sign_caps,
    sign_points,
)
from .grid_components import components, negate_runs
from .winding import tree_depth, winding_fast_one

__all__ = ["is_closed", "sdf_grid"]  # is_closed lives in closed.py; importers of grid.is_closed keep working

ROW_PACKET = 16
"""Nodes of a row searched by one walk of the BVH. On a 128^3 grid around a 116 k-triangle hull, one thread: about
0.5 s of distances, against 1.2-1.3 s one node at a time; packets of 8 were slower. The lanes' bound tests are
loops over the whole packet, which the compiler vectorises."""

WIDE_PACKET = 2 * ROW_PACKET
"""Nodes searched by one walk where each of them was, in the previous row, farther from the surface than half the
span's length: their nearest triangles lie close together, so one walk serves twice the nodes for little more than
twice the lanes' work. Packets of 32 everywhere made some grids 5-10 % faster and others up to 9 % slower (more
lanes to test near the surface); only far from it, the distances of a 128^3 grid take 6-7 % less time on the
116 k-triangle hull, 3-4 % on a flange and within 3 % either way on the other meshes (one thread).
Packets of 64 there were slower."""


def sdf_grid(vertices, faces, resolution, bounds=None, padding: float = 0.1, *, bvh: BVH | None = None):
    """Signed distance (negative inside) at the nodes of a regular grid.

    ``resolution``: an int (same node count on every axis) or ``(nx, ny, nz)``, each >= 2. ``bounds``:
    ``((xmin, ymin, zmin), (xmax, ymax, zmax))``; by default the mesh's bounding box enlarged on each side by
    ``padding`` times its extent (an axis along which the mesh is flat uses its largest extent instead). Node
    ``(i, j, k)`` is at ``origin + (i, j, k) * spacing``; the first and last nodes lie on the bounds.

    Returns ``(grid, origin, spacing)``: ``grid`` float64 of shape ``(nx, ny, nz)`` indexed ``[i, j, k]`` = x, y,
    z; ``origin`` and ``spacing`` float64 of shape (3,).
    """
    v, f, bvh = mesh_bvh(vertices, faces, bvh)
    if len(f) == 0:
        raise ValueError("the mesh has no faces: a distance field is undefined")
    shape = _shape(resolution)
    lo, hi = _bounds(v, f, bounds, padding)
    spacing = (hi - lo) / (np.asarray(shape, dtype=np.float64) - 1.0)
    tri_bounds, leaf_bounds = search_bounds(bvh)
    dist, near = _grid_distances(
        bvh.triangles,
        tri_bounds,
        _edge_bounds(bvh.triangles, tri_bounds),
        leaf_bounds,
        bvh.boxes,
        bvh.left,
        bvh.right,
        bvh.start,
        bvh.count,
        lo,
        spacing,
        *shape,
    )
    flip = orientation_flip(bvh)
    args = (bvh.triangles, bvh.left, bvh.right, bvh.start, bvh.count, bvh.expansion)
    caps = sign_caps(v, f)
    if caps is not None and len(caps[1]) == 0:  # closed
        run_start, run_comp, seeds = components(dist, spacing)
        w = _winding_at(*args, WINDING_ACCURACY, lo, spacing, seeds, shape[1], shape[2])
        negate_runs(dist.reshape(-1), run_start, run_comp, flip * w > 0.5)
        return dist, lo, spacing
    if caps is not None:
        nodes = _nodes(shape, lo, spacing)
        sign_points(v, bvh, caps, nodes, morton_order(nodes), dist.reshape(-1))
        return dist, lo, spacing
    idx = np.flatnonzero(dist.ravel() > 0.0)
    w = np.zeros(dist.size)
    w[idx] = _winding_at(*args, WINDING_ACCURACY, lo, spacing, idx, shape[1], shape[2])
    inside = (flip * w > 0.5).reshape(shape)
    # In place: a new array (16 MB at 128^3) would cost its page faults on every call.
    np.negative(dist, out=dist, where=inside & (dist > 0.0))
    return dist, lo, spacing


def _nodes(shape, lo, spacing) -> np.ndarray:
    """Node positions ``lo + (i, j, k) * spacing``, C order of ``[i, j, k]``, shape (nx * ny * nz, 3)."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    return lo + idx * spacing


def _shape(resolution) -> tuple[int, int, int]:
    r = np.atleast_1d(np.asarray(resolution))
    if r.size == 1:
        r = np.repeat(r, 3)
    if r.shape != (3,) or not np.issubdtype(r.dtype, np.integer):
        raise ValueError(f"resolution must be an int or three ints (nx, ny, nz), got {resolution!r}")
    if (r < 2).any():
        raise ValueError(f"resolution must be >= 2 nodes per axis, got {tuple(int(x) for x in r)}")
    return int(r[0]), int(r[1]), int(r[2])


def _bounds(v, f, bounds, padding):
    if bounds is None:
        mask = np.zeros(len(v), dtype=bool)
        mask[f.reshape(-1)] = True
        used = v[mask]
        lo, hi = used.min(axis=0), used.max(axis=0)
        ext = hi - lo
        ext = np.where(ext > 0.0, ext, ext.max())
        if not ext.max() > 0.0:
            ext = np.ones(3)  # all faces collapse to one point
        if not padding >= 0.0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        return lo - padding * ext, hi + padding * ext
    b = np.asarray(bounds, dtype=np.float64)
    if b.shape != (2, 3) or not np.isfinite(b).all():
        raise ValueError(f"bounds must be ((xmin, ymin, zmin), (xmax, ymax, zmax)), got {bounds!r}")
    if not (b[1] > b[0]).all():
        raise ValueError(f"bounds must have max > min on every axis, got {b.tolist()}")
    return b[0].copy(), b[1].copy()


@njit(cache=True, nogil=True)
def _edge_bounds(tri, tri_bounds):
    """Per triangle and edge, the edge's outward unit normal ``m`` within the triangle's plane and the offset ``c``
    of its line (``[t, e] = mx, my, mz, c``): every point ``x`` of the triangle has ``m . x <= c``, so a point ``p``
    with ``m . p > c`` lies at least ``m . p - c`` from it within the plane (``m`` is perpendicular to the normal,
    so ``p`` need not be projected first). ``c`` is raised by 1e-9 of the coordinates' size, so rounding cannot
    make the bound exceed a true distance; a degenerate triangle (zero normal) gets ``m = 0``, no bound."""
    n = tri.shape[0]
    out = np.zeros((n, 3, 4))
    for t in range(n):
        nx, ny, nz = tri_bounds[t, 0], tri_bounds[t, 1], tri_bounds[t, 2]
        if nx == 0.0 and ny == 0.0 and nz == 0.0:
            continue
        for e in range(3):
            u, w, o = e, (e + 1) % 3, (e + 2) % 3
            ex, ey, ez = tri[t, w, 0] - tri[t, u, 0], tri[t, w, 1] - tri[t, u, 1], tri[t, w, 2] - tri[t, u, 2]
            mx, my, mz = ey * nz - ez * ny, ez * nx - ex * nz, ex * ny - ey * nx
            norm = math.sqrt(mx * mx + my * my + mz * mz)
            if norm == 0.0:
                continue
            mx, my, mz = mx / norm, my / norm, mz / norm
            if (
                mx * (tri[t, o, 0] - tri[t, u, 0])
                + my * (tri[t, o, 1] - tri[t, u, 1])
                + mz * (tri[t, o, 2] - tri[t, u, 2])
                > 0
            ):
                mx, my, mz = -mx, -my, -mz
            size = 0.0
            c = -np.inf
            for k in range(3):
                c = max(c, mx * tri[t, k, 0] + my * tri[t, k, 1] + mz * tri[t, k, 2])
                size = max(size, abs(tri[t, k, 0]), abs(tri[t, k, 1]), abs(tri[t, k, 2]))
            out[t, e, 0], out[t, e, 1], out[t, e, 2] = mx, my, mz
            out[t, e, 3] = c + 1e-9 * size
    return out


@njit(cache=True, nogil=True, parallel=True)
def _grid_distances(tri, tri_bounds, edges, leaf_bounds, boxes, left, right, start, count, origin, spacing, nx, ny, nz):
    dist = np.empty((nx, ny, nz))
    near = np.empty((nx, ny, nz), dtype=np.int64)
    depth = tree_depth(left, right)
    far = 0.5 * WIDE_PACKET * spacing[2]
    for i in prange(nx):
        # The walk's stack, and per entry its box's lower bound and x/y gap (see _search_packet).
        walk = (np.empty(depth + 2, dtype=np.int64), np.empty(depth + 2), np.empty(depth + 2))
        # One set of lane arrays per packet width (index 1: wide).
        pzs = (np.empty(ROW_PACKET), np.empty(WIDE_PACKET))
        bests = (np.empty(ROW_PACKET), np.empty(WIDE_PACKET))
        hits = (np.empty(ROW_PACKET, dtype=np.int64), np.empty(WIDE_PACKET, dtype=np.int64))
        seeds = (np.empty(ROW_PACKET, dtype=np.int64), np.empty(WIDE_PACKET, dtype=np.int64))
        h2s = (np.empty(ROW_PACKET), np.empty(WIDE_PACKET))
        px = origin[0] + i * spacing[0]
        for j in range(ny):
            py = origin[1] + j * spacing[1]
            k0 = 0
            while k0 < nz:
                wide = 0
                if j > 0 and k0 + WIDE_PACKET <= nz:
                    wide = 1
                    for k in range(k0, k0 + WIDE_PACKET):
                        if dist[i, j - 1, k] <= far:
                            wide = 0
                            break
                pz, best, hit, seed, h2 = pzs[wide], bests[wide], hits[wide], seeds[wide], h2s[wide]
                lanes = pz.shape[0]
                m = min(lanes, nz - k0)
                for q in range(lanes):
                    k = k0 + min(q, m - 1)
                    pz[q] = origin[2] + k * spacing[2]
                    if q >= m:  # a lane past the row's end: no box or triangle is ever nearer
                        best[q] = -np.inf
                        hit[q] = seed[q] = -1
                        continue
                    # Warm start from the same node of the previous row, or the node before the packet.
                    if j > 0:
                        hint = near[i, j - 1, k]
                    elif k0 > 0:
                        hint = near[i, j, k0 - 1]
                    else:
                        hint = -1
                    hit[q] = seed[q] = hint
                    best[q] = np.inf if hint < 0 else closest_on_triangle(tri, hint, px, py, pz[q])[0]
                _search_packet(
                    tri,
                    tri_bounds,
                    edges,
                    leaf_bounds,
                    boxes,
                    left,
                    start,
                    count,
                    px,
                    py,
                    pz,
                    m,
                    best,
                    hit,
                    seed,
                    h2,
                    walk,
                )
                for q in range(m):
                    dist[i, j, k0 + q] = math.sqrt(best[q])
                    near[i, j, k0 + q] = hit[q]
                k0 += lanes
    return dist, near


@njit(cache=True, nogil=True)
def _search_packet(
    tri, tri_bounds, edges, leaf_bounds, boxes, left, start, count, px, py, pz, m, best, hit, seed, h2, walk
):
    """Nearest triangles of the packet's nodes ``(px, py, pz[q])``, ``q < m``: ``best[q]`` (squared distance,
    seeded by the caller with the distance to triangle ``seed[q]``, which is not tested again) and ``hit[q]`` are
    lowered in place. The bounds are :func:`.distance.nearest_one`'s, evaluated per lane; lanes ``q >= m`` hold
    ``best = -inf`` and copies of the last node, so the loops over all lanes have a fixed length and vectorise."""
    lanes = pz.shape[0]
    stack, lower, gap_xy = walk
    bmax = 0.0
    for q in range(m):
        bmax = larger(bmax, best[q])
    zmid = 0.5 * (pz[0] + pz[m - 1])
    size_xy = abs(px) + abs(py)  # with |pz|, the scale of the edge bounds' rounding
    # A box is tested against the packet when it is pushed, and its entry keeps that lower bound and the box's
    # x/y gap: an entry that a bound tightened since then rejects is dropped without reading its box again (the
    # walk's time goes mostly into reading boxes), and a box rejected at once is never pushed.
    ex = box_gap(boxes[0, 0, 0], boxes[0, 1, 0], px)
    ey = box_gap(boxes[0, 0, 1], boxes[0, 1, 1], py)
    stack[0] = 0
    lower[0] = 0.0
    gap_xy[0] = ex * ex + ey * ey
    sp = 1
    while sp > 0:
        sp -= 1
        if lower[sp] >= bmax:
            continue
        node = stack[sp]
        exy = gap_xy[sp]
        lz, hz = boxes[node, 0, 2], boxes[node, 1, 2]
        need = False
        for q in range(lanes):
            ez = box_gap(lz, hz, pz[q])
            need |= exy + ez * ez < best[q]
        if not need:
            continue
        if left[node] >= 0:
            a = left[node]
            b = a + 1  # right child (see bvh.py)
            axy, alow, amid = _child_gaps(boxes, a, px, py, pz[0], pz[m - 1], zmid)
            bxy, blow, bmid = _child_gaps(boxes, b, px, py, pz[0], pz[m - 1], zmid)
            # Nearer child (to the packet's middle) popped first, so it tightens the bounds first.
            if amid > bmid:
                a, b = b, a
                axy, bxy = bxy, axy
                alow, blow = blow, alow
            if blow < bmax:
                stack[sp] = b
                lower[sp] = blow
                gap_xy[sp] = bxy
                sp += 1
            if alow < bmax:
                stack[sp] = a
                lower[sp] = alow
                gap_xy[sp] = axy
                sp += 1
            continue
        need = False
        for q in range(lanes):
            need |= leaf_d2(leaf_bounds, node, px, py, pz[q]) < best[q]
        if not need:
            continue
        changed = False
        for t in range(start[node], start[node] + count[node]):
            # Distance to the triangle's plane, per lane (the x/y terms shared), summed in nearest_one's order.
            base = tri_bounds[t, 0] * (px - tri[t, 0, 0]) + tri_bounds[t, 1] * (py - tri[t, 0, 1])
            nz, z0 = tri_bounds[t, 2], tri[t, 0, 2]
            near_plane = False
            for q in range(lanes):
                pd = base + nz * (pz[q] - z0)
                h2[q] = pd * pd
                near_plane |= h2[q] < best[q]
            if not near_plane:
                continue
            # Then the lateral distance within the plane, bounded below two ways: outside the disc about the
            # centroid that holds the triangle, and outside the lines of its edges.
            cx, cy = px - tri_bounds[t, 3], py - tri_bounds[t, 4]
            cxy = cx * cx + cy * cy
            e0 = edges[t, 0, 0] * px + edges[t, 0, 1] * py - edges[t, 0, 3]
            e1 = edges[t, 1, 0] * px + edges[t, 1, 1] * py - edges[t, 1, 3]
            e2 = edges[t, 2, 0] * px + edges[t, 2, 1] * py - edges[t, 2, 3]
            mz0, mz1, mz2 = edges[t, 0, 2], edges[t, 1, 2], edges[t, 2, 2]
            near_edges = False
            for q in range(lanes):
                cz = pz[q] - tri_bounds[t, 5]
                disc = math.sqrt(larger(cxy + cz * cz - h2[q], 0.0)) - tri_bounds[t, 6]
                line = larger(larger(e0 + mz0 * pz[q], e1 + mz1 * pz[q]), e2 + mz2 * pz[q])
                line -= 1e-9 * (size_xy + abs(pz[q]))
                lat = larger(larger(disc, line), 0.0)
                h2[q] += lat * lat
                near_edges |= (h2[q] < best[q]) & (t != seed[q])
            if not near_edges:
                continue
            for q in range(m):
                if h2[q] < best[q] and t != seed[q]:
                    d2 = closest_on_triangle(tri, t, px, py, pz[q])[0]
                    if d2 < best[q]:
                        best[q] = d2
                        hit[q] = t
                        changed = True
        if changed:
            bmax = 0.0
            for q in range(m):
                bmax = larger(bmax, best[q])


@njit(cache=True, nogil=True, inline="always")
def _child_gaps(boxes, node, px, py, z_first, z_last, zmid):
    """For a box and a packet of nodes at ``(px, py, z)``, ``z_first <= z <= z_last``: the squared x/y gap, the
    lower bound on the squared distance from any node of the packet (the packet's z range against the box), and
    the squared distance from the packet's middle ``zmid`` (which child to visit first)."""
    ex = box_gap(boxes[node, 0, 0], boxes[node, 1, 0], px)
    ey = box_gap(boxes[node, 0, 1], boxes[node, 1, 1], py)
    exy = ex * ex + ey * ey
    lz, hz = boxes[node, 0, 2], boxes[node, 1, 2]
    ez = larger(larger(lz - z_last, 0.0), z_first - hz)
    em = box_gap(lz, hz, zmid)
    return exy, exy + ez * ez, exy + em * em


@njit(cache=True, nogil=True, parallel=True)
def _winding_at(tri, left, right, start, count, ex, beta, origin, spacing, flat_idx, ny, nz):
    n = flat_idx.shape[0]
    out = np.empty(n)
    depth = tree_depth(left, right)
    for m in prange(n):
        stack = np.empty(depth + 2, dtype=np.int64)
        f = flat_idx[m]
        i = f // (ny * nz)
        j = (f // nz) % ny
        k = f % nz
        px = origin[0] + i * spacing[0]
        py = origin[1] + j * spacing[1]
        pz = origin[2] + k * spacing[2]
        out[m] = winding_fast_one(tri, left, start, count, ex, beta * beta, px, py, pz, stack)
    return out
