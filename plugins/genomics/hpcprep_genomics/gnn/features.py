"""Node features and edge weights of a de Bruijn graph, from the graph alone (NumPy only).

A node is a (k-1)-mer code (base-4, A=0 C=1 G=2 T=3, first base most significant), so its
features depend on the (k-1)-mer and nothing else. ``N_FEATURES = 21`` columns, float32:

====== ==================================================================================
0-3    base composition: fraction of A, C, G, T in the (k-1)-mer
4      GC fraction (C + G)
5-20   dinucleotide composition: count of each pair xy (index 4*x + y, AA AC AG AT CA ...)
       among the (k-1)-mer's k-2 adjacent pairs, divided by k-2 (all zero when k-1 = 1)
====== ==================================================================================

An edge (one distinct k-mer) weighs ``log1p(count)``. The model treats edges as undirected:
:func:`undirected_edges` lists each edge in both directions (a self-loop such as AAA→AAA
therefore appears twice), which is what both backends aggregate over.

A batch of graphs is stacked PyG-style into one disjoint graph by :func:`pack_graphs`
(:class:`PackedGraphs`: concatenated arrays and ``ptr`` offsets, built and checked with whole-batch
NumPy operations rather than per-graph ones).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_FEATURES = 21
#: Guards the division of the weighted mean (as the backends' ``EPS``).
EPS = 1e-12
#: Up to this (k-1), features come from a table of all 4**(k-1) codes (at most 64 Ki rows).
TABLE_MAX_NODE_K = 8


def _compute(codes: np.ndarray, node_k: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.uint64)
    n = codes.shape[0]
    shifts = (2 * np.arange(node_k - 1, -1, -1)).astype(np.uint64)
    bases = ((codes[:, None] >> shifts[None, :]) & np.uint64(3)).astype(np.int64)  # (n, node_k)
    out = np.zeros((n, N_FEATURES), dtype=np.float64)
    rows = np.repeat(np.arange(n), node_k)
    np.add.at(out, (rows, bases.ravel()), 1.0)
    out[:, :4] /= node_k
    out[:, 4] = out[:, 1] + out[:, 2]
    if node_k >= 2:
        pairs = 4 * bases[:, :-1] + bases[:, 1:]
        np.add.at(out, (np.repeat(np.arange(n), node_k - 1), 5 + pairs.ravel()), 1.0)
        out[:, 5:] /= node_k - 1
    return out.astype(np.float32)


@lru_cache(maxsize=8)
def _table(node_k: int) -> np.ndarray:
    table = _compute(np.arange(4**node_k, dtype=np.uint64), node_k)
    table.setflags(write=False)
    return table


def feature_table(node_k: int) -> np.ndarray | None:
    """Features of every ``node_k``-mer code, row = code (read-only), or None above ``TABLE_MAX_NODE_K``."""
    return _table(node_k) if 1 <= node_k <= TABLE_MAX_NODE_K else None


def check_codes(codes: np.ndarray, node_k: int) -> None:
    """Raise ``ValueError`` for a code that is not a ``node_k``-mer (graphs built with a larger k)."""
    if codes.size and int(codes.max()) >= 4**node_k:
        raise ValueError(
            f"node code {int(codes.max())} is not a {node_k}-mer: the graph was built with k > {node_k + 1}; "
            f"use the k the graphs were built with"
        )


def node_features(node_codes, node_k: int) -> np.ndarray:
    """Features of (k-1)-mer codes: float32 ``(n, N_FEATURES)``, see the module doc.

    Raises ``ValueError`` for a code that is not a ``node_k``-mer (graphs built with a larger k).
    """
    if not 1 <= node_k <= 31:
        raise ValueError(f"node_k={node_k}: (k-1)-mers of length 1..31")
    codes = np.asarray(node_codes, dtype=np.uint64).ravel()
    check_codes(codes, node_k)
    if node_k <= TABLE_MAX_NODE_K:
        return _table(node_k)[codes.astype(np.int64)]
    return _compute(codes, node_k)


#: Counts below this get their weight from a table (the same float32 values ``log1p`` gives).
_LOG1P_TABLE_SIZE = 4096
_LOG1P_TABLE = np.log1p(np.arange(_LOG1P_TABLE_SIZE, dtype=np.float64)).astype(np.float32)


def edge_weights(edge_counts) -> np.ndarray:
    """``log1p(count)`` as float32."""
    counts = np.asarray(edge_counts)
    if counts.dtype.kind in "ui" and counts.size and 0 <= counts.min() and counts.max() < _LOG1P_TABLE_SIZE:
        return _LOG1P_TABLE[counts]
    return np.log1p(np.asarray(counts, dtype=np.float64)).astype(np.float32)


def undirected_edges(src, dst, weights) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each edge in both directions: ``(src + dst, dst + src, weights + weights)``."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    return np.concatenate([src, dst]), np.concatenate([dst, src]), np.concatenate([weights, weights])


def check_graph(graph, index: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``graph`` as ``(node_codes uint64, src int64, dst int64, edge_counts)`` after basic checks."""
    if len(graph) != 4:
        raise ValueError(f"a graph is (node_codes, src, dst, edge_counts), got {len(graph)} items")
    codes = np.asarray(graph[0], dtype=np.uint64).ravel()
    src = np.asarray(graph[1], dtype=np.int64).ravel()
    dst = np.asarray(graph[2], dtype=np.int64).ravel()
    counts = np.asarray(graph[3]).ravel()
    where = "" if index is None else f"graph {index}: "
    if not (src.size == dst.size == counts.size):
        raise ValueError(f"{where}src, dst and edge_counts differ in length ({src.size}, {dst.size}, {counts.size})")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= codes.size):
        raise ValueError(f"{where}an edge points outside the {codes.size} nodes")
    return codes, src, dst, counts


