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
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_FEATURES = 21
FEATURE_NAMES = (
    ["frac_A", "frac_C", "frac_G", "frac_T", "frac_GC"]
    + [f"di_{a}{b}" for a in "ACGT" for b in "ACGT"]
)
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


def node_features(node_codes, node_k: int) -> np.ndarray:
    """Features of (k-1)-mer codes: float32 ``(n, N_FEATURES)``, see the module doc.

    Raises ``ValueError`` for a code that is not a ``node_k``-mer (graphs built with a larger k).
    """
    if not 1 <= node_k <= 31:
        raise ValueError(f"node_k={node_k}: (k-1)-mers of length 1..31")
    codes = np.asarray(node_codes, dtype=np.uint64).ravel()
    if codes.size and int(codes.max()) >= 4**node_k:
        raise ValueError(
            f"node code {int(codes.max())} is not a {node_k}-mer: the graph was built with k > {node_k + 1}; "
            f"use the k the graphs were built with"
        )
    if node_k <= TABLE_MAX_NODE_K:
        return _table(node_k)[codes.astype(np.int64)]
    return _compute(codes, node_k)


def edge_weights(edge_counts) -> np.ndarray:
    """``log1p(count)`` as float32."""
    return np.log1p(np.asarray(edge_counts, dtype=np.float64)).astype(np.float32)


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
