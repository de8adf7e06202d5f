"""Mesh repair (weld, clean, orient) and normalisation (centre and scale).

``repair(vertices, faces, weld_tolerance=0.0)`` applies, in this order, and counts each action in ``report``:

1. ``welded_vertices``: vertices merged into another. With tolerance 0, exact duplicates (equal coordinates;
   -0.0 equals 0.0). With tolerance ``t > 0``, every pair closer than or at ``t`` is joined (grid hash of cell
   size ``t``, 27 neighbour cells), transitively: a chain of close vertices becomes one vertex even when its
   ends are further apart than ``t``. A merged vertex takes the coordinates of its lowest-index member, so
   nothing drifts and the result does not depend on visiting order.
2. ``degenerate_faces``: faces with a repeated index (after welding) or zero area (``health.degenerate_mask``).
   A zero-area face with distinct vertices leaves a zero-width gap (boundary edges) where it was; that
   changes neither the area nor the volume.
3. ``duplicate_faces``: faces repeating an earlier face with the same orientation (the first is kept).
4. ``opposite_pairs`` (and ``opposite_faces``): a vertex set present with both orientations is a zero-volume
   double wall (an internal baffle, or a patch glued twice); both faces go, which closes the two surfaces
   it separated into one and leaves a watertight mesh watertight.
5. ``unreferenced_vertices``: vertices no kept face uses are removed (order of the rest kept).
6. ``flipped_faces``: per connected component over manifold edges (edges of exactly two faces), a
   breadth-first search from the component's lowest-index face (whose orientation is kept) flips every face
   that traverses a shared edge in the same direction as its already-oriented neighbour.
   ``orientation_conflicts`` counts manifold edges still inconsistent afterwards (non-orientable surfaces).
7. ``inverted_components``: components with no boundary or non-manifold edge whose signed volume is negative
   are flipped whole (outward normals); ``flipped_faces`` does not include these.

The output is deterministic: kept faces stay in input order, vertices in order of their first (lowest) index.

``normalize(vertices, mode, center, faces=None)`` maps ``x -> (x - center) / scale`` and returns
``(normalized, center, scale)``; undo with ``normalized * scale + center``.
"""

from __future__ import annotations

import numpy as np
from hpcprep.unionfind import find, union
from numba import njit

from .health import _edge_counts, check_mesh, degenerate_mask, face_duplicates, sorted_half_edges


@njit(cache=True, nogil=True)
def _cell_less(cells, i, cx, cy, cz):
    return (
        cells[i, 0] < cx
        or (cells[i, 0] == cx and cells[i, 1] < cy)
        or (cells[i, 0] == cx and cells[i, 1] == cy and cells[i, 2] < cz)
    )


@njit(cache=True, nogil=True)
def _weld_grid(v, order, cells, cell_start, tol2):
    """Union every pair of vertices at distance <= tol (squared: tol2). ``order`` sorts the vertices by grid
    cell, ``cells`` (C, 3) are the distinct cells in that order and ``cell_start`` (C + 1) their runs."""
    n = v.shape[0]
    parent = np.arange(n)
    nc = cells.shape[0]
    for c in range(nc):
        for p in range(cell_start[c], cell_start[c + 1]):
            a = order[p]
            for dx in range(-1, 2):
                for dy in range(-1, 2):
                    for dz in range(-1, 2):
                        cx = cells[c, 0] + dx
                        cy = cells[c, 1] + dy
                        cz = cells[c, 2] + dz
                        lo = 0
                        hi = nc
                        while lo < hi:  # lower bound of (cx, cy, cz) among the sorted cells
                            mid = (lo + hi) >> 1
                            if _cell_less(cells, mid, cx, cy, cz):
                                lo = mid + 1
                            else:
                                hi = mid
                        if lo == nc or cells[lo, 0] != cx or cells[lo, 1] != cy or cells[lo, 2] != cz:
                            continue
                        for q in range(cell_start[lo], cell_start[lo + 1]):
                            b = order[q]
                            if b <= a:  # each pair once
                                continue
                            d0 = v[a, 0] - v[b, 0]
                            d1 = v[a, 1] - v[b, 1]
                            d2 = v[a, 2] - v[b, 2]
                            if d0 * d0 + d1 * d1 + d2 * d2 <= tol2:
                                union(parent, a, b)
    root = np.empty(n, dtype=np.int64)
    for i in range(n):
        root[i] = find(parent, i)
    return root