@dataclass(frozen=True)
class PackedGraphs:
    """Graphs stacked into one disjoint graph, PyG-style: graph ``i`` owns nodes
    ``node_ptr[i]:node_ptr[i+1]`` and edges ``edge_ptr[i]:edge_ptr[i+1]``.

    ``node_codes`` uint64; ``src``/``dst`` int64 indices into the stacked nodes (each k-mer edge
    once, as in the input); ``weights`` float32 ``log1p(count)``; ``node_ptr``/``edge_ptr`` int64.
    """

    node_codes: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    weights: np.ndarray
    node_ptr: np.ndarray
    edge_ptr: np.ndarray

    @property
    def n_graphs(self) -> int:
        return self.node_ptr.size - 1

    @property
    def n_nodes(self) -> int:
        return int(self.node_ptr[-1])

    def node_counts(self) -> np.ndarray:
        return np.diff(self.node_ptr)

    def edge_counts(self) -> np.ndarray:
        return np.diff(self.edge_ptr)

    def node_graph(self) -> np.ndarray:
        """The graph of every node (PyG's ``batch`` vector), int64."""
        return np.repeat(np.arange(self.n_graphs, dtype=np.int64), self.node_counts())

    def slice(self, start: int, stop: int) -> PackedGraphs:
        """Graphs ``start:stop`` as their own batch (node indices rebased to 0)."""
        n0, n1 = int(self.node_ptr[start]), int(self.node_ptr[stop])
        e0, e1 = int(self.edge_ptr[start]), int(self.edge_ptr[stop])
        return PackedGraphs(
            self.node_codes[n0:n1],
            self.src[e0:e1] - n0,
            self.dst[e0:e1] - n0,
            self.weights[e0:e1],
            self.node_ptr[start : stop + 1] - n0,
            self.edge_ptr[start : stop + 1] - e0,
        )

    def undirected(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every edge in both directions, grouped by graph: ``(src, dst, weights)``, graph ``i`` owning
        entries ``2 * edge_ptr[i]:2 * edge_ptr[i+1]`` (its edges forward, then backward)."""
        src, dst = np.concatenate([self.src, self.dst]), np.concatenate([self.dst, self.src])
        w = np.concatenate([self.weights, self.weights])
        m = self.src.size
        if self.n_graphs > 1 and m:
            # Graph i's forward edges e0:e1 go to 2*e0 : e0+e1 and its backward ones to e0+e1 : 2*e1.
            graph = np.repeat(np.arange(self.n_graphs, dtype=np.int64), self.edge_counts())
            local = np.arange(m, dtype=np.int64) - self.edge_ptr[graph]
            pos = np.empty(2 * m, dtype=np.int64)
            pos[:m] = self.edge_ptr[graph] * 2 + local
            pos[m:] = self.edge_ptr[graph] + self.edge_ptr[graph + 1] + local
            order = np.empty(2 * m, dtype=np.int64)
            order[pos] = np.arange(2 * m, dtype=np.int64)
            src, dst, w = src[order], dst[order], w[order]
        return src, dst, w

    def mean_adjacency(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR ``(row_ptr, col, value)`` of the (n_nodes, n_nodes) matrix ``M[i, j] = w_ij / Σ_j w_ij``
        over the undirected edges (row i = target, so ``M @ h`` is the weighted mean of i's
        neighbours; a node without edges has an empty row). ``value`` float32, indices int64."""
        n, m = self.n_nodes, self.src.size
        rows = np.concatenate([self.dst, self.src])
        cols = np.concatenate([self.src, self.dst])
        w = np.concatenate([self.weights, self.weights])
        counts = np.bincount(rows, minlength=n)
        # An edge of count 0 weighs 0: a row summing to 0 aggregates to 0, as ``num / max(sum, EPS)`` does.
        inv_sum = 1.0 / np.maximum(np.bincount(rows, weights=w, minlength=n), EPS)
        # Stable sort by row; 16-bit keys (a pass of < 65536 nodes) take NumPy's O(n) radix sort.
        order = np.argsort(rows.astype(np.uint16) if n <= 1 << 16 else rows, kind="stable")
        row_ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts, out=row_ptr[1:])
        value = (w[order] * np.repeat(inv_sum, counts)).astype(np.float32) if m else np.zeros(0, np.float32)
        return row_ptr, cols[order], value


