"""CUDA variants of the residue-geometry kernels: contact edges and distance maps on a GPU.

Same names, arguments and results as :mod:`hpcprep_protein.kernels.geometry` (bit for bit:
distances are rounded step by step through :mod:`hpcprep.cuda_device` as the CPU rounds them),
plus ``*_batch`` forms that take a whole batch of chains: the chains are concatenated, copied
to the GPU once and handled by one launch per pass, so a batch keeps a GPU busy where one chain
would not. The single-chain functions are batches of one.

Needs numba-cuda (the plugin's ``cuda`` extra): only the CUDA variant of an encoder imports this
module, never ``kernels/__init__``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hpcprep.cuda_device import SIMULATOR, segment_of, squared_distance
from numba import cuda

from .geometry import _as_coords

#: Threads per block: a multiple of the warp size that leaves the scheduler several blocks per SM.
THREADS = 1 if SIMULATOR else 128  # no kernel here shares anything within a block


def _blocks(n: int) -> int:
    return (n + THREADS - 1) // THREADS


@cuda.jit(device=True)
def _is_valid(x, y, z):
    return not (math.isnan(x) or math.isnan(y) or math.isnan(z))


@cuda.jit(device=True)
def _contact(xs, ys, zs, i, j, lim, cutoff):
    """Distance of residues i and j if it is within the cutoff, else -1.0.

    The same two tests as the CPU's block scan, in its order: the prefilter on d2 (``lim`` is
    computed on the host as the CPU computes it), then the decision on ``sqrt(d2)``. A NaN row
    gives a NaN d2, which fails the first test.
    """
    e = squared_distance(xs[i], ys[i], zs[i], xs[j], ys[j], zs[j])
    if e <= lim:
        d = math.sqrt(e)  # correctly rounded in float64, as on the CPU
        if d <= cutoff:
            return d
    return -1.0


@cuda.jit
def _count_contacts(xs, ys, zs, chain_of, starts, lim, cutoff, min_sep, counts):
    """Pass 1, one thread per residue i: how many partners j >= i + min_sep of its own chain."""
    i = cuda.grid(1)
    if i >= xs.shape[0]:
        return
    n = 0
    if _is_valid(xs[i], ys[i], zs[i]):
        for j in range(i + min_sep, starts[chain_of[i] + 1]):
            if _contact(xs, ys, zs, i, j, lim, cutoff) >= 0.0:
                n += 1
    counts[i] = n


@cuda.jit
def _write_contacts(xs, ys, zs, chain_of, starts, lim, cutoff, min_sep, offsets, src, dst, dist):
    """Pass 2, one thread per residue i: its edges at ``offsets[i]``, in increasing j, so the
    whole output comes out sorted by (src, dst) without a sort. Indices are local to the chain."""
    i = cuda.grid(1)
    if i >= xs.shape[0] or offsets[i] == offsets[i + 1]:
        return
    first = starts[chain_of[i]]
    k = offsets[i]
    for j in range(i + min_sep, starts[chain_of[i] + 1]):
        d = _contact(xs, ys, zs, i, j, lim, cutoff)
        if d >= 0.0:
            src[k] = i - first
            dst[k] = j - first
            dist[k] = d  # float64 -> float32, rounded to nearest as NumPy's astype rounds
            k += 1


@cuda.jit
def _distance_maps(xs, ys, zs, starts, out_starts, out):
    """One thread per matrix element of every chain's flattened (L, L) map, written row-major."""
    t = cuda.grid(1)
    if t >= out.shape[0]:
        return
    lo = segment_of(out_starts, t)  # the chain whose map holds element t
    first = starts[lo]
    n = starts[lo + 1] - first
    k = t - out_starts[lo]
    i = first + k // n
    j = first + k % n
    if not (_is_valid(xs[i], ys[i], zs[i]) and _is_valid(xs[j], ys[j], zs[j])):
        out[t] = math.nan  # the CPU writes NaN over a missing residue's row and column
    elif i == j:
        out[t] = 0.0
    else:
        # the CPU computes each pair once, as (lower, higher), and mirrors it
        a = min(i, j)
        b = max(i, j)
        out[t] = math.sqrt(squared_distance(xs[a], ys[a], zs[a], xs[b], ys[b], zs[b]))


