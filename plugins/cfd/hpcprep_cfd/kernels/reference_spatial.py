"""Pure NumPy references for the spatial kernels (tests only; brute force, O(P * F) time).

They share no code with the Numba kernels and use different formulations where one exists:

- point-triangle distance: project onto the triangle's plane and keep the projection if its barycentric
  coordinates are all non-negative, else take the nearest of the three edges (clamped segment projection);
  the kernels walk Voronoi regions instead;
- winding number: the same Van Oosterom-Strackee formula (there is no simpler exact one), summed over all
  triangles with array operations;
- sdf grid: the nodes ``origin + (i, j, k) * spacing`` queried one by one with the brute-force signed distance.
"""

from __future__ import annotations

import numpy as np


def winding_number_ref(vertices, faces, points, chunk: int = 256) -> np.ndarray:
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces, dtype=np.int64)]  # (F, 3, 3)
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    out = np.empty(len(pts))
    for s in range(0, len(pts), chunk):
        q = pts[s : s + chunk]
        a = tri[None, :, 0, :] - q[:, None, :]
        b = tri[None, :, 1, :] - q[:, None, :]
        c = tri[None, :, 2, :] - q[:, None, :]
        la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
        det = np.einsum("pfi,pfi->pf", a, np.cross(b, c))
        den = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out[s : s + chunk] = (2.0 * np.arctan2(det, den)).sum(axis=1) / (4.0 * np.pi)
    return out


