"""k-mer counting: dense (k <= 13), sparse (k <= 31) and the canonical k-mer spectrum.

A k-mer's index (code) is its base-4 number with ``A=0, C=1, G=2, T=3``, first base most
significant; lowercase counts as uppercase and a k-mer touching any other byte is skipped.
The canonical code of a k-mer is ``min(code, code of its reverse complement)``, what
``jellyfish count -C`` counts. Counting is single-threaded: a rolling 2-bit code per base,
no per-k-mer Python work; sparse counting collects codes and LSD-radix-sorts them
(:mod:`.radix`).

One module for the three ways of counting (dense tables, sparse sorted codes, the
canonical spectrum) and their batch forms: they share the code conventions (``kmer_mask``,
``revcomp_code``, the base table), fall back on one another (sparse counting of a short k
uses the dense table, the spectrum is a view of canonical dense counts), and are what the
encoders and tests treat as one API. The generic uint64 sort is in ``radix.py``.
"""

from __future__ import annotations

import operator
from functools import lru_cache

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .radix import radix_sort
from .sequence import BASE_CODE, Records, as_u8, join_records

MAX_DENSE_K = 13
MAX_SPARSE_K = 31

_U64 = np.uint64
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def check_k(k, low: int, high: int, what: str = "k") -> int:
    """``k`` as an int in ``[low, high]``, else ValueError (TypeError for non-integers)."""
    if isinstance(k, bool):
        raise TypeError(f"{what} must be an integer, not bool")
    k = operator.index(k)
    if not low <= k <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {k}")
    return k


def count_dtype(n_bases: int):
    """uint32 counts unless the sequence is long enough to overflow them."""
    return np.uint32 if n_bases < 2**32 else np.uint64


@njit(cache=True, nogil=True)
def kmer_mask(k):
    """Mask of the low 2k bits (k from 1 to 32)."""
    return _ALL_ONES >> _U64(64 - 2 * k)


@njit(cache=True, nogil=True)
def revcomp_code(code, k):
    """Code of the reverse complement of the k-mer ``code`` (k from 1 to 32)."""
    x = _U64(code)
    x = ((x >> _U64(2)) & _U64(0x3333333333333333)) | ((x & _U64(0x3333333333333333)) << _U64(2))
    x = ((x >> _U64(4)) & _U64(0x0F0F0F0F0F0F0F0F)) | ((x & _U64(0x0F0F0F0F0F0F0F0F)) << _U64(4))
    x = ((x >> _U64(8)) & _U64(0x00FF00FF00FF00FF)) | ((x & _U64(0x00FF00FF00FF00FF)) << _U64(8))
    x = ((x >> _U64(16)) & _U64(0x0000FFFF0000FFFF)) | ((x & _U64(0x0000FFFF0000FFFF)) << _U64(16))
    x = (x >> _U64(32)) | (x << _U64(32))
    return (~x) >> _U64(64 - 2 * k)


@intrinsic
def prefetch_for_write(typingctx, arr, index):
    """Hint the CPU to fetch ``arr[index]`` into the cache for writing (``llvm.prefetch``).

    Only a hint: no bounds check is needed (a prefetch never faults) and results never
    depend on it.
    """
    if not isinstance(arr, types.Array) or not isinstance(index, types.Integer):
        return None
    sig = types.void(arr, index)

    def codegen(context, builder, signature, args):
        aryty, idxty = signature.args
        ary = context.make_array(aryty)(context, builder, args[0])
        idx = context.cast(builder, args[1], idxty, types.intp)
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(aryty.dtype)))
        i8p = ir.IntType(8).as_pointer()
        ptr = builder.gep(builder.bitcast(ary.data, i8p), [builder.mul(idx, itemsize)])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)
        builder.call(fn, [ptr, i32(1), i32(3), i32(1)])  # write, keep in all cache levels, data
        return context.get_dummy_value()

    return sig, codegen


# -- dense counting --------------------------------------------------------------------

