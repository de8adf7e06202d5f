"""de Bruijn graphs of a sequence (forward strand, not canonical).

Nodes are the distinct (k-1)-mers that occur in a valid k-mer; each distinct k-mer is one
edge from its prefix (k-1)-mer to its suffix (k-1)-mer, weighted by its count. Same base
codes and skipping rules as :mod:`hpcprep_genomics.kernels.kmers`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .kmers import check_k, count_dtype, kmer_mask, sparse_counts
from .radix import radix_argsort_pairs
from .sequence import as_u8

MIN_GRAPH_K = 2
MAX_GRAPH_K = 32


@njit(cache=True, nogil=True)
def _link(codes, k):
    """Nodes, src and dst of the edges ``codes`` (sorted distinct k-mer codes)."""
    m = codes.size
    two = np.uint64(2)
    sub_mask = kmer_mask(k - 1)
    suffix = np.empty(m, dtype=np.uint64)
    for e in range(m):
        suffix[e] = codes[e] & sub_mask
    suf_sorted, order = radix_argsort_pairs(suffix, 2 * (k - 1))
    nodes = np.empty(2 * m, dtype=np.uint64)
    src = np.empty(m, dtype=np.int32)
    dst = np.empty(m, dtype=np.int32)
    # Merge the (already sorted) prefixes with the sorted suffixes into the node list.
    i = 0
    j = 0
    u = -1
    last = np.uint64(0)
    while i < m or j < m:
        if j >= m or (i < m and (codes[i] >> two) <= suf_sorted[j]):
            x = codes[i] >> two
            if u < 0 or x != last:
                u += 1
                nodes[u] = x
                last = x
            src[i] = u
            i += 1
        else:
            x = suf_sorted[j]
            if u < 0 or x != last:
                u += 1
                nodes[u] = x
                last = x
            dst[order[j]] = u
            j += 1
    return nodes[: u + 1], src, dst


def debruijn_graph(seq, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """de Bruijn graph of the k-mers of ``seq`` (2 <= k <= 32).

    Returns ``(node_codes, src, dst, edge_counts)``: ``node_codes`` the distinct (k-1)-mer
    codes (uint64, ascending); one edge per distinct k-mer, from the node of its prefix to
    the node of its suffix (``src``, ``dst``: int32 indices into ``node_codes``), with its
    count (``edge_counts``, uint32). Edges are sorted by ``(src, dst)`` (= by k-mer code).
    """
    k = check_k(k, MIN_GRAPH_K, MAX_GRAPH_K)
    arr = as_u8(seq)
    codes, counts = sparse_counts(arr, k, False)
    if codes.size == 0:
        empty_i = np.zeros(0, dtype=np.int32)
        return np.zeros(0, dtype=np.uint64), empty_i, empty_i.copy(), np.zeros(0, dtype=np.uint32)
    if 2 * codes.size > np.iinfo(np.int32).max:
        raise ValueError(f"{codes.size} edges are too many for int32 node indices")
    nodes, src, dst = _link(codes, k)
    if count_dtype(arr.size) != np.uint32 and counts.max() > np.iinfo(np.uint32).max:
        raise OverflowError("an edge count does not fit uint32")
    return nodes.copy(), src, dst, counts.astype(np.uint32, copy=False)
