"""The benchmark's CPU-bound kernel: the Chirikov standard map, iterated per record.

A fixed, substantial amount of scalar arithmetic per record, with nothing for memory
bandwidth or I/O to hide behind. Kept apart from ``bench_plugin`` so that Ray workers
import it by name and Numba loads it from its cache (see ``bench_plugin``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

TWO_PI = 2.0 * math.pi


@njit(cache=True, nogil=True)
def standard_map_mean_cos(x, iterations, kick, out):
    """For each x in [0, 1): start the standard map at theta = 2*pi*x, p = x, iterate
    ``iterations`` times and store the mean of cos(theta) over the orbit."""
    for i in range(x.shape[0]):
        theta = x[i] * TWO_PI
        p = x[i]
        acc = 0.0
        for _ in range(iterations):
            p = p + kick * math.sin(theta)
            # |kick * sin| < 2*pi, so one wrap keeps p and theta in [0, 2*pi)
            if p >= TWO_PI:
                p -= TWO_PI
            elif p < 0.0:
                p += TWO_PI
            theta = theta + p
            if theta >= TWO_PI:
                theta -= TWO_PI
            acc += math.cos(theta)
        out[i] = acc / iterations
    return out


def warm(readonly: bool = False) -> None:
    """Compile, or load from Numba's cache, the variant for writable or read-only input."""
    x = np.zeros(1)
    x.flags.writeable = not readonly
    standard_map_mean_cos(x, 1, 1.0, np.empty(1))
