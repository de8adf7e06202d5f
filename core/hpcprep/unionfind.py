"""Union-find over ``parent``, an int64 array where ``parent[i] == i`` marks a root (``numpy.arange(n)`` to
start): the one disjoint-set the plugins share (cfd's grid sign components and boundary pieces, protein's
sequence clusters).

``find`` and ``union`` are Numba functions, callable inside kernels and from Python alike. The smaller index
always becomes the root, so a set's root is its smallest member whatever the order of the unions, and labels
derived from roots do not depend on it.
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def find(parent, a):
    """The root of ``a``'s set (path halving on the way, which keeps the trees shallow)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


@njit(cache=True, nogil=True, inline="always")
def union(parent, a, b):
    """Join the sets of ``a`` and ``b``; True when they were apart."""
    ra, rb = find(parent, a), find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb
    return ra != rb
