"""LSD radix sort of uint64 keys (values of at most ``bits`` bits), alone or with their
positions: what sparse k-mer counting and the de Bruijn graph sort their codes with.
Digits of at most 11 bits; a pass whose digit is the same for every key is skipped."""

from __future__ import annotations

import numpy as np
from numba import njit

_U64 = np.uint64


@njit(cache=True, nogil=True)
def _radix_plan(bits, n):
    passes = (bits + 10) // 11
    if passes == 0:
        return 0, 0
    width = (bits + passes - 1) // passes
    return passes, width


@njit(cache=True, nogil=True)
def _digit_histograms(keys, passes, width):
    """Counts of each ``width``-bit digit of ``keys``, one row per radix pass."""
    dmask = _U64((1 << width) - 1)
    hist = np.zeros((passes, 1 << width), dtype=np.int64)
    for i in range(keys.size):
        x = keys[i]
        for p in range(passes):
            hist[p, (x >> _U64(p * width)) & dmask] += 1
    return hist


@njit(cache=True, nogil=True)
def _bucket_starts(counts, n, offsets):
    """Fill ``offsets`` with each bucket's first slot; True if one bucket holds all ``n`` keys."""
    trivial = False
    total = 0
    for b in range(counts.size):
        h = counts[b]
        if h == n:
            trivial = True
        offsets[b] = total
        total += h
    return trivial


@njit(cache=True, nogil=True)
def radix_sort(keys, bits):
    """Sort uint64 ``keys`` whose values fit in ``bits`` bits (LSD radix, <= 11-bit digits).

    Sorts in place or into a new buffer; use the returned array. Digits shared by all keys
    are skipped.
    """
    n = keys.size
    if n <= 512:
        keys.sort()
        return keys
    passes, width = _radix_plan(bits, n)
    if passes == 0:
        return keys
    nb = 1 << width
    dmask = _U64(nb - 1)
    hist = _digit_histograms(keys, passes, width)
    src = keys
    dst = np.empty_like(keys)
    offsets = np.empty(nb, dtype=np.int64)
    for p in range(passes):
        if _bucket_starts(hist[p], n, offsets):
            continue  # every key has the same digit: this pass would not move anything
        sh = _U64(p * width)
        for i in range(n):
            x = src[i]
            d = (x >> sh) & dmask
            j = offsets[d]
            dst[j] = x
            offsets[d] = j + 1
        src, dst = dst, src
    return src


@njit(cache=True, nogil=True)
def radix_argsort_pairs(keys, bits):
    """Stable radix sort of ``keys`` (uint64, ``bits`` significant) with their positions.

    Returns ``(sorted_keys, order)``: ``order`` (int64) gives the original position of each
    sorted key. ``keys`` may be overwritten.
    """
    n = keys.size
    order = np.arange(n)
    passes, width = _radix_plan(bits, n)
    if passes == 0 or n <= 1:
        return keys, order
    nb = 1 << width
    dmask = _U64(nb - 1)
    hist = _digit_histograms(keys, passes, width)
    src = keys
    dst = np.empty_like(keys)
    osrc = order
    odst = np.empty_like(order)
    offsets = np.empty(nb, dtype=np.int64)
    for p in range(passes):
        if _bucket_starts(hist[p], n, offsets):
            continue  # every key has the same digit: this pass would not move anything
        sh = _U64(p * width)
        for i in range(n):
            x = src[i]
            d = (x >> sh) & dmask
            j = offsets[d]
            dst[j] = x
            odst[j] = osrc[i]
            offsets[d] = j + 1
        src, dst = dst, src
        osrc, odst = odst, osrc
    return src, osrc
