"""``larger`` and ``smaller``: ``max`` and ``min`` of two numbers that are not NaN, for the kernels' inner loops.

Numba's ``max`` and ``min`` of floats keep Python's NaN rules, and with three arguments they call a function; in a
loop over lanes or triangles that blocks vectorisation and costs a call per element. These are one compare and one
select. ``sdf_grid``'s distances on one thread (128^3 nodes, 116 k triangles) took 0.53 s with the built-ins in their
bound tests and 0.47 s with these (and ``closest_on_triangle`` inlined). Every caller here works on finite values
(meshes are checked by ``health.check_mesh``; non-finite query points are answered before any search).
"""

from __future__ import annotations

from numba import njit


@njit(cache=True, nogil=True, inline="always")
def larger(a, b):
    return a if a > b else b


@njit(cache=True, nogil=True, inline="always")
def smaller(a, b):
    return a if a < b else b
