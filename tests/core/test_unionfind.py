"""hpcprep.unionfind against components found by breadth-first search, from Python and inside a kernel."""

import numpy as np
from hpcprep.unionfind import find, link, union
from numba import njit


def bfs_components(n, edges):
    adj = [[] for _ in range(n)]
    for a, b in edges:
        adj[a].append(b)
        adj[b].append(a)
    label = [-1] * n
    for s in range(n):
        if label[s] < 0:
            label[s], todo = s, [s]
            while todo:
                for b in adj[todo.pop()]:
                    if label[b] < 0:
                        label[b] = s  # s is the smallest member: nodes are visited in order
                        todo.append(b)
    return label


@njit
def roots_in_a_kernel(n, src, dst):
    parent = np.arange(n)
    for e in range(len(src)):
        union(parent, src[e], dst[e])
    return np.array([find(parent, a) for a in range(n)])


def test_roots_are_the_smallest_member_whatever_the_order():
    rng = np.random.default_rng(0)
    n = 400
    edges = rng.integers(0, n, size=(300, 2))
    want = bfs_components(n, edges.tolist())
    for order in (edges, edges[::-1], edges[rng.permutation(len(edges))]):
        parent = np.arange(n)
        joined = sum(bool(union(parent, int(a), int(b))) for a, b in order)
        assert [int(find(parent, a)) for a in range(n)] == want
        assert joined == n - len(set(want))  # True once per merge of two sets
        assert roots_in_a_kernel(n, order[:, 0].copy(), order[:, 1].copy()).tolist() == want


@njit
def roots_grown_by_link(n, src, dst):
    # The grid kernel's pattern: each node joins earlier nodes, holding its own set's root at hand.
    parent = np.arange(n)
    for a in range(n):
        r = a
        for e in range(len(src)):
            if src[e] == a and dst[e] < a:
                r = link(parent, r, find(parent, dst[e]))
    return np.array([find(parent, a) for a in range(n)])


def test_link_joins_roots_under_the_smaller_one():
    rng = np.random.default_rng(1)
    n = 300
    edges = rng.integers(0, n, size=(250, 2))
    both = np.vstack([edges, edges[:, ::-1]])  # each edge seen from its larger end
    assert roots_grown_by_link(n, both[:, 0].copy(), both[:, 1].copy()).tolist() == bfs_components(n, edges.tolist())
    parent = np.arange(5)
    assert link(parent, 3, 1) == 1 and parent[3] == 1
    assert link(parent, 0, 4) == 0 and parent[4] == 0
    assert link(parent, 2, 2) == 2 and parent[2] == 2
