"""Pure NumPy/Python references for the mesh kernels (tests only; slow, small inputs).

They are written differently from the kernels on purpose, so agreement means something:

- ``sample_surface_ref``: the same counter-based recipe as ``sampling.sample_surface`` (the output is defined
  by it), vectorised in NumPy with ``np.searchsorted`` in place of the guide-table search.
- ``winding_numbers_ref``: generalised winding number, sum of signed solid angles (van Oosterom & Strackee).
- ``ray_crossings_ref`` / ``voxelize_ref``: Moller-Trumbore ray-triangle intersection along +x for every ray
  and every triangle, then occupancy / inside length per cell in plain Python loops (no tie-breaking, so use
  it where rays do not pass through edges or vertices).
- ``mesh_health_ref``: dictionaries of edges and faces, and a breadth-first search for components.
"""

from __future__ import annotations

import collections

import numpy as np


def _mix_np(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sample_surface_ref(vertices, faces, n, seed, start=0):
    from .sampling import face_areas_normals, stream_key

    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    areas, normals = face_areas_normals(v, f)
    cum = np.cumsum(areas)
    key = stream_key(seed)
    counters = (np.arange(start, start + n, dtype=np.uint64) * np.uint64(3))[:, None] + np.arange(3, dtype=np.uint64)
    with np.errstate(over="ignore"):
        bits = _mix_np(key + counters * np.uint64(0x9E3779B97F4A7C15))
    u = (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53
    face = np.searchsorted(cum, u[:, 0] * cum[-1], side="right")
    face[face >= len(f)] = np.flatnonzero(areas > 0)[-1]
    r = np.sqrt(u[:, 1])
    w = np.stack([1.0 - r, r * (1.0 - u[:, 2]), r * u[:, 2]], axis=1)
    tri = v[f[face]]  # (n, 3 corners, 3 coords)
    points = w[:, 0, None] * tri[:, 0] + w[:, 1, None] * tri[:, 1] + w[:, 2, None] * tri[:, 2]
    return points, face, normals[face]


def winding_numbers_ref(vertices, faces, points, chunk=256):
    """Generalised winding number of each point: (1 / 4 pi) * sum of the signed solid angles of the faces."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    p = np.asarray(points, dtype=np.float64)
    out = np.empty(len(p))
    for s in range(0, len(p), chunk):
        q = p[s : s + chunk, None, :]
        a, b, c = v[f[:, 0]] - q, v[f[:, 1]] - q, v[f[:, 2]] - q
        la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
        det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        den = (
            la * lb * lc
            + np.einsum("pfi,pfi->pf", a, b) * lc
            + np.einsum("pfi,pfi->pf", b, c) * la
            + np.einsum("pfi,pfi->pf", c, a) * lb
        )
        out[s : s + chunk] = 2.0 * np.arctan2(det, den).sum(1) / (4.0 * np.pi)
    return out


def ray_crossings_ref(vertices, faces, y, z):
    """Sorted x of the crossings of the line (y, z) = const with the triangles (Moller-Trumbore)."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    origin = np.array([0.0, y, z])
    d = np.array([1.0, 0.0, 0.0])
    e1, e2 = b - a, c - a
    pv = np.cross(d, e2)
    det = (e1 * pv).sum(1)
    ok = det != 0
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    tv = origin - a
    u = (tv * pv).sum(1) * inv
    qv = np.cross(tv, e1)
    w = (qv @ d) * inv
    t = (qv * e2).sum(1) * inv
    hit = ok & (u >= 0) & (w >= 0) & (u + w <= 1)
    return np.sort(t[hit])


def voxelize_ref(vertices, faces, resolution, bounds, fraction=False, subsamples=4):
    """Plain-loop occupancy (centre parity) or volume fraction, same grid and ray layout as ``voxelize``."""
    nx, ny, nz = (resolution,) * 3 if np.ndim(resolution) == 0 else resolution
    lo, hi = (np.asarray(b, dtype=np.float64) for b in bounds)
    h = (hi - lo) / np.array([nx, ny, nz])
    s = subsamples if fraction else 1
    grid = np.zeros((nx, ny, nz))
    for j in range(ny):
        for k in range(nz):
            for a in range(s):
                for b in range(s):
                    y = lo[1] + (j + (a + 0.5) / s) * h[1]
                    z = lo[2] + (k + (b + 0.5) / s) * h[2]
                    xs = ray_crossings_ref(vertices, faces, y, z)
                    for i in range(nx):
                        x0, x1 = lo[0] + i * h[0], lo[0] + (i + 1) * h[0]
                        if not fraction:
                            grid[i, j, k] = np.count_nonzero(xs < 0.5 * (x0 + x1)) % 2
                            continue
                        inside = 0.0
                        bounds_x = list(xs) + ([np.inf] if len(xs) % 2 else [])
                        for q in range(0, len(bounds_x), 2):
                            inside += max(0.0, min(x1, bounds_x[q + 1]) - max(x0, bounds_x[q]))
                        grid[i, j, k] += inside / h[0] / (s * s)
    return grid, lo, h


def mesh_health_ref(vertices, faces):
    """The topological counts of ``health.mesh_health`` from Python dictionaries (no areas or volumes)."""
    f = [tuple(int(x) for x in face) for face in np.asarray(faces)]
    proper = [t for t in f if len(set(t)) == 3]
    seen_oriented = set()
    duplicates = 0
    orientations = collections.defaultdict(set)
    for a, b, c in proper:
        m = min(range(3), key=lambda i: (a, b, c)[i])
        rot = ((a, b, c)[m], (a, b, c)[(m + 1) % 3], (a, b, c)[(m + 2) % 3])
        if rot in seen_oriented:
            duplicates += 1
        seen_oriented.add(rot)
        orientations[frozenset(rot)].add(rot)
    uses = collections.defaultdict(list)
    for a, b, c in proper:
        for p, q in ((a, b), (b, c), (c, a)):
            uses[frozenset((p, q))].append((p, q))
    boundary = sum(1 for u in uses.values() if len(u) == 1)
    nonmanifold = sum(1 for u in uses.values() if len(u) > 2)
    inconsistent = sum(1 for u in uses.values() if len(u) == 2 and u[0] == u[1])
    neighbours = collections.defaultdict(set)
    for t in proper:
        for x in t:
            neighbours[x].update(t)
    components = 0
    visited = set()
    for start in neighbours:
        if start in visited:
            continue
        components += 1
        queue = collections.deque([start])
        visited.add(start)
        while queue:
            x = queue.popleft()
            for y in neighbours[x] - visited:
                visited.add(y)
                queue.append(y)
    return {
        "n_faces": len(f),
        "duplicate_faces": duplicates,
        "opposite_pairs": sum(1 for o in orientations.values() if len(o) == 2),
        "boundary_edges": boundary,
        "non_manifold_edges": nonmanifold,
        "inconsistent_edges": inconsistent,
        "components": components,
        "watertight": bool(proper) and boundary == 0 and nonmanifold == 0,
    }
