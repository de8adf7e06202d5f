"""SplitMix64, the mixer the plugins share, against the reference generator's published outputs."""

from __future__ import annotations

import numpy as np
from hpcprep.hashing import GAMMA, splitmix64
from numba import njit

# the first outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c: state += GAMMA, then mix)
SEED0 = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_the_first_outputs_of_a_zero_seeded_stream():
    states = (np.arange(1, 4, dtype=np.uint64) * GAMMA).astype(np.uint64)
    assert [int(x) for x in splitmix64(states)] == SEED0  # an array from Python

    @njit
    def third():  # a scalar inside a kernel
        return splitmix64(np.uint64(3) * GAMMA)

    assert int(third()) == SEED0[2]
