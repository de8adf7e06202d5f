"""Mesh health report: topology and orientation counts of a triangle mesh, as plain numbers.

``mesh_health(vertices, faces)`` answers "can this mesh be voxelised / given a signed distance / trusted for its
volume?" Definitions (all counts are exact integers; no tolerance except for zero area):

- ``degenerate_faces``: faces with a repeated vertex index, or zero area (twice the area ``|e1 x e2|`` at most
  ``ZERO_AREA_RTOL`` times the squared longest edge, so collinear vertices count even when rounding leaves a
  tiny non-zero cross product).
- Faces with a repeated index are left out of every count below (they have no proper edges); zero-area faces
  with three distinct indices stay in (their edges are real edges of the connectivity).
- ``duplicate_faces``: faces repeating an earlier face with the same orientation (same cyclic vertex order).
- ``opposite_pairs``: vertex sets present in both orientations (each such set counted once; duplicates of
  either orientation do not add pairs).
- ``boundary_edges`` / ``non_manifold_edges``: undirected edges used by exactly one / more than two faces.
- ``inconsistent_edges``: edges used by exactly two faces that traverse it in the same direction.
- ``components``: connected components of faces sharing a vertex (trimesh's ``body_count`` counts components of
  the vertex graph, which is the same number when every vertex is referenced).
- ``watertight``: no boundary and no non-manifold edges (and at least one face).
- ``signed_volume``: divergence-theorem volume ``sum(v0 . (v1 x v2)) / 6`` about the bounding-box centre (so the
  rounding error does not grow with the distance from the origin); only meaningful when closed.
- ``inside_out``: watertight and ``signed_volume < 0``.
- ``area``: total surface area; ``bounds``: ``(min, max)`` of the referenced vertices (all vertices if none).
- ``unreferenced_vertices``: vertices used by no face.
"""

from __future__ import annotations

import numpy as np
from hpcprep.unionfind import find, link
from numba import njit

#: A face is zero-area when |e1 x e2| <= ZERO_AREA_RTOL * (longest edge)^2, i.e. its height is below ~1e-12 of
#: its longest edge: far below any meshing tolerance, well above the rounding of collinear points.
ZERO_AREA_RTOL = 1e-12


def check_mesh(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    """``vertices`` as C-contiguous float64 (V, 3) and ``faces`` as int64 (F, 3), or a clear ValueError."""
    v = np.ascontiguousarray(vertices, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got {v.shape}")
    f = np.asarray(faces)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {f.shape}")
    if f.size and not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"faces must be integer indices, got dtype {f.dtype}")
    f = np.ascontiguousarray(f, dtype=np.int64)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"face indices span {f.min()}..{f.max()} but the mesh has {len(v)} vertices")
    finite = np.isfinite(v).all(axis=1)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"vertex {bad} is not finite: {v[bad].tolist()}")
    return v, f


@njit(cache=True, nogil=True)
def _face_geometry(v, f, center, rtol):
    """One pass over the faces: twice the area, unit normal (0 when degenerate), degenerate flag, and six times
    the signed volume of the tetrahedron (center, v0, v1, v2)."""
    nf = f.shape[0]
    twice = np.zeros(nf)
    normals = np.zeros((nf, 3))
    degenerate = np.zeros(nf, dtype=np.bool_)
    vol6 = np.zeros(nf)
    for t in range(nf):  # serial: memory-bound, ~1 ms per 100k faces; not worth a parallel compile
        ia = f[t, 0]
        ib = f[t, 1]
        ic = f[t, 2]
        ax, ay, az = v[ia, 0] - center[0], v[ia, 1] - center[1], v[ia, 2] - center[2]
        bx, by, bz = v[ib, 0] - center[0], v[ib, 1] - center[1], v[ib, 2] - center[2]
        cx, cy, cz = v[ic, 0] - center[0], v[ic, 1] - center[1], v[ic, 2] - center[2]
        vol6[t] = ax * (by * cz - bz * cy) + ay * (bz * cx - bx * cz) + az * (bx * cy - by * cx)
        # Edges from the raw coordinates, so the degenerate test does not depend on ``center``.
        e1x, e1y, e1z = v[ib, 0] - v[ia, 0], v[ib, 1] - v[ia, 1], v[ib, 2] - v[ia, 2]
        e2x, e2y, e2z = v[ic, 0] - v[ia, 0], v[ic, 1] - v[ia, 1], v[ic, 2] - v[ia, 2]
        e3x, e3y, e3z = v[ic, 0] - v[ib, 0], v[ic, 1] - v[ib, 1], v[ic, 2] - v[ib, 2]
        c0 = e1y * e2z - e1z * e2y
        c1 = e1z * e2x - e1x * e2z
        c2 = e1x * e2y - e1y * e2x
        tw = np.sqrt(c0 * c0 + c1 * c1 + c2 * c2)
        twice[t] = tw
        longest2 = max(
            max(e1x * e1x + e1y * e1y + e1z * e1z, e2x * e2x + e2y * e2y + e2z * e2z), e3x * e3x + e3y * e3y + e3z * e3z
        )
        if ia == ib or ib == ic or ia == ic or tw <= rtol * longest2:
            degenerate[t] = True
            continue
        normals[t, 0] = c0 / tw
        normals[t, 1] = c1 / tw
        normals[t, 2] = c2 / tw
    return twice, normals, degenerate, vol6