def _as_1d(a, dtype) -> np.ndarray:
    a = np.asarray(a, dtype=dtype)
    return a if a.ndim == 1 else a.ravel()


def _concat_1d(cols) -> tuple[list[np.ndarray], np.ndarray] | None:
    """Each column's pieces concatenated, with the piece sizes ``(4, n)``; None unless every piece is 1-D."""
    n = len(cols[0])
    try:
        sizes = np.stack([np.fromiter(map(len, col), np.int64, count=n) for col in cols])
        joined = [
            np.concatenate(col, dtype=dtype, casting="unsafe") if n else np.zeros(0, dtype or np.uint32)
            for col, dtype in zip(cols, _DTYPES, strict=True)
        ]
    except (TypeError, ValueError):  # a scalar, a 0-d array, arrays of different ndim
        return None
    if any(a.ndim != 1 or a.size != s for a, s in zip(joined, sizes.sum(axis=1), strict=True)):
        return None
    return joined, sizes


#: Codes, src, dst as in :func:`check_graph`; counts keep their type.
_DTYPES = (np.uint64, np.int64, np.int64, None)


def pack_graphs(graphs, first_index: int = 0) -> PackedGraphs:
    """Check ``(node_codes, src, dst, edge_counts)`` graphs and stack them (see :class:`PackedGraphs`).

    The checks are those of :func:`check_graph`, made on the whole batch at once; an error names
    the graph (counting from ``first_index``).
    """
    graphs = graphs if isinstance(graphs, list | tuple) else list(graphs)
    for i, g in enumerate(graphs):
        if len(g) != 4:
            raise ValueError(
                f"graph {first_index + i}: a graph is (node_codes, src, dst, edge_counts), got {len(g)} items"
            )
    cols = tuple(map(list, zip(*graphs, strict=True))) if graphs else ([], [], [], [])
    n = len(cols[0])
    joined = _concat_1d(cols)
    if joined is None:  # something other than 1-D arrays or flat lists: flatten each graph's arrays first
        cols = tuple([_as_1d(a, None) for a in col] for col in cols)
        joined = _concat_1d(cols)
        if joined is None:
            raise ValueError("a graph's node_codes, src, dst and edge_counts must be numeric arrays")
    (codes, src, dst, counts), sizes = joined
    n_nodes = sizes[0]
    sizes = sizes[1:]
    bad = np.flatnonzero((sizes[0] != sizes[1]) | (sizes[0] != sizes[2]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"graph {first_index + i}: src, dst and edge_counts differ in length "
            f"({sizes[0, i]}, {sizes[1, i]}, {sizes[2, i]})"
        )
    node_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_nodes, out=node_ptr[1:])
    edge_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(sizes[0], out=edge_ptr[1:])

    if src.size:
        # Negative indices become huge as uint64, so one comparison per array finds every bad edge.
        limit = np.repeat(n_nodes, sizes[0]).view(np.uint64)
        outside = (src.view(np.uint64) >= limit) | (dst.view(np.uint64) >= limit)
        if outside.any():
            i = int(np.searchsorted(edge_ptr, np.argmax(outside), side="right")) - 1
            raise ValueError(f"graph {first_index + i}: an edge points outside the {n_nodes[i]} nodes")
        offset = np.repeat(node_ptr[:-1], sizes[0])
        src += offset
        dst += offset
    return PackedGraphs(codes, src, dst, edge_weights(counts), node_ptr, edge_ptr)