#: k-mers between computing a code (and prefetching its counter) and counting it; a power of 2.
_AHEAD = 64
#: Count tables of at least this many bytes are counted with prefetching (past the L2 cache).
_AHEAD_MIN_BYTES = 8 << 20


@njit(cache=True, nogil=True)
def _bump(counts, code, small, log, nlog):
    """Add one at ``code``; with ``small`` (uint8 counters) log each wrap past 255."""
    if small:
        v = counts[code]
        if v == 255:
            counts[code] = 0
            log[nlog] = code
            return nlog + 1
        counts[code] = v + 1
    else:
        counts[code] += 1
    return nlog


@njit(cache=True, nogil=True)
def _dense_count(seq, lut, k, canonical, counts, small, log):
    """Count into ``counts`` (length 4**k); returns the number of wraps logged (``small``)."""
    mask = kmer_mask(k)
    shift = _U64(2 * (k - 1))
    fwd = _U64(0)
    rev = _U64(0)
    run = 0
    nlog = 0
    if canonical:
        for i in range(seq.size):
            c = lut[seq[i]]
            if c > 3:
                run = 0
                continue
            fwd = ((fwd << _U64(2)) | _U64(c)) & mask
            rev = (rev >> _U64(2)) | (_U64(3 - c) << shift)
            run += 1
            if run >= k:
                nlog = _bump(counts, min(fwd, rev), small, log, nlog)
    else:
        for i in range(seq.size):
            c = lut[seq[i]]
            if c > 3:
                run = 0
                continue
            fwd = ((fwd << _U64(2)) | _U64(c)) & mask
            run += 1
            if run >= k:
                nlog = _bump(counts, fwd, small, log, nlog)
    return nlog


@njit(cache=True, nogil=True)
def _dense_count_ahead(seq, lut, k, canonical, counts, small, log):
    """:func:`_dense_count` for tables past the L2 cache, which are hit at random: each code
    is counted ``_AHEAD`` k-mers after it is computed, and its counter is
    prefetched then, so the counts do not wait for their cache lines one after another.
    """
    mask = kmer_mask(k)
    shift = _U64(2 * (k - 1))
    ring = np.full(_AHEAD, -1, dtype=np.int64)  # codes computed but not yet counted; -1: none
    slot = _AHEAD - 1
    fwd = _U64(0)
    rev = _U64(0)
    run = 0
    nlog = 0
    if canonical:
        for i in range(seq.size):
            c = lut[seq[i]]
            code = np.int64(-1)
            if c > 3:
                run = 0
            else:
                fwd = ((fwd << _U64(2)) | _U64(c)) & mask
                rev = (rev >> _U64(2)) | (_U64(3 - c) << shift)
                run += 1
                if run >= k:
                    code = np.int64(min(fwd, rev))
                    prefetch_for_write(counts, code)
            j = i & slot
            x = ring[j]
            ring[j] = code
            if x >= 0:
                nlog = _bump(counts, x, small, log, nlog)
    else:
        for i in range(seq.size):
            c = lut[seq[i]]
            code = np.int64(-1)
            if c > 3:
                run = 0
            else:
                fwd = ((fwd << _U64(2)) | _U64(c)) & mask
                run += 1
                if run >= k:
                    code = np.int64(fwd)
                    prefetch_for_write(counts, code)
            j = i & slot
            x = ring[j]
            ring[j] = code
            if x >= 0:
                nlog = _bump(counts, x, small, log, nlog)
    for i in range(seq.size, seq.size + _AHEAD):
        x = ring[i & slot]
        if x >= 0:
            nlog = _bump(counts, x, small, log, nlog)
    return nlog


@njit(cache=True, nogil=True)
def _widen_in_place(out, log, nlog):
    """Widen uint8 counts held in the first ``out.size`` bytes of ``out`` to ``out``'s dtype.

    Block by block from the end, each block's bytes copied aside first: a block's output
    starts at or after its own bytes, so it never overwrites bytes of the blocks still to
    come, and the copy loops are plain streams that vectorise. Then add 256 per logged wrap.
    """
    bytes_ = out.view(np.uint8)
    block = 4096
    tmp = np.empty(block, dtype=np.uint8)
    hi = out.size
    while hi > 0:
        lo = max(0, hi - block)
        m = hi - lo
        for t in range(m):
            tmp[t] = bytes_[lo + t]
        for t in range(m):
            out[lo + t] = tmp[t]
        hi = lo
    for j in range(nlog):
        out[log[j]] += 256