def face_geometry(v: np.ndarray, f: np.ndarray, center=None):
    """``(twice_area, unit_normals, degenerate, vol6)`` per face; see ``_face_geometry``. Coordinates are taken
    relative to ``center`` (default the origin), which only matters for ``vol6``."""
    c = np.zeros(3) if center is None else np.asarray(center, dtype=np.float64)
    return _face_geometry(v, f, c, ZERO_AREA_RTOL)


def degenerate_mask(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Faces with a repeated index or (numerically) zero area."""
    return face_geometry(v, f)[2]


def face_keys(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face: the sorted vertex triple (the vertex set) and the rotation starting at the smallest index
    (the oriented face); two faces are the same oriented face iff their rotations are equal."""
    s = np.sort(f, axis=1)
    start = np.argmin(f, axis=1)
    idx = (start[:, None] + np.arange(3)[None, :]) % 3
    rot = np.take_along_axis(f, idx, axis=1)
    return s, rot


def _row_groups(keys: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray]:
    """Stable lexicographic order of (n, 3) rows of integers in [0, n_values) and the group id of each row (in
    sorted order). Rows are packed into one int64 when they fit (a single stable sort instead of lexsort)."""
    if n_values <= 1 << 21:
        packed = (keys[:, 0] << 42) | (keys[:, 1] << 21) | keys[:, 2]
        order = np.argsort(packed, kind="stable")
        sp = packed[order]
        new = np.ones(len(sp), dtype=bool)
        new[1:] = sp[1:] != sp[:-1]
    else:
        order = np.lexsort(keys.T[::-1])
        sk = keys[order]
        new = np.ones(len(sk), dtype=bool)
        new[1:] = (sk[1:] != sk[:-1]).any(axis=1)
    return order, np.cumsum(new) - 1


def face_duplicates(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For faces with distinct indices: ``dup`` (repeats an earlier face with the same orientation),
    ``opposite`` (its vertex set also occurs with the other orientation), and the number of such sets."""
    n = len(f)
    dup = np.zeros(n, dtype=bool)
    opposite = np.zeros(n, dtype=bool)
    if n == 0:
        return dup, opposite, 0
    s, rot = face_keys(f)
    n_values = int(f.max()) + 1
    order, oriented_group = _row_groups(rot, n_values)
    first = np.ones(n, dtype=bool)
    first[1:] = oriented_group[1:] != oriented_group[:-1]
    dup[order[~first]] = True  # the sort is stable, so the earliest face of each group is the one kept
    # Same vertex set, different rotation = opposite orientation (a triangle has only two cyclic orders).
    order_s, set_group = _row_groups(s, n_values)
    rot_s = rot[order_s]
    n_sets = set_group[-1] + 1
    # A set has both orientations iff its rows do not all share the first row's rotation.
    set_first = np.searchsorted(set_group, np.arange(n_sets))
    differs = (rot_s != rot_s[set_first[set_group]]).any(axis=1)
    both = np.zeros(n_sets, dtype=bool)
    np.logical_or.at(both, set_group, differs)
    opposite[order_s] = both[set_group]
    return dup, opposite, int(both.sum())


@njit(cache=True, nogil=True)
def _edge_counts(a_sorted, b_sorted, forward):
    """Scan undirected edges sorted by (a, b): counts of boundary, non-manifold and inconsistent edges, and per
    sorted half-edge the size of its edge group (1, 2, >2)."""
    n = len(a_sorted)
    boundary = 0
    nonmanifold = 0
    inconsistent = 0
    group_size = np.zeros(n, dtype=np.int64)
    i = 0
    while i < n:
        j = i + 1
        while j < n and a_sorted[j] == a_sorted[i] and b_sorted[j] == b_sorted[i]:
            j += 1
        size = j - i
        if size == 1:
            boundary += 1
        elif size == 2:
            if forward[i] == forward[i + 1]:
                inconsistent += 1
        else:
            nonmanifold += 1
        for k in range(i, j):
            group_size[k] = size
        i = j
    return boundary, nonmanifold, inconsistent, group_size


def sorted_half_edges(f: np.ndarray):
    """Half-edges of faces ``f`` (3 per face: v0->v1, v1->v2, v2->v0) sorted by undirected edge.

    Returns (order, a, b, forward, face): ``order`` indexes the 3F half-edges (half-edge h belongs to face
    h // 3), ``a < b`` the undirected edge, ``forward`` whether the face traverses it a -> b.
    """
    src = f.reshape(-1)
    dst = f[:, [1, 2, 0]].reshape(-1)
    a = np.minimum(src, dst)
    b = np.maximum(src, dst)
    n_values = int(b.max()) + 1 if len(b) else 1
    if n_values <= 3_000_000_000:  # a * n + b fits in int64: one stable sort instead of lexsort
        order = np.argsort(a * n_values + b, kind="stable")
    else:
        order = np.lexsort((b, a))
    return order, a[order], b[order], (src < dst)[order], order // 3


@njit(cache=True, nogil=True)
def vertex_components(n_vertices, faces):
    """Number of connected components of the faces through shared vertices (union-find over face corners)."""
    parent = np.arange(n_vertices)
    used = np.zeros(n_vertices, dtype=np.bool_)
    for i in range(faces.shape[0]):
        r0 = find(parent, faces[i, 0])
        used[faces[i, 0]] = True
        for c in range(1, 3):
            used[faces[i, c]] = True
            r0 = link(parent, r0, find(parent, faces[i, c]))
    count = 0
    for x in range(n_vertices):
        if used[x] and find(parent, x) == x:
            count += 1
    return count


def signed_volume(v: np.ndarray, f: np.ndarray) -> float:
    """Divergence-theorem volume about the bounding-box centre of the referenced vertices."""
    if len(f) == 0:
        return 0.0
    used = np.zeros(len(v), dtype=bool)
    used[f.reshape(-1)] = True
    pts = v[used]
    return float(face_geometry(v, f, 0.5 * (pts.min(0) + pts.max(0)))[3].sum() / 6.0)


def mesh_health(vertices, faces) -> dict:
    """Topology and orientation report of a triangle mesh (see the module docstring for each key)."""
    v, f = check_mesh(vertices, faces)
    referenced = np.zeros(len(v), dtype=bool)
    referenced[f.reshape(-1)] = True
    pts = v[referenced] if referenced.any() else v
    if len(pts):
        bounds = (pts.min(0), pts.max(0))
        center = 0.5 * (bounds[0] + bounds[1])
    else:
        bounds = (np.full(3, np.nan), np.full(3, np.nan))
        center = np.zeros(3)
    twice, _, degenerate, vol6 = face_geometry(v, f, center)
    proper = ~((f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2]))
    fp = f[proper]
    dup, _, n_opposite = face_duplicates(fp)
    _, a, b, fwd, _ = sorted_half_edges(fp)
    boundary, nonmanifold, inconsistent, _ = _edge_counts(a, b, fwd)
    watertight = bool(len(fp) > 0 and boundary == 0 and nonmanifold == 0)
    volume = float(vol6.sum() / 6.0)
    return {
        "n_vertices": int(len(v)),
        "n_faces": int(len(f)),
        "degenerate_faces": int(degenerate.sum()),
        "duplicate_faces": int(dup.sum()),
        "opposite_pairs": int(n_opposite),
        "boundary_edges": int(boundary),
        "non_manifold_edges": int(nonmanifold),
        "inconsistent_edges": int(inconsistent),
        "components": int(vertex_components(len(v), fp)) if len(fp) else 0,
        "watertight": watertight,
        "signed_volume": volume,
        "inside_out": bool(watertight and volume < 0),
        "area": float(0.5 * twice.sum()),
        "bounds": bounds,
        "unreferenced_vertices": int((~referenced).sum()),
    }
