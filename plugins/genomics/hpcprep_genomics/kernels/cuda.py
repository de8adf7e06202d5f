"""CUDA variants of the dense k-mer counts and the one-hot encoding, for a batch of sequences.

Same names, arguments and results as :mod:`.kmers` and :mod:`.sequence` (bit for bit), plus
``*_batch`` forms that take a whole batch of records: the records are joined into one byte
buffer with their start offsets, copied to the GPU once, and one thread per base does the
work for every record at once, so a batch keeps a GPU busy where one 1 kb window would not.
The single-record functions are batches of one. The k-mer rules are the CPU kernels' (see
the package docstring): lowercase counts as uppercase, a k-mer touching a byte that is not
ACGT is skipped, k-mers never cross records, canonical = min(code, reverse complement).

Needs numba-cuda (the plugin's ``cuda`` extra): only the CUDA variant of an encoder imports
this module, never ``kernels/__init__``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hpcprep.cuda_device import SIMULATOR, segment_of
from numba import cuda

from .kmers import batch_arguments
from .sequence import BASE_CODE, Records, join_records, onehot_arguments, onehot_views

#: Threads per block: a multiple of the warp size that leaves the scheduler several blocks per SM.
THREADS = 1 if SIMULATOR else 256  # no kernel here shares anything within a block
#: Most bytes of counts on the device at once; a batch whose table is larger is counted in parts.
COUNT_TABLE_BYTES = 1 << 30


def _blocks(n: int) -> int:
    return (n + THREADS - 1) // THREADS


@cuda.jit
def _count_kmers(data, starts, lut, k, canonical, first, counts):
    """One thread per k-mer start: add one at its (canonical) code in its record's row, for
    records ``first`` onwards (``counts`` row 0 is record ``first``)."""
    p = cuda.grid(1) + starts[first]
    last = first + counts.shape[0]
    if p >= starts[last]:
        return
    r = segment_of(starts, p)
    if p + k > starts[r + 1]:
        return
    code = np.uint64(0)
    rc = np.uint64(0)
    for j in range(k):
        b = lut[data[p + j]]
        if b > 3:
            return
        code = (code << np.uint64(2)) | np.uint64(b)
        rc = rc | (np.uint64(3 - b) << np.uint64(2 * j))
    if canonical and rc < code:
        code = rc
    cuda.atomic.add(counts, (r - first, np.int64(code)), np.uint32(1))


def kmer_counts_batch(seqs: Sequence | Records, k: int, canonical: bool = False) -> np.ndarray:
    """Dense k-mer counts of each record, as :func:`.kmers.kmer_counts_batch`: ``(N, 4**k)`` uint32."""
    k, data, starts = batch_arguments(seqs, k)
    n, size = len(starts) - 1, 4**k
    out = np.zeros((n, size), dtype=np.uint32)
    if data.size == 0:
        return out
    d_data, d_starts, d_lut = cuda.to_device(data), cuda.to_device(starts), cuda.to_device(BASE_CODE)
    rows = max(1, COUNT_TABLE_BYTES // (size * 4))
    for first in range(0, n, rows):
        part = out[first : first + rows]
        positions = int(starts[first + len(part)] - starts[first])
        if positions == 0:
            continue
        d_counts = cuda.to_device(part)  # zeros
        _count_kmers[_blocks(positions), THREADS](d_data, d_starts, d_lut, k, bool(canonical), first, d_counts)
        d_counts.copy_to_host(part)
    return out


def kmer_counts(seq, k: int, canonical: bool = False) -> np.ndarray:
    """Dense k-mer counts of one sequence, as :func:`.kmers.kmer_counts` (uint32, length ``4**k``)."""
    return kmer_counts_batch([seq], k, canonical)[0]


# -- one-hot ---------------------------------------------------------------------------


@cuda.jit
def _onehot(data, starts, channels_last, one, zero, nv, out):
    """One thread per base: its four values, at ``[p, c]`` (LC) or ``[c, p - start]`` of its record (CL)."""
    p = cuda.grid(1)
    if p >= data.shape[0]:
        return
    b = data[p] & 0xDF  # lowercase onto uppercase, as the CPU kernel tests the letters
    hit = b == 65 or b == 67 or b == 71 or b == 84
    for c in range(4):
        letter = 65 if c == 0 else (67 if c == 1 else (71 if c == 2 else 84))
        value = (one[0] if b == letter else zero[0]) if hit else nv[0]
        if channels_last:
            out[4 * p + c] = value
        else:
            r = segment_of(starts, p)
            length = starts[r + 1] - starts[r]
            out[4 * starts[r] + c * length + (p - starts[r])] = value


def onehot_joined(seqs: Sequence | Records, layout: str = "LC", dtype=np.uint8, n_value=0):
    """One-hot of every record in one flat array, as :func:`.sequence.onehot_joined`, in one launch."""
    data, starts = join_records(seqs)
    dtype, nv = onehot_arguments(layout, dtype, n_value)
    flat = np.empty(4 * data.size, dtype=dtype)
    if data.size:
        # bool has no arithmetic on the device: fill its bytes as uint8 0/1
        work = np.uint8 if dtype == np.bool_ else dtype
        consts = [cuda.to_device(np.array([v], dtype=work)) for v in (1, 0, nv)]
        d_out = cuda.device_array(flat.size, dtype=work)
        d_starts = cuda.to_device(starts)
        _onehot[_blocks(data.size), THREADS](cuda.to_device(data), d_starts, layout == "LC", *consts, d_out)
        d_out.copy_to_host(flat.view(work))
    return flat, starts


def onehot_batch(seqs: Sequence | Records, layout: str = "LC", dtype=np.uint8, n_value=0) -> list[np.ndarray]:
    """One-hot of each record, as :func:`.sequence.onehot` (views into one array filled by one launch)."""
    return onehot_views(*onehot_joined(seqs, layout, dtype, n_value), layout)


def onehot(seq, layout: str = "LC", dtype=np.uint8, n_value=0) -> np.ndarray:
    """One-hot of one sequence, as :func:`.sequence.onehot`."""
    return onehot_batch([seq], layout, dtype, n_value)[0]


__all__ = ["kmer_counts", "kmer_counts_batch", "onehot", "onehot_batch", "onehot_joined"]