@njit(cache=True, nogil=True)
def _fold_block(t8, blk, src_a, b, k3):
    """Gather the 64 x 64 block ``(*, b, *)`` of ``t8`` into ``blk``, a 64-byte row per first 3 bases."""
    for a in range(64):
        row = (a * k3 + b * 64) >> 3
        for w in range(8):
            blk[a, w] = src_a[row + w]


@njit(cache=True, nogil=True)
def _unfold_block(t64, blk, b, k3):
    for a in range(64):
        row = (a * k3 + b * 64) >> 3
        for w in range(8):
            t64[row + w] = blk[a, w]


@njit(cache=True, nogil=True)
def _fold_canonical(t8, t64, k, log, nlog, bi, bi64, br, br64):
    """Fold forward uint8 counts ``t8`` in place onto canonical codes; returns the new ``nlog``.

    Each pair ``i < rc(i)`` gets ``t[i] + t[rc(i)]`` at ``i`` and 0 at ``rc(i)`` (palindromes
    keep theirs); a sum past 255 keeps the low byte and logs ``i`` once more, like a counting
    wrap (the log then holds forward codes and canonical codes; a log entry ``x`` means 256
    more at ``min(x, rc(x))``). ``t64`` is a uint64 view of ``t8``.

    Codes split into first 3 bases ``a``, middle ``b`` and last 3 bases ``c`` (k >= 6), and
    ``rc(a b c) = rc(c) rc(b) rc(a)``: the 64 x 64 block ``(*, b, *)`` pairs with the block
    ``(*, rc(b), *)``. Each pair of blocks (``b <= rc(b)``) is gathered a 64-byte row at a
    time into ``bi``/``br`` (``bi64``/``br64`` their uint64 views), folded, and written back,
    so the table is read and written once, in whole cache lines.
    """
    rc3 = np.empty(64, dtype=np.int64)
    for t in range(64):
        rc3[t] = np.int64(revcomp_code(_U64(t), 3))
    k3 = 1 << (2 * (k - 3))
    for b in range(1 << (2 * (k - 6))):
        rb = np.int64(revcomp_code(_U64(b), k - 6)) if k > 6 else 0
        if rb < b:
            continue  # folded with block rb
        _fold_block(t8, bi64, t64, b, k3)
        # Visit c by cp = rc(c), the first 3 bases of the partner: whether i < rc(i) then
        # depends on a <= cp only (contiguous ranges, no coin-toss branches).
        if rb == b:
            for a in range(64):
                pc = rc3[a]
                for cp in range(a + 1, 64):  # cp == a is a palindrome (c == rc(a))
                    c = rc3[cp]
                    s = np.int64(bi[a, c]) + np.int64(bi[cp, pc])
                    if s > 255:
                        s -= 256
                        log[nlog] = _U64(a * k3 + b * 64 + c)
                        nlog += 1
                    bi[a, c] = s
                    bi[cp, pc] = 0
        else:
            _fold_block(t8, br64, t64, rb, k3)
            for a in range(64):
                pc = rc3[a]
                for cp in range(a):  # rc(i) < i: the partner keeps the sum
                    c = rc3[cp]
                    s = np.int64(bi[a, c]) + np.int64(br[cp, pc])
                    if s > 255:
                        s -= 256
                        log[nlog] = _U64(cp * k3 + rb * 64 + pc)
                        nlog += 1
                    bi[a, c] = 0
                    br[cp, pc] = s
                for cp in range(a, 64):  # i < rc(i) (cp == a: b < rb decides)
                    c = rc3[cp]
                    s = np.int64(bi[a, c]) + np.int64(br[cp, pc])
                    if s > 255:
                        s -= 256
                        log[nlog] = _U64(a * k3 + b * 64 + c)
                        nlog += 1
                    bi[a, c] = s
                    br[cp, pc] = 0
            _unfold_block(t64, br64, rb, k3)
        _unfold_block(t64, bi64, b, k3)
    return nlog


