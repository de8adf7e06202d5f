"""Device functions the plugins' CUDA kernels share: float64 arithmetic that rounds like the CPU
kernels do, and finding the record a position of a joined batch belongs to.

NVVM fuses ``a * b + c`` into one fused multiply-add (one rounding instead of two) and
Numba offers no switch to stop it, so a distance computed on the GPU can differ from the
CPU kernel's in the last bit, and a pair at exactly the cutoff can fall on the other side.
libdevice's ``_rn`` functions are never fused. Call these from ``@cuda.jit`` code where a
result must match the CPU bit for bit; elsewhere plain arithmetic is faster. Under Numba's
CUDA simulator (where libdevice has no Python bodies) they are plain arithmetic, which
rounds like the CPU anyway.

Imports ``numba.cuda``: only a plugin's ``kernels/cuda.py`` should import this module.
"""

from __future__ import annotations

from numba import cuda

try:
    from numba.cuda.core.config import ENABLE_CUDASIM
except ImportError:  # numba-cuda releases before it kept settings of its own
    from numba.core.config import ENABLE_CUDASIM

#: True under Numba's CUDA simulator, which runs each thread of a block as a Python thread;
#: those threads contend for the simulator's locks, slowly and erratically (seconds in one
#: process, many minutes in another), so kernels that share nothing within a block launch
#: blocks of one thread there: the same results, one Python thread at a time.
SIMULATOR = bool(ENABLE_CUDASIM)

if SIMULATOR:

    @cuda.jit(device=True)
    def mul(a, b):
        return a * b

    @cuda.jit(device=True)
    def add(a, b):
        return a + b

    @cuda.jit(device=True)
    def sub(a, b):
        return a - b

else:
    from numba.cuda import libdevice

    mul = libdevice.dmul_rn
    add = libdevice.dadd_rn

    @cuda.jit(device=True)
    def sub(a, b):
        # libdevice has no dsub_rn; negation is exact, so this is the CPU's a - b
        return libdevice.dadd_rn(a, -b)


@cuda.jit(device=True)
def squared_distance(ax, ay, az, bx, by, bz):
    """``dx*dx + dy*dy + dz*dz`` in that order, each product and sum rounded (as NumPy and
    the Numba CPU kernels compute it)."""
    dx = sub(ax, bx)
    dy = sub(ay, by)
    dz = sub(az, bz)
    return add(add(mul(dx, dx), mul(dy, dy)), mul(dz, dz))


@cuda.jit(device=True)
def segment_of(starts, p):
    """The segment holding position ``p`` of records joined end to end, segment r being
    ``starts[r]:starts[r+1]``: the last r with ``starts[r] <= p`` (an empty segment is never it)."""
    lo, hi = 0, starts.shape[0] - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= p:
            lo = mid
        else:
            hi = mid - 1
    return lo


__all__ = ["SIMULATOR", "add", "mul", "segment_of", "squared_distance", "sub"]
