"""The nodes of a grid within which a closed mesh's sign cannot change (:mod:`.grid`'s second fact).

Two neighbouring nodes ``a`` and ``b`` are linked when ``|d(a)| + |d(b)| > |a - b|``: the balls of radius
``|d(a)|`` about ``a`` and ``|d(b)|`` about ``b`` then cover the segment ``ab`` and hold no surface point, so off
a closed mesh both nodes have the same winding number. :func:`components` splits the nodes into the connected
components of that relation, each with the node where its winding number is best evaluated;
:func:`negate_runs` gives every node of an inside component its negative distance.
"""

from __future__ import annotations

import numpy as np
from hpcprep.unionfind import find, union
from numba import njit

_SAFETY = 1e-9
"""Relative margin on ``|d(a)| + |d(b)| > |a - b|`` so rounding in the distances cannot link two sides."""


@njit(cache=True, nogil=True)
def components(dist, spacing):
    """The components of "segment to the neighbour cannot touch the surface", as runs: ``(run_start, run_comp,
    seeds)``, where run ``r`` is the nodes ``run_start[r]`` to ``run_start[r + 1] - 1`` (flat indices, within one
    row along ``k``), ``run_comp[r]`` its component and ``seeds[c]`` the flat index of component ``c``'s node
    farthest from the surface (the most robust place to evaluate the winding number; the first such node in index
    order).

    Far from the surface a whole row is linked, so the union-find works on runs of linked nodes of a row, not on
    nodes: each row's runs are joined to the runs of the row before it (``j - 1``) and of the plane before it
    (``i - 1``) that they are linked to, a node at a time but with one union per pair of runs that meet, so a
    128-node row linked to the one before costs one union, not 128. Components are numbered in the order of
    their first nodes."""
    nx, ny, nz = dist.shape
    flat = dist.ravel()
    reach_x, reach_y, reach_z = spacing * (1.0 + _SAFETY)
    n_rows = nx * ny
    # Runs: node -> run through each row's first run and the runs' starts.
    row_first = np.empty(n_rows + 1, dtype=np.int64)
    starts = np.empty(flat.size + 1, dtype=np.int64)
    far = np.empty(flat.size, dtype=np.int64)  # per run, its first node farthest from the surface
    n_runs = 0
    for row in range(n_rows):
        row_first[row] = n_runs
        a0 = row * nz
        for k in range(nz):
            a = a0 + k
            if k == 0 or not flat[a] + flat[a - 1] > reach_z:
                starts[n_runs] = a
                far[n_runs] = a
                n_runs += 1
            elif flat[a] > flat[far[n_runs - 1]]:
                far[n_runs - 1] = a
    row_first[n_rows] = n_runs
    starts[n_runs] = flat.size
    parent = np.arange(n_runs)
    for row in range(n_rows):
        i, j = row // ny, row % ny
        if j > 0:
            _join_rows(flat, starts, row_first, parent, row, row - 1, nz, reach_y)
        if i > 0:
            _join_rows(flat, starts, row_first, parent, row, row - ny, nz, reach_x)
    run_comp = np.empty(n_runs, dtype=np.int64)
    seeds = np.empty(n_runs, dtype=np.int64)
    n_comp = 0
    for r in range(n_runs):
        up = find(parent, r)
        if up == r:
            run_comp[r] = n_comp
            seeds[n_comp] = far[r]
            n_comp += 1
        else:
            c = run_comp[up]  # up < r: numbered already
            run_comp[r] = c
            if flat[far[r]] > flat[seeds[c]]:
                seeds[c] = far[r]
    return starts[: n_runs + 1].copy(), run_comp, seeds[:n_comp].copy()


@njit(cache=True, nogil=True, inline="always")
def _join_rows(flat, starts, row_first, parent, row, prev, nz, reach):
    """Union each run of ``row`` with the runs of row ``prev`` it is linked to across the axis whose spacing
    (with the safety margin) is ``reach``; one union per distinct pair of runs met along the row."""
    a0, b0 = row * nz, prev * nz
    r, s = row_first[row], row_first[prev]
    last_r, last_s = -1, -1
    for k in range(nz):
        while starts[r + 1] <= a0 + k:
            r += 1
        while starts[s + 1] <= b0 + k:
            s += 1
        if flat[a0 + k] + flat[b0 + k] > reach and (r != last_r or s != last_s):
            union(parent, r, s)
            last_r, last_s = r, s


@njit(cache=True, nogil=True)
def negate_runs(flat, run_start, run_comp, inside):
    """Negate the positive distances of the runs whose component is inside."""
    for r in range(run_comp.shape[0]):
        if inside[run_comp[r]]:
            for a in range(run_start[r], run_start[r + 1]):
                if flat[a] > 0.0:
                    flat[a] = -flat[a]