@njit(cache=True, nogil=True)
def _canonical_log(out, log, nlog, k):
    """Apply logged wraps as 256 more at each code's canonical code."""
    for j in range(nlog):
        x = log[j]
        out[min(x, revcomp_code(x, k))] += 256


def _dense(arr: np.ndarray, k: int, canonical: bool) -> np.ndarray:
    size = 4**k
    dtype = count_dtype(arr.size)
    n_kmers = max(arr.size - k + 1, 0)
    if size >= 2**18 and n_kmers >= size // 4:
        # Tables past the L2 cache: count in uint8 (a quarter of the memory traffic), logging
        # each wrap past 255 (at most n / 256 of them), then widen. The uint8 counters live in
        # the first quarter (eighth for uint64) of the output itself: one fresh allocation,
        # touched once. With enough k-mers, canonical counting counts forward k-mers and folds
        # each code onto its reverse complement before widening: reverse-complement codes hit
        # the table in a cache-hostile order, which costs more per k-mer than the fold costs
        # per table entry (with prefetching, past about one k-mer per entry).
        ahead = size >= _AHEAD_MIN_BYTES
        fold = canonical and n_kmers >= (size if ahead else size // 2)
        log = np.empty(n_kmers // 256 + 1, dtype=np.uint64)
        counts = np.zeros(size, dtype=dtype)
        t8 = counts.view(np.uint8)[:size]
        count = _dense_count_ahead if ahead else _dense_count
        nlog = count(arr, BASE_CODE, k, canonical and not fold, t8, True, log)
        if fold:
            bi = np.empty((64, 64), dtype=np.uint8)
            br = np.empty((64, 64), dtype=np.uint8)
            nlog = _fold_canonical(t8, t8.view(np.uint64), k, log, nlog, bi, bi.view(np.uint64), br, br.view(np.uint64))
            _widen_in_place(counts, log, 0)
            _canonical_log(counts, log, nlog, k)
        else:
            _widen_in_place(counts, log, nlog)
        return counts
    counts = np.zeros(size, dtype=dtype)
    count = _dense_count_ahead if counts.nbytes >= _AHEAD_MIN_BYTES else _dense_count
    count(arr, BASE_CODE, k, canonical, counts, False, np.empty(0, dtype=np.uint64))
    return counts


def kmer_counts(seq, k: int, canonical: bool = False) -> np.ndarray:
    """Dense k-mer counts: array of length ``4**k`` indexed by k-mer code (1 <= k <= 13).

    Counts are uint32 (uint64 for sequences of 2**32 bases or more). With ``canonical``,
    each k-mer is counted at ``min(code, revcomp(code))`` (= ``jellyfish count -C``); the
    other indices stay 0.
    """
    k = check_k(k, 1, MAX_DENSE_K)
    return _dense(as_u8(seq), k, bool(canonical))


#: Largest count table (entries) the batch kernel fills row by row in one compiled loop;
#: larger tables take :func:`kmer_counts`' cache-aware path one record at a time.
_BATCH_TABLE_MAX = 1 << 16


@njit(cache=True, nogil=True)
def _count_rows(data, starts, lut, k, canonical, out):
    no_log = np.empty(0, dtype=np.uint64)
    for r in range(out.shape[0]):
        _dense_count(data[starts[r] : starts[r + 1]], lut, k, canonical, out[r], False, no_log)


def batch_arguments(seqs, k) -> tuple[int, np.ndarray, np.ndarray]:
    """``(k, data, starts)`` for a dense batch kernel (CPU or CUDA), checked: its uint32
    counts refuse records of 2**32 bases or more."""
    k = check_k(k, 1, MAX_DENSE_K)
    data, starts = join_records(seqs)
    if len(starts) > 1 and (longest := int(np.diff(starts).max())) >= 2**32:
        raise ValueError(f"a record of {longest} bases: its counts need uint64 (kernels.kmer_counts)")
    return k, data, starts


def kmer_counts_batch(seqs, k: int, canonical: bool = False) -> np.ndarray:
    """Dense k-mer counts of each record: ``(N, 4**k)`` uint32, row ``i`` equal to
    ``kmer_counts(seqs[i], k, canonical)``, in one compiled loop (no per-record call).

    ``seqs``: a :class:`~.sequence.Records` batch, or records of any type ``kmer_counts``
    takes. Records of 2**32 bases or more, whose counts need uint64, are refused.
    """
    k, data, starts = batch_arguments(seqs, k)
    n, size = len(starts) - 1, 4**k
    if size > _BATCH_TABLE_MAX:
        out = np.empty((n, size), dtype=np.uint32)
        for r in range(n):
            out[r] = _dense(data[starts[r] : starts[r + 1]], k, bool(canonical))
        return out
    out = np.zeros((n, size), dtype=np.uint32)
    _count_rows(data, starts, BASE_CODE, k, bool(canonical), out)
    return out


# -- sparse counting -------------------------------------------------------------------


@njit(cache=True, nogil=True)
def collect_codes(seq, lut, k, canonical):
    """Codes of all valid k-mers in sequence order (k from 1 to 32), uint64."""
    n = seq.size
    out = np.empty(max(n - k + 1, 0), dtype=np.uint64)
    mask = kmer_mask(k)
    shift = _U64(2 * (k - 1))
    fwd = _U64(0)
    rev = _U64(0)
    run = 0
    m = 0
    if canonical:
        for i in range(n):
            c = lut[seq[i]]
            if c > 3:
                run = 0
                continue
            fwd = ((fwd << _U64(2)) | _U64(c)) & mask
            rev = (rev >> _U64(2)) | (_U64(3 - c) << shift)
            run += 1
            if run >= k:
                out[m] = min(fwd, rev)
                m += 1
    else:
        for i in range(n):
            c = lut[seq[i]]
            if c > 3:
                run = 0
                continue
            fwd = ((fwd << _U64(2)) | _U64(c)) & mask
            run += 1
            if run >= k:
                out[m] = fwd
                m += 1
    return out[:m]


@njit(cache=True, nogil=True)
def run_lengths(sorted_codes, counts):
    """Distinct values of ``sorted_codes`` (written to its front) and their multiplicities.

    ``counts`` must be as long as ``sorted_codes``; returns the number of distinct values.
    """
    n = sorted_codes.size
    if n == 0:
        return 0
    u = 0
    prev = sorted_codes[0]
    c = 1
    for i in range(1, n):
        x = sorted_codes[i]
        if x == prev:
            c += 1
        else:
            sorted_codes[u] = prev
            counts[u] = c
            u += 1
            prev = x
            c = 1
    sorted_codes[u] = prev
    counts[u] = c
    return u + 1


def sparse_counts(arr: np.ndarray, k: int, canonical: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sparse counting for 1 <= k <= 32 on an array from :func:`as_u8` (no checks)."""
    cdtype = count_dtype(arr.size)
    n_kmers = max(arr.size - k + 1, 0)
    if k <= 12 and 4**k <= 2 * n_kmers:
        dense = _dense(arr, k, canonical)
        nz = np.flatnonzero(dense)
        return nz.astype(np.uint64), dense[nz]
    codes = radix_sort(collect_codes(arr, BASE_CODE, k, canonical), 2 * k)
    counts = np.empty(codes.size, dtype=cdtype)
    u = run_lengths(codes, counts)
    if u < codes.size // 2:
        return codes[:u].copy(), counts[:u].copy()
    return codes[:u], counts[:u]


def kmer_counts_sparse(seq, k: int, canonical: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Sparse k-mer counts for 1 <= k <= 31: ``(codes, counts)``.

    ``codes`` are the distinct k-mer codes (uint64, ascending), ``counts`` their counts
    (uint32; uint64 for sequences of 2**32 bases or more). With ``canonical`` codes are
    ``min(code, revcomp(code))``. Same conventions as :func:`kmer_counts`.
    """
    k = check_k(k, 1, MAX_SPARSE_K)
    return sparse_counts(as_u8(seq), k, bool(canonical))


# -- canonical spectrum ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def _canonical_indices(k):
    n = 1 << (2 * k)
    half = 1 << k
    size = n // 2 + (half // 2 if k % 2 == 0 else 0)
    out = np.empty(size, dtype=np.int64)
    m = 0
    for i in range(n):
        if _U64(i) <= revcomp_code(_U64(i), k):
            out[m] = i
            m += 1
    return out[:m]


@lru_cache(maxsize=16)
def _canonical_indices_cached(k: int) -> np.ndarray:
    idx = _canonical_indices(k)
    idx.setflags(write=False)
    return idx


def canonical_kmer_indices(k: int) -> np.ndarray:
    """Sorted k-mer codes ``i`` with ``i <= revcomp(i)``: the compact canonical space (int64).

    Its length is ``4**k / 2`` for odd k and ``(4**k + 2**k) / 2`` for even k (palindromes).
    """
    k = check_k(k, 1, MAX_DENSE_K)
    return _canonical_indices_cached(k).copy()


def kmer_spectrum(seq, k: int) -> np.ndarray:
    """Canonical k-mer counts at :func:`canonical_kmer_indices`, L2-normalised, float32.

    All zeros when ``seq`` has no valid k-mer. A fixed-length vector for similarity search.
    """
    k = check_k(k, 1, MAX_DENSE_K)
    counts = _dense(as_u8(seq), k, True)[_canonical_indices_cached(k)].astype(np.float64)
    norm = float(np.sqrt(np.dot(counts, counts)))
    if norm > 0:
        counts /= norm
    return counts.astype(np.float32)


def kmer_spectrum_batch(seqs, k: int) -> np.ndarray:
    """:func:`kmer_spectrum` of each record, ``(N, D)`` float32 (row ``i`` bit for bit
    ``kmer_spectrum(seqs[i], k)``), counting the batch with :func:`kmer_counts_batch`."""
    k = check_k(k, 1, MAX_DENSE_K)
    if 4**k > _BATCH_TABLE_MAX:  # one record's table at a time, not a batch of large tables
        data, starts = join_records(seqs)
        dim = len(_canonical_indices_cached(k))
        out = np.empty((len(starts) - 1, dim), dtype=np.float32)
        for r in range(len(out)):
            out[r] = kmer_spectrum(data[starts[r] : starts[r + 1]], k)
        return out
    counts = kmer_counts_batch(seqs, k, canonical=True)[:, _canonical_indices_cached(k)].astype(np.float64)
    for row in counts:  # one dot per row, as kmer_spectrum sums it
        norm = float(np.sqrt(np.dot(row, row)))
        if norm > 0:
            row /= norm
    return counts.astype(np.float32)


def warm_up_internal() -> None:
    """Compile the large-table paths too (the public calls in ``warm_up`` are too small)."""
    arr = as_u8(b"ACGTTGCAAC" * 30)
    log = np.zeros(8, dtype=np.uint64)
    size = 4**7
    out = np.zeros(size, dtype=np.uint32)
    t8 = out.view(np.uint8)[:size]
    spare = np.zeros(size, dtype=np.uint32)
    _dense_count_ahead(arr, BASE_CODE, 7, False, spare, False, log)
    _dense_count_ahead(arr, BASE_CODE, 7, True, spare.view(np.uint8)[:size], True, log)
    nlog = _dense_count(arr, BASE_CODE, 7, False, t8, True, log)
    bi = np.empty((64, 64), dtype=np.uint8)
    br = np.empty((64, 64), dtype=np.uint8)
    nlog = _fold_canonical(t8, t8.view(np.uint64), 7, log, nlog, bi, bi.view(np.uint64), br, br.view(np.uint64))
    _widen_in_place(out, log, 0)
    _canonical_log(out, log, nlog, 7)
    kmer_counts_batch(Records(arr, np.array([0, 100, arr.size])), 3)
