"""Residue geometry kernels: contact edges, k-nearest-neighbour edges, distance maps, backbone dihedrals.

Conventions (all functions):

- Coordinates are ``(L, 3)`` arrays, converted to float64 C-contiguous. A row with any NaN is a missing residue: it
  has no edges and its distance-map row/column is NaN.
- Squared distances are computed as ``dx*dx + dy*dy + dz*dz`` in float64 (left to right, no fused multiply-add,
  no fastmath), distances as ``sqrt`` of that, and returned as float32. The NumPy references in
  :mod:`hpcprep_protein.kernels.reference` use the same formula, so edge sets are bit-identical.
- ``contact_edges`` keeps pairs ``i < j`` with ``j - i >= min_seq_sep`` and ``sqrt(d2) <= cutoff``, sorted by
  ``(src, dst)``. Up to ``BLOCK_SCAN_MAX`` residues it scans blocks of 16 consecutive residues and passes over
  every block whose bounding sphere is out of reach (a chain's neighbours in sequence are neighbours in space, so
  most blocks are); above that, a uniform grid (cell = cutoff, cells hashed and sorted), O(L log L) for a fixed
  density. Both give the same pairs and distances.
- ``knn_edges``: for each valid ``i`` its ``k`` nearest valid others (fewer when fewer exist), ordered by the
  float64 squared distance and then by the lower index (ties broken by index); output sorted by
  ``(src, d2, dst)``, hence also by ``(src, dist, dst)``. Brute force per row, O(L^2 k) worst case.
- ``backbone_dihedrals`` returns phi, psi, omega in degrees (IUPAC sign: right-handed, in (-180, 180]) with
  ``phi[i] = dihedral(C[i-1], N[i], CA[i], C[i])``, ``psi[i] = dihedral(N[i], CA[i], C[i], N[i+1])``,
  ``omega[i] = dihedral(CA[i], C[i], N[i+1], CA[i+1])`` (omega of the peptide bond after residue ``i``).

One module because every kernel here follows the conventions above (missing residues, the squared-distance
formula the references reproduce bit for bit, float32 results), and the pair searches share the validity mask,
the distance and the output buffers; the references they are tested against mirror this module.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

MAX_PEPTIDE_BOND = 2.5
"""C(i)-N(i+1) distance above which mkdssp (and these kernels) see a chain break, in Angstrom."""


def _as_coords(x) -> np.ndarray:
    a = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"coordinates must have shape (L, 3), got {a.shape}")
    return a


@njit(cache=True, nogil=True)
def _valid_rows(x):
    n = x.shape[0]
    ok = np.empty(n, dtype=np.bool_)
    for i in range(n):
        ok[i] = not (math.isnan(x[i, 0]) or math.isnan(x[i, 1]) or math.isnan(x[i, 2]))
    return ok


@njit(cache=True, nogil=True)
def _d2(x, i, j):
    dx = x[i, 0] - x[j, 0]
    dy = x[i, 1] - x[j, 1]
    dz = x[i, 2] - x[j, 2]
    return dx * dx + dy * dy + dz * dz


@njit(cache=True, nogil=True)
def _grid(x, ok, cell):
    """Hash valid points into cubic cells of side ``cell``; returns (order, sorted keys, cell coords, dims)."""
    n = x.shape[0]
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for i in range(n):
        if ok[i]:
            for d in range(3):
                if x[i, d] < lo[d]:
                    lo[d] = x[i, d]
                if x[i, d] > hi[d]:
                    hi[d] = x[i, d]
    dims = np.ones(3, dtype=np.int64)
    for d in range(3):
        if hi[d] >= lo[d]:
            dims[d] = np.int64((hi[d] - lo[d]) / cell) + 1
    cc = np.zeros((n, 3), dtype=np.int64)
    keys = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    for i in range(n):
        if ok[i]:
            for d in range(3):
                c = np.int64((x[i, d] - lo[d]) / cell)
                if c >= dims[d]:
                    c = dims[d] - 1
                cc[i, d] = c
            keys[i] = (cc[i, 0] * dims[1] + cc[i, 1]) * dims[2] + cc[i, 2]
    order = np.argsort(keys, kind="mergesort")
    skeys = keys[order]
    return order, skeys, cc, dims


@njit(cache=True, nogil=True)
def _scan_pairs(x, ok, order, skeys, dense, cc, dims, cutoff, min_sep, strict, fill, src, dst, dist, write):
    n = x.shape[0]
    for i in range(n):
        if not ok[i]:
            continue
        for ax in range(-1, 2):
            cx = cc[i, 0] + ax
            if cx < 0 or cx >= dims[0]:
                continue
            for ay in range(-1, 2):
                cy = cc[i, 1] + ay
                if cy < 0 or cy >= dims[1]:
                    continue
                for az in range(-1, 2):
                    cz = cc[i, 2] + az
                    if cz < 0 or cz >= dims[2]:
                        continue
                    key = (cx * dims[1] + cy) * dims[2] + cz
                    if dense.shape[0] > 0:
                        a = dense[key]
                        b = dense[key + 1]
                    else:
                        a = np.searchsorted(skeys, key, side="left")
                        b = np.searchsorted(skeys, key, side="right")
                    for t in range(a, b):
                        j = order[t]
                        if j <= i or j - i < min_sep:
                            continue
                        d = math.sqrt(_d2(x, i, j))
                        if d < cutoff or (d == cutoff and not strict):
                            k = fill[i]
                            if write:
                                src[k] = i
                                dst[k] = j
                                dist[k] = d
                            fill[i] = k + 1


#: Residues per block of :func:`_pairs_by_blocks`: small enough that a block of a chain is compact, large enough
#: that the pair loop over it vectorises.
BLOCK = 16
#: Up to this many residues :func:`_pairs_within` scans blocks; above it the grid, whose set-up pays off there.
BLOCK_SCAN_MAX = 8192


@njit(cache=True, nogil=True)
def _pairs_within(x, cutoff, min_sep, strict):
    """Pairs i < j, j - i >= min_sep, sqrt(d2) <= cutoff (or < cutoff if strict); sorted by (i, j)."""
    if x.shape[0] <= BLOCK_SCAN_MAX:
        return _pairs_by_blocks(x, cutoff, min_sep, strict)
    return _pairs_by_grid(x, cutoff, min_sep, strict)


@njit(cache=True, nogil=True)
def _pairs_by_blocks(x, cutoff, min_sep, strict):
    """:func:`_pairs_within` over blocks of consecutive residues.

    Consecutive residues of a chain lie close together, so a block of them fits in a small sphere; a residue
    farther than cutoff + radius from a block's centre has no partner in it, and the block is passed over
    without a distance. The rest is a plain loop over the block's residues in index order, so the output comes
    out sorted with no grid to build and no sort.
    """
    n = x.shape[0]
    if n == 0 or not (cutoff > 0.0):
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64)
    xs = np.ascontiguousarray(x[:, 0])
    ys = np.ascontiguousarray(x[:, 1])
    zs = np.ascontiguousarray(x[:, 2])
    centre, reach2 = _block_spheres(xs, ys, zs, cutoff)
    cap = 32 * n + 64
    while True:  # the arrays grow outside the scan: reassigning them inside it stops Numba's loop optimisations
        src, dst, dist, count = _scan_blocks(xs, ys, zs, centre, reach2, cutoff, min_sep, strict, cap)
        if count <= cap:
            return src[:count].copy(), dst[:count].copy(), dist[:count].copy()
        cap = count


@njit(cache=True, nogil=True)
def _block_spheres(xs, ys, zs, cutoff):
    """Per block: centre of its valid residues and (cutoff + radius)^2, with a margin far above rounding;
    -1 for a block without a valid residue (never reached)."""
    n = xs.shape[0]
    nb = (n + BLOCK - 1) // BLOCK
    centre = np.zeros((nb, 3))
    reach2 = np.full(nb, -1.0)
    for b in range(nb):
        lo = b * BLOCK
        hi = min(n, lo + BLOCK)
        k = 0
        sx = sy = sz = 0.0
        for j in range(lo, hi):
            if not (math.isnan(xs[j]) or math.isnan(ys[j]) or math.isnan(zs[j])):
                sx += xs[j]
                sy += ys[j]
                sz += zs[j]
                k += 1
        if k == 0:
            continue
        cx, cy, cz = sx / k, sy / k, sz / k
        r2 = 0.0
        for j in range(lo, hi):
            dx = xs[j] - cx
            dy = ys[j] - cy
            dz = zs[j] - cz
            d2 = dx * dx + dy * dy + dz * dz
            if d2 > r2:  # NaN rows compare False
                r2 = d2
        reach = (cutoff + math.sqrt(r2)) * (1.0 + 1e-9) + 1e-9
        centre[b, 0] = cx
        centre[b, 1] = cy
        centre[b, 2] = cz
        reach2[b] = reach * reach
    return centre, reach2


@njit(cache=True, nogil=True)
def _scan_blocks(xs, ys, zs, centre, reach2, cutoff, min_sep, strict, cap):
    """Pairs into arrays of ``cap``; returns them and the count, which exceeds ``cap`` when they were too small."""
    n = xs.shape[0]
    nb = centre.shape[0]
    src = np.empty(cap, np.int32)
    dst = np.empty(cap, np.int32)
    dist = np.empty(cap, np.float64)
    d2 = np.empty(BLOCK)
    # a prefilter on d2; the decision itself is on sqrt(d2), as the references make it
    lim = cutoff * cutoff * (1.0 + 1e-12)
    count = 0
    for i in range(n):
        j0 = i + min_sep
        if j0 >= n:
            break
        xi = xs[i]
        yi = ys[i]
        zi = zs[i]
        if math.isnan(xi) or math.isnan(yi) or math.isnan(zi):
            continue
        for b in range(j0 // BLOCK, nb):
            dx = xi - centre[b, 0]
            dy = yi - centre[b, 1]
            dz = zi - centre[b, 2]
            if dx * dx + dy * dy + dz * dz > reach2[b]:
                continue
            lo = max(b * BLOCK, j0)
            hi = min(n, b * BLOCK + BLOCK)
            for j in range(lo, hi):
                dx = xi - xs[j]
                dy = yi - ys[j]
                dz = zi - zs[j]
                d2[j - lo] = dx * dx + dy * dy + dz * dz
            for j in range(lo, hi):
                e = d2[j - lo]
                if e <= lim:  # NaN compares False
                    d = math.sqrt(e)
                    if d < cutoff or (d == cutoff and not strict):
                        if count < cap:
                            src[count] = i
                            dst[count] = j
                            dist[count] = d
                        count += 1
    return src, dst, dist, count


@njit(cache=True, nogil=True)
def _pairs_by_grid(x, cutoff, min_sep, strict):
    """:func:`_pairs_within` through a uniform grid (cell = cutoff): O(L) for a fixed density."""
    n = x.shape[0]
    if n == 0 or not (cutoff > 0.0):
        return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float64)
    ok = _valid_rows(x)
    order, skeys, cc, dims = _grid(x, ok, cutoff)
    # dense cell -> start table when the grid is small (a compact chain); else binary search on sorted keys
    ncell = dims[0] * dims[1] * dims[2]
    if ncell <= 8 * n + 64:
        dense = np.searchsorted(skeys, np.arange(ncell + 1, dtype=np.int64), side="left")
    else:
        dense = np.zeros(0, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    src = np.empty(0, dtype=np.int32)
    dst = np.empty(0, dtype=np.int32)
    dist = np.empty(0, dtype=np.float64)
    _scan_pairs(x, ok, order, skeys, dense, cc, dims, cutoff, min_sep, strict, counts, src, dst, dist, False)
    starts = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        starts[i + 1] = starts[i] + counts[i]
    total = starts[n]
    src = np.empty(total, dtype=np.int32)
    dst = np.empty(total, dtype=np.int32)
    dist = np.empty(total, dtype=np.float64)
    fill = starts[:n].copy()
    _scan_pairs(x, ok, order, skeys, dense, cc, dims, cutoff, min_sep, strict, fill, src, dst, dist, True)
    # sort each source's segment by destination
    for i in range(n):
        a = starts[i]
        b = starts[i + 1]
        for u in range(a + 1, b):  # insertion sort: segments are short and distinct
            dj = dst[u]
            dd = dist[u]
            v = u
            while v > a and dst[v - 1] > dj:
                dst[v] = dst[v - 1]
                dist[v] = dist[v - 1]
                v -= 1
            dst[v] = dj
            dist[v] = dd
    return src, dst, dist


def contact_edges(coords, cutoff: float, min_seq_sep: int = 1):
    """Residue pairs ``i < j`` with ``j - i >= min_seq_sep`` and distance ``<= cutoff``.

    Returns ``(src int32, dst int32, dist float32)`` sorted by ``(src, dst)``. NaN rows have no edges.
    """
    x = _as_coords(coords)
    src, dst, dist = _pairs_within(x, float(cutoff), max(int(min_seq_sep), 1), False)
    return src, dst, dist.astype(np.float32)


@njit(cache=True, nogil=True)
def _knn(x, k):
    n = x.shape[0]
    ok = _valid_rows(x)
    nvalid = 0
    for i in range(n):
        if ok[i]:
            nvalid += 1
    kk = min(k, max(nvalid - 1, 0))
    total = 0
    for i in range(n):
        if ok[i]:
            total += kk
    src = np.empty(total, dtype=np.int32)
    dst = np.empty(total, dtype=np.int32)
    dist = np.empty(total, dtype=np.float64)
    if kk == 0:
        return src, dst, dist
    bd = np.empty(kk, dtype=np.float64)
    bj = np.empty(kk, dtype=np.int64)
    pos = 0
    for i in range(n):
        if not ok[i]:
            continue
        m = 0
        for j in range(n):
            if j == i or not ok[j]:
                continue
            d2 = _d2(x, i, j)
            # j increases, so an equal distance never displaces an earlier (lower) index
            if m == kk and not (d2 < bd[kk - 1]):
                continue
            t = m if m < kk else kk - 1
            while t > 0 and bd[t - 1] > d2:
                if t < kk:
                    bd[t] = bd[t - 1]
                    bj[t] = bj[t - 1]
                t -= 1
            bd[t] = d2
            bj[t] = j
            if m < kk:
                m += 1
        for t in range(kk):
            src[pos] = i
            dst[pos] = bj[t]
            dist[pos] = math.sqrt(bd[t])
            pos += 1
    return src, dst, dist


def knn_edges(coords, k: int):
    """For each valid residue its ``k`` nearest valid others (ties broken by lower index).

    Returns ``(src int32, dst int32, dist float32)`` sorted by ``(src, distance, dst)``.
    """
    x = _as_coords(coords)
    if k < 0:
        raise ValueError("k must be >= 0")
    src, dst, dist = _knn(x, int(k))
    return src, dst, dist.astype(np.float32)


@njit(cache=True, nogil=True)
def _distance_map(x):
    n = x.shape[0]
    out = np.empty((n, n), dtype=np.float32)
    for i in range(n):
        out[i, i] = 0.0
        for j in range(i + 1, n):
            d = np.float32(math.sqrt(_d2(x, i, j)))
            out[i, j] = d
            out[j, i] = d
    ok = _valid_rows(x)
    for i in range(n):
        if not ok[i]:
            out[i, :] = np.nan
            out[:, i] = np.nan
    return out


def distance_map(coords) -> np.ndarray:
    """``(L, L)`` float32 Euclidean distance matrix (NaN rows/columns for missing residues)."""
    return _distance_map(_as_coords(coords))


@njit(cache=True, nogil=True)
def _chain_breaks(n, c, max_bond):
    m = n.shape[0]
    brk = np.zeros(m, dtype=np.bool_)
    if m > 0:
        brk[0] = True
    for i in range(1, m):
        dx = c[i - 1, 0] - n[i, 0]
        dy = c[i - 1, 1] - n[i, 1]
        dz = c[i - 1, 2] - n[i, 2]
        d = math.sqrt(dx * dx + dy * dy + dz * dz)
        brk[i] = not (d <= max_bond)
    return brk


def chain_breaks(n, c, max_bond: float = MAX_PEPTIDE_BOND) -> np.ndarray:
    """Bool array ``b`` of length L: ``b[i]`` is True when residue ``i`` starts a new segment.

    ``b[0]`` is True; ``b[i]`` (i > 0) is True when the C(i-1)-N(i) distance exceeds ``max_bond`` (mkdssp's rule,
    2.5 Angstrom) or is NaN.
    """
    return _chain_breaks(_as_coords(n), _as_coords(c), float(max_bond))


def _breaks_arg(breaks, n, c) -> np.ndarray:
    if breaks is None:
        return chain_breaks(n, c)
    b = np.ascontiguousarray(np.asarray(breaks, dtype=np.bool_)).copy()
    if b.shape != (len(n),):
        raise ValueError(f"breaks must have shape ({len(n)},), got {b.shape}")
    if len(b):
        b[0] = True
    return b


@njit(cache=True, nogil=True)
def _dihedral(p0, p1, p2, p3):
    b0x = p0[0] - p1[0]
    b0y = p0[1] - p1[1]
    b0z = p0[2] - p1[2]
    b1x = p2[0] - p1[0]
    b1y = p2[1] - p1[1]
    b1z = p2[2] - p1[2]
    b2x = p3[0] - p2[0]
    b2y = p3[1] - p2[1]
    b2z = p3[2] - p2[2]
    nb1 = math.sqrt(b1x * b1x + b1y * b1y + b1z * b1z)
    if nb1 == 0.0:
        return np.nan
    b1x /= nb1
    b1y /= nb1
    b1z /= nb1
    d0 = b0x * b1x + b0y * b1y + b0z * b1z
    vx = b0x - d0 * b1x
    vy = b0y - d0 * b1y
    vz = b0z - d0 * b1z
    d2 = b2x * b1x + b2y * b1y + b2z * b1z
    wx = b2x - d2 * b1x
    wy = b2y - d2 * b1y
    wz = b2z - d2 * b1z
    xx = vx * wx + vy * wy + vz * wz
    # (b1 x v) . w
    cx = b1y * vz - b1z * vy
    cy = b1z * vx - b1x * vz
    cz = b1x * vy - b1y * vx
    yy = cx * wx + cy * wy + cz * wz
    return math.degrees(math.atan2(yy, xx))


@njit(cache=True, nogil=True)
def _dihedrals(n, ca, c, brk):
    m = n.shape[0]
    phi = np.full(m, np.nan)
    psi = np.full(m, np.nan)
    omega = np.full(m, np.nan)
    for i in range(m):
        if i > 0 and not brk[i]:
            phi[i] = _dihedral(c[i - 1], n[i], ca[i], c[i])
        if i + 1 < m and not brk[i + 1]:
            psi[i] = _dihedral(n[i], ca[i], c[i], n[i + 1])
            omega[i] = _dihedral(ca[i], c[i], n[i + 1], ca[i + 1])
    return phi, psi, omega


def backbone_dihedrals(n, ca, c, breaks=None):
    """Backbone ``(phi, psi, omega)`` in degrees (float64, IUPAC sign convention), NaN where undefined.

    ``breaks`` (bool, length L, True where residue ``i`` starts a new segment) defaults to
    :func:`chain_breaks` (C(i-1)-N(i) > 2.5 Angstrom); pass ``np.zeros(L, bool)`` to ignore breaks.
    Undefined: phi of each segment's first residue, psi and omega of each segment's last residue.
    """
    n = _as_coords(n)
    ca = _as_coords(ca)
    c = _as_coords(c)
    if not (len(n) == len(ca) == len(c)):
        raise ValueError("n, ca and c must have the same length")
    return _dihedrals(n, ca, c, _breaks_arg(breaks, n, c))