def _concatenate(chains: Sequence) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Validated chains, their first-residue indices (len + 1) and the coordinates as x, y, z rows."""
    coords = [_as_coords(c) for c in chains]
    starts = np.zeros(len(coords) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in coords], out=starts[1:])
    xyz = np.concatenate([c.T for c in coords], axis=1) if coords else np.zeros((3, 0))
    return coords, starts, np.ascontiguousarray(xyz)


def _empty_edges() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)


def contact_edges_batch(chains: Sequence, cutoff: float, min_seq_sep: int = 1) -> list[tuple[np.ndarray, ...]]:
    """:func:`contact_edges` of every chain of a batch: ``[(src int32, dst int32, dist float32), ...]``.

    ``chains`` is a sequence of ``(L_i, 3)`` coordinate arrays. Two launches for the whole batch:
    count each residue's partners, then write them where an exclusive prefix sum of the counts
    puts them. The counts come back to the host for that sum, which also sizes the outputs.
    """
    coords, starts, xyz = _concatenate(chains)
    cutoff = float(cutoff)
    min_sep = max(int(min_seq_sep), 1)
    total = int(starts[-1])
    if total == 0 or not (cutoff > 0.0):
        return [_empty_edges() for _ in coords]
    lim = cutoff * cutoff * (1.0 + 1e-12)  # the CPU's prefilter, computed the same way
    chain_of = np.repeat(np.arange(len(coords), dtype=np.int32), np.diff(starts))
    d_xs, d_ys, d_zs = (cuda.to_device(row) for row in xyz)
    d_chain_of = cuda.to_device(chain_of)
    d_starts = cuda.to_device(starts)
    d_counts = cuda.device_array(total, dtype=np.int64)
    grid = _blocks(total)
    _count_contacts[grid, THREADS](d_xs, d_ys, d_zs, d_chain_of, d_starts, lim, cutoff, min_sep, d_counts)
    offsets = np.zeros(total + 1, dtype=np.int64)
    np.cumsum(d_counts.copy_to_host(), out=offsets[1:])
    edges = int(offsets[-1])
    src = np.empty(edges, np.int32)
    dst = np.empty(edges, np.int32)
    dist = np.empty(edges, np.float32)
    if edges:
        d_src = cuda.device_array(edges, dtype=np.int32)
        d_dst = cuda.device_array(edges, dtype=np.int32)
        d_dist = cuda.device_array(edges, dtype=np.float32)
        d_offsets = cuda.to_device(offsets)
        _write_contacts[grid, THREADS](
            d_xs, d_ys, d_zs, d_chain_of, d_starts, lim, cutoff, min_sep, d_offsets, d_src, d_dst, d_dist
        )
        d_src.copy_to_host(src)
        d_dst.copy_to_host(dst)
        d_dist.copy_to_host(dist)
    out = []
    for c in range(len(coords)):
        a, b = offsets[starts[c]], offsets[starts[c + 1]]
        out.append((src[a:b], dst[a:b], dist[a:b]))
    return out


def contact_edges(coords, cutoff: float, min_seq_sep: int = 1):
    """Residue pairs ``i < j`` with ``j - i >= min_seq_sep`` and distance ``<= cutoff``, as
    :func:`hpcprep_protein.kernels.geometry.contact_edges` finds them, on the GPU.

    Returns ``(src int32, dst int32, dist float32)`` sorted by ``(src, dst)``. NaN rows have no edges.
    """
    return contact_edges_batch([coords], cutoff, min_seq_sep)[0]


def distance_map_batch(chains: Sequence) -> list[np.ndarray]:
    """:func:`distance_map` of every chain of a batch, one launch for all of them."""
    coords, starts, xyz = _concatenate(chains)
    sizes = np.diff(starts) ** 2
    out_starts = np.zeros(len(coords) + 1, dtype=np.int64)
    np.cumsum(sizes, out=out_starts[1:])
    flat = np.empty(int(out_starts[-1]), dtype=np.float32)
    if flat.size:
        d_out = cuda.device_array(flat.size, dtype=np.float32)
        d_xs, d_ys, d_zs = (cuda.to_device(row) for row in xyz)
        _distance_maps[_blocks(flat.size), THREADS](
            d_xs, d_ys, d_zs, cuda.to_device(starts), cuda.to_device(out_starts), d_out
        )
        d_out.copy_to_host(flat)
    return [flat[out_starts[c] : out_starts[c + 1]].reshape(len(x), len(x)) for c, x in enumerate(coords)]


def distance_map(coords) -> np.ndarray:
    """``(L, L)`` float32 Euclidean distance matrix (NaN rows/columns for missing residues), on the GPU."""
    return distance_map_batch([coords])[0]


__all__ = ["THREADS", "contact_edges", "contact_edges_batch", "distance_map", "distance_map_batch"]
