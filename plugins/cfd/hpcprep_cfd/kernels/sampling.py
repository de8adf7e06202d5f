"""Area-weighted uniform samples on a triangle surface, reproducible however the work is split.

Sample ``i`` of seed ``s`` depends only on ``(s, i)``: its three uniforms are outputs ``3i``, ``3i + 1`` and
``3i + 2`` of a SplitMix64 stream keyed by the first SplitMix64 output of ``s``
(``stream_key``). SplitMix64 is counter-based (output ``k`` is
``mix(key + k * gamma)``), so any sample can be computed on its own: ``sample_surface(..., n=10, start=10)``
returns samples 10..19, exactly what ``n=20`` returns in its second half, and a parallel loop needs no
shared generator state.

- ``u0`` picks the face by inverse CDF of the cumulative face areas (first face whose running total exceeds
  ``u0 * total``, found through a guide table). Zero-area faces (see ``health.degenerate_mask``) get area 0,
  so they can never be chosen.
- ``u1, u2`` give the point by the square-root trick, uniform on the triangle:
  ``(1 - sqrt(u1)) a + sqrt(u1) (1 - u2) b + sqrt(u1) u2 c``.
"""

from __future__ import annotations

import numpy as np
from hpcprep.hashing import GAMMA, splitmix64
from numba import njit, prange

from .health import check_mesh, face_geometry

_S11 = np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53: the top 53 bits of a 64-bit output give a double in [0, 1)
_MASK64 = (1 << 64) - 1


@njit(cache=True, nogil=True)
def _uniform(key, counter):
    """Output ``counter`` of the SplitMix64 stream ``key``, as a double in [0, 1)."""
    return np.float64(splitmix64(key + counter * GAMMA) >> _S11) * _TO_UNIT


def stream_key(seed: int) -> np.uint64:
    """The SplitMix64 stream key of a seed (any Python int, taken modulo 2**64)."""
    return np.uint64(splitmix64(np.uint64((int(seed) + int(GAMMA)) & _MASK64)))


@njit(cache=True, nogil=True, parallel=True)
def _sample_kernel(v, f, cum, guide, unit_normals, key, start, n, last_face):
    points = np.empty((n, 3))
    normals = np.empty((n, 3))
    face_ids = np.empty(n, dtype=np.int64)
    total = cum[cum.shape[0] - 1]
    nf = cum.shape[0]
    three = np.uint64(3)
    for s in prange(n):
        c = np.uint64(start + s) * three
        u0 = _uniform(key, c)
        u1 = _uniform(key, c + np.uint64(1))
        u2 = _uniform(key, c + np.uint64(2))
        t = u0 * total
        # First face with cum > t (zero-area faces, whose cum equals the previous one, never qualify). The
        # guide table gives a start within a step or two of it; the two short walks make the answer exact
        # whatever the rounding of the bucket bounds.
        lo = guide[min(np.int64(u0 * nf), nf - 1)]
        while lo > 0 and cum[lo - 1] > t:
            lo -= 1
        while lo < nf and cum[lo] <= t:
            lo += 1
        if lo >= nf:  # u0 * total rounded up to total
            lo = last_face
        r = np.sqrt(u1)
        w0 = 1.0 - r
        w1 = r * (1.0 - u2)
        w2 = r * u2
        ia = f[lo, 0]
        ib = f[lo, 1]
        ic = f[lo, 2]
        for d in range(3):
            points[s, d] = w0 * v[ia, d] + w1 * v[ib, d] + w2 * v[ic, d]
            normals[s, d] = unit_normals[lo, d]
        face_ids[s] = lo
    return points, face_ids, normals


def face_areas_normals(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Face areas and unit normals, both 0 for degenerate faces (``health.degenerate_mask``)."""
    twice, normals, degenerate, _ = face_geometry(v, f)
    return np.where(degenerate, 0.0, 0.5 * twice), normals


def sample_surface(vertices, faces, n: int, seed: int, start: int = 0):
    """``n`` area-weighted uniform samples on the surface: samples ``start .. start + n - 1`` of ``seed``.

    Returns ``(points (n, 3) float64, face_ids (n,) int64, normals (n, 3) float64)``; ``normals`` are the unit
    normals of the faces the points lie on (right-hand rule on the face's vertex order). Sample ``i`` depends
    only on ``(seed, i)`` (see the module docstring). Raises ValueError when the surface has zero total area.
    """
    v, f = check_mesh(vertices, faces)
    n = int(n)
    start = int(start)
    if n < 0 or start < 0:
        raise ValueError(f"n and start must be >= 0, got n={n}, start={start}")
    areas, normals = face_areas_normals(v, f)
    cum = np.cumsum(areas)
    if len(f) == 0 or not cum[-1] > 0.0:
        raise ValueError(f"cannot sample a surface with zero total area ({len(f)} faces)")
    last_face = int(np.flatnonzero(areas > 0.0)[-1])
    # Guide table (Chen & Asau): bucket j of [0, 1) starts its search at the first face whose running total
    # exceeds j / F of the total, so the expected search is O(1) instead of a cache-missing binary search.
    guide = np.searchsorted(cum, np.arange(len(f)) * (cum[-1] / len(f)), side="right")
    return _sample_kernel(v, f, cum, guide, normals, stream_key(seed), start, n, last_face)
