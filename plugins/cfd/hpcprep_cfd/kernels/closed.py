"""Whether a triangle mesh is closed: every edge, after welding vertices with equal coordinates, used as often in
one direction as in the other. On such a mesh the winding number is an integer off the surface, which lets the
distance and grid kernels share one inside test among points that must lie on the same side.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _runs_by(values, idx, lo, hi):
    """Sort ``idx[lo:hi]`` by ``values[idx]`` in place (an argsort of the slice)."""
    keys = np.empty(hi - lo)
    for i in range(lo, hi):
        keys[i - lo] = values[idx[i]]
    order = np.argsort(keys)
    part = idx[lo:hi].copy()
    for i in range(hi - lo):
        idx[lo + i] = part[order[i]]


@njit(cache=True, nogil=True)
def _run_end(values, idx, start, stop):
    """End of the run of equal ``values[idx[k]]`` that begins at ``start`` (sorted ``idx[start:stop]``)."""
    end = start + 1
    while end < stop and values[idx[end]] == values[idx[start]]:
        end += 1
    return end


@njit(cache=True, nogil=True)
def _weld_ids(v):
    """One id per distinct coordinate triple (``==`` on each coordinate, as a lexsort of the rows would group
    them): sort by x, and inside each run of equal x by y, then z; runs of one vertex (most) take the fast path."""
    n = v.shape[0]
    ids = np.empty(n, dtype=np.int64)
    idx = np.argsort(v[:, 0])
    xs = v[:, 0].copy()
    ys = v[:, 1].copy()
    zs = v[:, 2].copy()
    next_id = 0
    i = 0
    while i < n:
        j = _run_end(xs, idx, i, n)
        if j - i == 1:
            ids[idx[i]] = next_id
            next_id += 1
        elif j - i <= 32:
            # Short run (a soup repeats each vertex a few times): insertion sort by (y, z), then group.
            for m in range(i + 1, j):
                q = idx[m]
                k = m - 1
                while k >= i and (ys[idx[k]] > ys[q] or (ys[idx[k]] == ys[q] and zs[idx[k]] > zs[q])):
                    idx[k + 1] = idx[k]
                    k -= 1
                idx[k + 1] = q
            for m in range(i, j):
                if m > i and (ys[idx[m]] != ys[idx[m - 1]] or zs[idx[m]] != zs[idx[m - 1]]):
                    next_id += 1
                ids[idx[m]] = next_id
            next_id += 1
        else:
            _runs_by(ys, idx, i, j)
            a = i
            while a < j:
                b = _run_end(ys, idx, a, j)
                _runs_by(zs, idx, a, b)
                c = a
                while c < b:
                    d = _run_end(zs, idx, c, b)
                    for m in range(c, d):
                        ids[idx[m]] = next_id
                    next_id += 1
                    c = d
                a = b
        i = j
    return ids, next_id


@njit(cache=True, nogil=True)
def net_edges(ids, nv, f, stop_at):
    """The directed edges that opposite ones do not cancel (the boundary), ``(src, dst)``: edge ``a -> b``
    ``n`` times when it is used ``n`` more times than ``b -> a``, with vertex ids ``ids[f]``; at most ``stop_at``
    of them (a caller that only needs to know whether there are more than some number stops there)."""
    # Edges grouped by their lower end (a CSR list per vertex): the upper end and +1 / -1 for the direction; a
    # vertex has a handful, so sorting each list is cheaper than one sort of all of them.
    deg = np.zeros(nv + 1, dtype=np.int64)
    for t in range(f.shape[0]):
        for k in range(3):
            a, b = ids[f[t, k]], ids[f[t, (k + 1) % 3]]
            if a != b:
                deg[min(a, b) + 1] += 1
    for u in range(nv):
        deg[u + 1] += deg[u]
    fill = deg[:-1].copy()
    other = np.empty(deg[nv], dtype=np.int64)
    sense = np.empty(deg[nv], dtype=np.int64)
    for t in range(f.shape[0]):
        for k in range(3):
            a, b = ids[f[t, k]], ids[f[t, (k + 1) % 3]]
            if a != b:
                lo = min(a, b)
                other[fill[lo]] = max(a, b)
                sense[fill[lo]] = 1 if a < b else -1
                fill[lo] += 1
    src = np.empty(max(1, min(stop_at, deg[nv])), dtype=np.int64)
    dst = np.empty_like(src)
    out = 0
    for u in range(nv):
        s, e = deg[u], deg[u + 1]
        if e - s > 32:
            order = np.argsort(other[s:e])
            other[s:e] = other[s:e][order]
            sense[s:e] = sense[s:e][order]
        else:
            # insertion sort in place beats an argsort call per vertex
            for m in range(s + 1, e):
                o, d = other[m], sense[m]
                k = m - 1
                while k >= s and other[k] > o:
                    other[k + 1] = other[k]
                    sense[k + 1] = sense[k]
                    k -= 1
                other[k + 1] = o
                sense[k + 1] = d
        total = 0
        for m in range(s, e):
            total += sense[m]
            if m == e - 1 or other[m + 1] != other[m]:
                for _ in range(abs(total)):
                    if out == len(src):
                        return src, dst
                    src[out], dst[out] = (u, other[m]) if total > 0 else (other[m], u)
                    out += 1
                total = 0
    return src[:out], dst[:out]


@njit(cache=True, nogil=True)
def _closed(v, f):
    # Balanced as indexed is balanced after welding (merging vertices adds up balanced edge counts), so the weld,
    # half the cost, is only needed when the indexed mesh is not (a soup, or an STL's repeated vertices).
    if len(net_edges(np.arange(v.shape[0]), v.shape[0], f, 1)[0]) == 0:
        return True
    ids, nv = _weld_ids(v)
    return len(net_edges(ids, nv, f, 1)[0]) == 0


def is_closed(vertices, faces) -> bool:
    """True when every edge, after welding vertices with equal coordinates, is used as often in one direction as
    in the other: the mesh's boundary chain is empty, so its winding number is an integer off the surface."""
    v = np.ascontiguousarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)  # (0, 3) for no faces: one compiled signature
    return bool(_closed(v, f)) if len(v) else True
