"""Union-find over ``parent``, an int64 array where ``parent[i] == i`` marks a root (``numpy.arange(n)`` to
start): the one disjoint-set the plugins share (cfd's grid sign components, boundary pieces, welded vertices
and mesh components, protein's sequence clusters).

``find``, ``union`` and ``link`` are Numba functions, callable inside kernels and from Python alike. The smaller
index always becomes the root, so a set's root is its smallest member whatever the order of the unions, and labels
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
def link(parent, ra, rb):
    """Join the sets whose roots are ``ra`` and ``rb``; the root of the joined set. For loops that keep the root
    of the set they are growing at hand, and so skip ``union``'s two finds."""
    if rb < ra:
        parent[ra] = rb
        return rb
    if ra < rb:
        parent[rb] = ra
    return ra


@njit(cache=True, nogil=True, inline="always")
def union(parent, a, b):
    """Join the sets of ``a`` and ``b``; True when they were apart."""
    ra, rb = find(parent, a), find(parent, b)
    link(parent, ra, rb)
    return ra != rb
