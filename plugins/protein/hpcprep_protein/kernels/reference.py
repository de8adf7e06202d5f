"""Pure NumPy/Python references for the geometry kernels (tests only; O(L^2) memory).

They use the same distance formula as the kernels (float64 ``dx*dx + dy*dy + dz*dz``, then ``sqrt``), so edge sets
must be identical, not merely close. Dihedrals use a different formula (arccos of the angle between the two plane
normals, with the sign from the triple product) to be an independent check.
"""

from __future__ import annotations

import math

import numpy as np


def _d2_matrix(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    dx = x[:, None, 0] - x[None, :, 0]
    dy = x[:, None, 1] - x[None, :, 1]
    dz = x[:, None, 2] - x[None, :, 2]
    return dx * dx + dy * dy + dz * dz


def contact_edges_ref(coords, cutoff: float, min_seq_sep: int = 1):
    x = np.asarray(coords, dtype=np.float64)
    d = np.sqrt(_d2_matrix(x))
    idx = np.arange(len(x))
    ok = ~np.isnan(x).any(axis=1)
    mask = (d <= cutoff) & ((idx[None, :] - idx[:, None]) >= max(min_seq_sep, 1)) & ok[:, None] & ok[None, :]
    src, dst = np.nonzero(mask)  # row-major: sorted by (src, dst)
    return src.astype(np.int32), dst.astype(np.int32), d[src, dst].astype(np.float32)


def knn_edges_ref(coords, k: int):
    x = np.asarray(coords, dtype=np.float64)
    d2 = _d2_matrix(x)
    ok = ~np.isnan(x).any(axis=1)
    src, dst, dist = [], [], []
    for i in np.nonzero(ok)[0]:
        cand = np.array([j for j in range(len(x)) if j != i and ok[j]], dtype=np.int64)
        if len(cand) == 0:
            continue
        order = np.lexsort((cand, d2[i, cand]))[:k]  # by distance, then index
        src += [i] * len(order)
        dst += list(cand[order])
        dist += list(np.sqrt(d2[i, cand[order]]))
    return np.array(src, np.int32), np.array(dst, np.int32), np.array(dist, np.float64).astype(np.float32)


def distance_map_ref(coords) -> np.ndarray:
    return np.sqrt(_d2_matrix(coords)).astype(np.float32)


def dihedral_ref(p0, p1, p2, p3) -> float:
    """Degrees, IUPAC sign, from arccos of the plane normals' angle."""
    p0, p1, p2, p3 = (np.asarray(p, dtype=np.float64) for p in (p0, p1, p2, p3))
    b0, b1, b2 = p1 - p0, p2 - p1, p3 - p2
    n1 = np.cross(b0, b1)
    n2 = np.cross(b1, b2)
    cosang = float(np.dot(n1, n2) / (np.linalg.norm(n1) * np.linalg.norm(n2)))
    ang = math.degrees(math.acos(min(1.0, max(-1.0, cosang))))
    return -ang if float(np.dot(np.cross(n1, n2), b1)) < 0 else ang


def backbone_dihedrals_ref(n, ca, c, breaks):
    L = len(n)
    phi, psi, omega = (np.full(L, np.nan) for _ in range(3))
    for i in range(L):
        if i > 0 and not breaks[i]:
            phi[i] = dihedral_ref(c[i - 1], n[i], ca[i], c[i])
        if i + 1 < L and not breaks[i + 1]:
            psi[i] = dihedral_ref(n[i], ca[i], c[i], n[i + 1])
            omega[i] = dihedral_ref(ca[i], c[i], n[i + 1], ca[i + 1])
    return phi, psi, omega


Q8_TO_Q3_REF = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def q8_to_q3_ref(ss8: str) -> str:
    return "".join(Q8_TO_Q3_REF.get(ch, "C") for ch in ss8)