def _segment_d2(p, a, b):
    """Squared distance from points ``p`` (..., 3) to segments ``a``-``b`` (..., 3), and the closest points."""
    e = b - a
    ee = (e * e).sum(-1)
    t = np.where(ee > 0, ((p - a) * e).sum(-1) / np.where(ee > 0, ee, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    q = a + t[..., None] * e
    return ((p - q) ** 2).sum(-1), q


def point_triangle_ref(p, tri):
    """Squared distances and closest points from points ``p`` (P, 3) to triangles ``tri`` (F, 3, 3): (P, F)."""
    p = p[:, None, :]
    a, b, c = tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
    n = np.cross(b - a, c - a)
    nn = (n * n).sum(-1)
    ok = nn > 0
    t = ((p - a) * n).sum(-1) / np.where(ok, nn, 1.0)
    proj = p - t[..., None] * n
    # Barycentric coordinates from the sub-triangle area vectors projected on the normal.
    u = (np.cross(c - b, proj - b) * n).sum(-1)
    v = (np.cross(a - c, proj - c) * n).sum(-1)
    w = (np.cross(b - a, proj - a) * n).sum(-1)
    inside = ok & (u >= 0) & (v >= 0) & (w >= 0)
    best, q = _segment_d2(p, a, b)
    for s, e in ((b, c), (c, a)):
        d2, qe = _segment_d2(p, s, e)
        closer = d2 < best
        best = np.where(closer, d2, best)
        q = np.where(closer[..., None], qe, q)
    d2_face = ((p - proj) ** 2).sum(-1)
    best = np.where(inside, d2_face, best)
    q = np.where(inside[..., None], proj, q)
    return best, q


def unsigned_distance_ref(vertices, faces, points, chunk: int = 128):
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[np.asarray(faces, dtype=np.int64)]
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    dist = np.empty(len(pts))
    closest = np.empty((len(pts), 3))
    fid = np.empty(len(pts), dtype=np.int64)
    for s in range(0, len(pts), chunk):
        d2, q = point_triangle_ref(pts[s : s + chunk], tri)
        j = np.argmin(d2, axis=1)
        r = np.arange(len(j))
        dist[s : s + chunk] = np.sqrt(d2[r, j])
        closest[s : s + chunk] = q[r, j]
        fid[s : s + chunk] = j
    return dist, closest, fid


def signed_volume_ref(vertices, faces) -> float:
    tri = np.asarray(vertices, dtype=np.float64)[np.asarray(faces, dtype=np.int64)]
    return float(np.einsum("fi,fi->f", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0)


def signed_distance_ref(vertices, faces, points):
    dist, closest, fid = unsigned_distance_ref(vertices, faces, points)
    w = winding_number_ref(vertices, faces, points)
    if signed_volume_ref(vertices, faces) < 0:
        w = -w
    return np.where(w > 0.5, -dist, dist), closest, fid


def grid_nodes(shape, origin, spacing) -> np.ndarray:
    """Node positions ``origin + (i, j, k) * spacing`` in C order of ``[i, j, k]``, shape (nx * ny * nz, 3)."""
    idx = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1).reshape(-1, 3)
    return np.asarray(origin, dtype=np.float64) + idx * np.asarray(spacing, dtype=np.float64)


def sdf_grid_ref(vertices, faces, shape, origin, spacing) -> np.ndarray:
    d, _, _ = signed_distance_ref(vertices, faces, grid_nodes(shape, origin, spacing))
    return d.reshape(shape)


def far_field_ref(tri, centre, query, order: int = 3) -> float:
    """4 pi times the far-field winding number (Taylor terms up to ``order``, 2 or 3) of the triangles ``tri``
    (K, 3, 3) expanded about ``centre``, from the moment tensors and the explicit derivatives of the dipole kernel
    ``g(y) = y / |y|^3`` at ``y = centre - query`` (the kernel folds these into polynomial coefficients instead).
    Third moments come from their closed form, not the kernel's quadrature rule."""
    tri = np.asarray(tri, dtype=np.float64)
    x = tri - np.asarray(centre, dtype=np.float64)  # vertices relative to the centre
    area = 0.5 * np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    mean = x.mean(axis=1)
    # Mean of x_j x_k over a triangle: (sum_a x_a x_a^T + s s^T) / 12, s the vertex sum.
    s = x.sum(axis=1)
    second = (np.einsum("taj,tak->tjk", x, x) + np.einsum("tj,tk->tjk", s, s)) / 12.0
    n = area.sum(axis=0)
    m = np.einsum("ti,tj->ij", area, mean)
    t = np.einsum("ti,tjk->ijk", area, second)
    y = np.asarray(centre, dtype=np.float64) - np.asarray(query, dtype=np.float64)
    r = np.linalg.norm(y)
    eye = np.eye(3)
    g = y / r**3
    dg = eye / r**3 - 3.0 * np.outer(y, y) / r**5
    ddg = (
        15.0 * np.einsum("i,j,k->ijk", y, y, y) / r**7
        - 3.0
        * (np.einsum("ij,k->ijk", eye, y) + np.einsum("ik,j->ijk", eye, y) + np.einsum("jk,i->ijk", eye, y))
        / r**5
    )
    value = n @ g + np.sum(m * dg) + 0.5 * np.sum(t * ddg)
    if order < 3:
        return float(value)
    # Mean of x_j x_k x_l over a triangle, in closed form: (S_j S_k S_l + sum_a (v_aj v_ak S_l + v_aj v_al S_k
    # + v_ak v_al S_j) + 2 sum_a v_aj v_ak v_al) / 60 with S the vertex sum (the kernel uses a quadrature rule).
    third = np.einsum("tj,tk,tl->tjkl", s, s, s) + 2.0 * np.einsum("taj,tak,tal->tjkl", x, x, x)
    third += np.einsum("taj,tak,tl->tjkl", x, x, s) + np.einsum("taj,tal,tk->tjkl", x, x, s)
    third += np.einsum("tak,tal,tj->tjkl", x, x, s)
    u = np.einsum("ti,tjkl->ijkl", area, third / 60.0)
    # d_jkl g_i = -3 (d_ij d_kl + d_ik d_jl + d_il d_jk) / r^5 + 15 (d_ij y_k y_l + 5 more) / r^7 - 105 y_i y_j y_k y_l / r^9
    d3g = -105.0 * np.einsum("i,j,k,l->ijkl", y, y, y, y) / r**9
    for pair in ("ij,kl", "ik,jl", "il,jk"):
        d3g -= 3.0 * np.einsum(pair + "->ijkl", eye, eye) / r**5
    for delta, a, b in (
        ("ij", "k", "l"),
        ("ik", "j", "l"),
        ("il", "j", "k"),
        ("jk", "i", "l"),
        ("jl", "i", "k"),
        ("kl", "i", "j"),
    ):
        d3g += 15.0 * np.einsum(f"{delta},{a},{b}->ijkl", eye, y, y) / r**7
    return float(value + np.sum(u * d3g) / 6.0)
