"""Caps that close an open mesh, so that its winding number can be found like a closed mesh's.

The winding number is a sum over triangles, so for any set of extra triangles ``C``:
``w_mesh(q) = w_(mesh + C)(q) - w_C(q)``. Choose ``C`` so that ``mesh + C`` has no boundary: then its winding
number is an integer off its surface, found exactly at low accuracy and rounded (``winding.snapped``), and only
``w_C``, a much smaller mesh, needs the requested accuracy.

The boundary is what is left of the mesh's directed edges after opposite ones cancel (after welding vertices with
equal coordinates, as in :mod:`.closed`): edge ``a -> b`` used ``n`` more times than ``b -> a``. Each connected
piece of it (a hole's rim, a sheet's border) is a closed chain of edges, and the fan of triangles ``(b, a, c)``
from its edges to one apex ``c`` cancels it: the fan's own edges ``a -> c`` and ``c -> b`` cancel among themselves
around the chain. The apex is the mean of the piece's vertices, so the caps of small holes are small.

Caps pay where the boundary is a small part of the mesh (a hull with holes: 1% of its edges); a triangle soup or a
ragged sheet would need caps as large as itself, so above ``MAX_BOUNDARY_SHARE`` there are none.
"""

from __future__ import annotations

import numpy as np
from hpcprep.unionfind import find, union
from numba import njit

from .closed import _weld_ids, net_edges

#: Caps only for a boundary of at most this share of the mesh's edges (see the module docstring).
MAX_BOUNDARY_SHARE = 0.05


@njit(cache=True, nogil=True)
def _pieces(src: np.ndarray, dst: np.ndarray, nv: int) -> np.ndarray:
    """The connected piece of each boundary edge (union-find over its vertices): its smallest vertex."""
    parent = np.arange(nv)
    for e in range(len(src)):
        union(parent, src[e], dst[e])
    out = np.empty(len(src), dtype=np.int64)
    for e in range(len(src)):
        out[e] = find(parent, src[e])
    return out


def _welds_shut(v: np.ndarray, src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether the boundary edges ``src -> dst`` cancel once vertices with equal coordinates are one. Welding
    maps each edge's count to the welded pair's, so the welded mesh's boundary is that of the edges given
    (after the weld of their vertices only): the mesh's other edges are balanced and stay so."""
    used = np.unique(np.concatenate([src, dst]))
    welded, n = _weld_ids(np.ascontiguousarray(v[used]))
    a, b = welded[np.searchsorted(used, src)], welded[np.searchsorted(used, dst)]
    keep = a != b
    a, b = a[keep], b[keep]
    _, which = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
    return not np.any(np.bincount(which, weights=np.where(a < b, 1, -1)))


def boundary_caps(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(apexes, cap_faces)``: one apex per piece of the boundary, and the cap triangles as indices into
    ``vertices`` followed by ``apexes``; empty arrays for a closed mesh, None when the boundary is more than
    ``MAX_BOUNDARY_SHARE`` of the edges."""
    v = np.ascontiguousarray(vertices, dtype=np.float64).reshape(-1, 3)
    f = np.ascontiguousarray(faces, dtype=np.int64).reshape(-1, 3)
    empty = np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    if not len(f):
        return empty
    limit = int(MAX_BOUNDARY_SHARE * 3 * len(f))
    # As indexed first: caps of that boundary close the welded mesh too, and most meshes need no weld (the
    # weld is most of the cost); an STL's repeated vertices do.
    ids, nv = np.arange(len(v)), len(v)
    src, dst = net_edges(ids, nv, f, limit + 1)
    if len(src) > limit:
        ids, nv = _weld_ids(v)
        src, dst = net_edges(ids, nv, f, limit + 1)
        if len(src) > limit:
            return None
    elif len(src) and _welds_shut(v, src, dst):
        return empty  # closed once equal vertices are one (as is_closed decides)
    if not len(src):
        return empty
    rep = np.empty(nv, dtype=np.int64)
    rep[ids] = np.arange(len(v))  # one original vertex for each welded one
    piece = _pieces(src, dst, nv)
    keys, which = np.unique(piece, return_inverse=True)
    # apex: the mean of each piece's edge starts (every vertex of a closed chain starts as many edges as it ends)
    sums = np.zeros((len(keys), 3))
    np.add.at(sums, which, v[rep[src]])
    apexes = sums / np.bincount(which, minlength=len(keys))[:, None]
    caps = np.stack([rep[dst], rep[src], len(v) + which], axis=1)
    return apexes, caps