def weld_roots(v: np.ndarray, tolerance: float) -> np.ndarray:
    """For each vertex, the lowest index of the vertices it is welded to (itself if none)."""
    n = len(v)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if tolerance == 0.0:
        w = v + 0.0  # -0.0 -> 0.0, so equal values sort together
        order = np.lexsort((w[:, 2], w[:, 1], w[:, 0]))
        sw = w[order]
        new = np.ones(n, dtype=bool)
        new[1:] = (sw[1:] != sw[:-1]).any(axis=1)
        group = np.cumsum(new) - 1
        first = np.full(group[-1] + 1, n, dtype=np.int64)
        np.minimum.at(first, group, order)
        root = np.empty(n, dtype=np.int64)
        root[order] = first[group]
        return root
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"weld_tolerance must be a finite number >= 0, got {tolerance}")
    scaled = np.floor(v / tolerance)
    if np.abs(scaled).max() > 2.0**52:
        raise ValueError(f"weld_tolerance {tolerance} is too small for coordinates up to {np.abs(v).max():g}")
    key = scaled.astype(np.int64)
    order = np.lexsort((key[:, 2], key[:, 1], key[:, 0]))
    sk = key[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    starts = np.flatnonzero(new)
    cells = np.ascontiguousarray(sk[starts])
    cell_start = np.append(starts, n).astype(np.int64)
    return _weld_grid(v, order, cells, cell_start, float(tolerance) ** 2)


@njit(cache=True, nogil=True)
def _orient(n_faces, pair_f, pair_g, pair_same):
    """Breadth-first orientation over manifold-edge pairs (f, g, same-direction). Returns per face: flip flag and
    component label (lowest face index of the component)."""
    deg = np.zeros(n_faces + 1, dtype=np.int64)
    for e in range(pair_f.shape[0]):
        deg[pair_f[e] + 1] += 1
        deg[pair_g[e] + 1] += 1
    for i in range(n_faces):
        deg[i + 1] += deg[i]
    nbr = np.empty(deg[n_faces], dtype=np.int64)
    same = np.empty(deg[n_faces], dtype=np.bool_)
    fill = deg[:n_faces].copy()
    for e in range(pair_f.shape[0]):
        a = pair_f[e]
        b = pair_g[e]
        nbr[fill[a]] = b
        same[fill[a]] = pair_same[e]
        fill[a] += 1
        nbr[fill[b]] = a
        same[fill[b]] = pair_same[e]
        fill[b] += 1
    flip = np.zeros(n_faces, dtype=np.bool_)
    comp = np.full(n_faces, -1, dtype=np.int64)
    queue = np.empty(n_faces, dtype=np.int64)
    for s in range(n_faces):
        if comp[s] >= 0:
            continue
        comp[s] = s
        head = 0
        tail = 1
        queue[0] = s
        while head < tail:
            x = queue[head]
            head += 1
            for p in range(deg[x], deg[x + 1]):
                y = nbr[p]
                if comp[y] < 0:
                    comp[y] = s
                    # Same traversal direction means opposite orientation: flip y relative to x.
                    flip[y] = flip[x] != same[p]
                    queue[tail] = y
                    tail += 1
    return flip, comp


def _flip(f: np.ndarray, mask: np.ndarray) -> None:
    f[mask] = f[mask][:, [0, 2, 1]]


def repair(vertices, faces, weld_tolerance: float = 0.0):
    """Weld, drop degenerate / duplicate / double-wall faces, drop unused vertices, orient consistently and
    outward; see the module docstring. Returns ``(vertices (V', 3) float64, faces (F', 3) int64, report)``."""
    v, f = check_mesh(vertices, faces)
    weld_tolerance = float(weld_tolerance)
    report = {}
    root = weld_roots(v, weld_tolerance)
    report["welded_vertices"] = int((root != np.arange(len(v))).sum())
    f = root[f]

    bad = degenerate_mask(v, f) if len(f) else np.zeros(0, dtype=bool)
    report["degenerate_faces"] = int(bad.sum())
    f = f[~bad]

    dup, opposite, n_opposite = face_duplicates(f)
    report["duplicate_faces"] = int(dup.sum())
    report["opposite_pairs"] = int(n_opposite)
    report["opposite_faces"] = int((opposite & ~dup).sum())
    f = f[~(dup | opposite)]

    used = np.zeros(len(v), dtype=bool)
    used[f.reshape(-1)] = True
    report["unreferenced_vertices"] = int((~used).sum() - report["welded_vertices"])
    new_index = np.cumsum(used) - 1
    v = v[used]
    f = np.ascontiguousarray(new_index[f])

    report["flipped_faces"] = 0
    report["orientation_conflicts"] = 0
    report["inverted_components"] = 0
    if len(f) == 0:
        return v, f, report
    order, a, b, fwd, face = sorted_half_edges(f)
    _, _, _, size = _edge_counts(a, b, fwd)
    first = np.flatnonzero(size == 2)[::2]  # manifold edges: two consecutive sorted half-edges
    flip, comp = _orient(len(f), face[first], face[first + 1], fwd[first] == fwd[first + 1])
    report["flipped_faces"] = int(flip.sum())
    _flip(f, flip)

    fwd_after = fwd != flip[face]
    report["orientation_conflicts"] = int((fwd_after[first] == fwd_after[first + 1]).sum())
    # A component is closed when none of its faces has a boundary or non-manifold edge.
    open_face = np.zeros(len(f), dtype=bool)
    open_face[face[size != 2]] = True
    labels, comp_index = np.unique(comp, return_inverse=True)
    is_open = np.zeros(len(labels), dtype=bool)
    np.logical_or.at(is_open, comp_index, open_face)
    # Signed volume per component about its mean corner (any reference point gives the same closed volume;
    # a nearby one keeps the rounding small).
    corners = v[f]
    count = np.bincount(comp_index, minlength=len(labels)) * 3.0
    ref = np.stack([np.bincount(comp_index, corners[:, :, d].sum(1), len(labels)) for d in range(3)], 1)
    ref /= count[:, None]
    c = corners - ref[comp_index][:, None, :]
    vol = np.bincount(comp_index, np.einsum("ij,ij->i", c[:, 0], np.cross(c[:, 1], c[:, 2])), len(labels)) / 6.0
    inverted = ~is_open & (vol < 0)
    report["inverted_components"] = int(inverted.sum())
    _flip(f, inverted[comp_index])
    return v, f, report


def normalize(vertices, mode: str = "unit_sphere", center: str = "bbox", faces=None):
    """Translate and scale: ``normalized = (vertices - center) / scale``.

    ``mode``: ``"unit_sphere"`` (the largest distance of a vertex from the centre becomes 1) or ``"unit_box"``
    (the longest side of the bounding box becomes 1). ``center``: ``"bbox"`` (bounding-box centre) or
    ``"centroid"`` (area-weighted centroid of the surface; needs ``faces``). Returns
    ``(normalized (V, 3) float64, center (3,), scale)``; ``normalized * scale + center`` undoes it.
    """
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise ValueError(f"vertices must have shape (V, 3) with V >= 1, got {v.shape}")
    if center == "bbox":
        c = 0.5 * (v.min(0) + v.max(0))
    elif center == "centroid":
        if faces is None:
            raise ValueError('center="centroid" is the area-weighted surface centroid: pass faces')
        v, f = check_mesh(v, faces)
        tri = v[f]
        area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        if not area.sum() > 0:
            raise ValueError('center="centroid" needs a surface with non-zero area')
        c = (area[:, None] * tri.mean(1)).sum(0) / area.sum()
    else:
        raise ValueError(f'center must be "bbox" or "centroid", got {center!r}')
    if mode == "unit_sphere":
        scale = float(np.sqrt(((v - c) ** 2).sum(1)).max())
    elif mode == "unit_box":
        scale = float((v.max(0) - v.min(0)).max())
    else:
        raise ValueError(f'mode must be "unit_sphere" or "unit_box", got {mode!r}')
    if not scale > 0:
        raise ValueError("all vertices coincide: nothing to scale")
    return (v - c) / scale, c, scale
