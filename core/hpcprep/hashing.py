"""SplitMix64's finaliser, the one integer mixer the plugins share (cfd's counter-based
surface sampling, protein's MinHash signatures).

``splitmix64(z)`` takes a ``uint64`` scalar inside a Numba kernel, or a ``uint64`` array
from Python (elementwise), with wrapping arithmetic either way. Its constants are
Steele, Lea and Flood's (2014), the ones every SplitMix64 implementation uses, so streams
keyed the same way agree with them bit for bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: The golden-ratio increment between the inputs of consecutive outputs of a stream.
GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


@njit(cache=True, nogil=True)
def splitmix64(z):
    """The SplitMix64 output for state ``z`` (a uint64, or an array of them)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)
