"""Inside or outside, for points whose distance to the mesh is known: the sign step of ``signed_distance``.

A point is inside when the mesh's winding number there exceeds 0.5 (times the orientation factor ``flip``, see
:mod:`.distance`). One hierarchical evaluation per point is the plain way; two cheaper ones share evaluations
among points that provably lie on the same side.

Closed mesh (:func:`sign_by_chains`): consecutive points ``a``, ``b`` of the Morton order with
``d(a) + d(b) > |a - b|`` are linked: the open balls of radius ``d(a)`` about ``a`` and ``d(b)`` about ``b``
hold no surface point and cover the segment ``ab``, so the segment does not meet the surface, and the winding
number of a closed mesh (an integer off the surface, changing only across it) is the same at both ends,
self-intersections and nested shells included. Each chain's winding number is evaluated once, at its point
farthest from the surface; points near the surface end up in chains of their own. That value is an integer, so
it is found as :func:`.winding.winding_number` finds the integer values of a closed mesh (:func:`_integer`): at
the winding module's low ``SNAP_ACCURACY``, rounded when it lies within ``SNAP_TOLERANCE`` of an integer, else
evaluated again at the sign's accuracy. A wrong sign would then need an error of 0.9 at an accuracy whose
largest measured error is 0.067, and the sign takes 22-32 % less time (the benchmark pipeline's ten closed and
capped meshes, 16 384 points each, one thread).

Open mesh with a small boundary (:func:`sign_through_caps`): with ``C`` the caps that close it (:mod:`.caps`),
``w = w_(mesh + C) - w_C``. The first term is an integer off the closed surface, the same along a chain linked
as above with distances to the mesh and caps together; each chain's integer is found once, by rounding
``w_mesh + w_C`` at its point farthest from both (as :func:`_integer` does). Only ``w_C``, over the few
triangles of the caps, is evaluated per point. The sign is the same test on the same winding number, which now
has only the caps' error: on the cyclone of the tutorials (670 triangles, 54 in caps) the signed distances take a
third of the time they took with one evaluation of the mesh per point. Caps pay where they are few and small
(:func:`caps_pay`); many holes, or a rim as large as the mesh (the wigley hull's open deck), cost more than one
evaluation of the mesh per point.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .winding import SNAP_ACCURACY, SNAP_TOLERANCE, winding_fast_one

#: :func:`caps_pay`'s limits: about one cap triangle summed exactly per point, and a few pieces of boundary.
CAPS_WORK_LIMIT = 1.0
CAPS_PIECES_LIMIT = 16


def caps_pay(vertices: np.ndarray, apexes: np.ndarray, cap_faces: np.ndarray) -> bool:
    """Whether the signs of an open mesh are cheaper through its caps (``caps.boundary_caps``), judged from the
    caps alone. Each point walks the caps' tree twice (its distance, its winding number), and a point near a cap
    sums its triangles exactly, so the caps must be few and small:

    - at most ``CAPS_PIECES_LIMIT`` pieces: many holes spread over the mesh make a tree as wide as the mesh's, and
      two walks of it cost more than one winding number of the mesh (on 50 000 points in the box, one thread:
      the DTC hull with 1 161 holes 0.79x, a flange with 27 to 126 pieces 0.57-0.87x; with 10 holes 1.09x);
    - the expected number of cap triangles a point in the mesh's box sums exactly, each piece's triangles times
      the share of the box within its radius, ``sum (n_piece * (r_piece / diagonal)^3)``, at most
      ``CAPS_WORK_LIMIT`` (0.01 to 0.1 for the cyclone's inlets and the propeller's rim, 2.8x and 1.1x; 48 for
      the wigley hull's open deck).
    """
    if not len(cap_faces):
        return True
    if len(apexes) > CAPS_PIECES_LIMIT:
        return False
    piece = cap_faces[:, 2] - len(vertices)
    apex = apexes[piece]
    reach = np.maximum(np.linalg.norm(vertices[cap_faces[:, 0]] - apex, axis=1),
                       np.linalg.norm(vertices[cap_faces[:, 1]] - apex, axis=1))  # fmt: skip
    radius = np.zeros(len(apexes))
    np.maximum.at(radius, piece, reach)
    diagonal = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    if not diagonal > 0.0:
        return False
    work = np.bincount(piece, minlength=len(apexes)) * (radius / diagonal) ** 3
    return bool(work.sum() <= CAPS_WORK_LIMIT)


@njit(cache=True, nogil=True)
def _chains(boxes, points, order, dist):
    """``(chain, seeds, n)``: the chain of each point in Morton order (-1 for a point with no finite distance)
    and each chain's point farthest from the surface (module docstring)."""
    n = order.shape[0]
    # Margin on the link test for rounding in the distances, which grows with the coordinates' magnitude.
    scale = 0.0
    for d in range(3):
        scale = max(scale, abs(boxes[0, 0, d]), abs(boxes[0, 1, d]))
    for o in range(n):
        i = order[o]
        if math.isfinite(dist[i]):
            for d in range(3):
                scale = max(scale, abs(points[i, d]))
    margin = 1e-12 * scale
    chain = np.empty(n, dtype=np.int64)
    seeds = np.empty(n, dtype=np.int64)
    n_chains = 0
    for o in range(n):
        i = order[o]
        chain[o] = -1
        if not math.isfinite(dist[i]):
            continue
        if o > 0 and chain[o - 1] >= 0:
            j = order[o - 1]
            dx = points[i, 0] - points[j, 0]
            dy = points[i, 1] - points[j, 1]
            dz = points[i, 2] - points[j, 2]
            gap = math.sqrt(dx * dx + dy * dy + dz * dz)
            if dist[i] + dist[j] > gap * (1.0 + 1e-9) + margin:
                c = chain[o - 1]
                chain[o] = c
                if dist[i] > dist[seeds[c]]:
                    seeds[c] = i
                continue
        chain[o] = n_chains
        seeds[n_chains] = i
        n_chains += 1
    return chain, seeds, n_chains


@njit(cache=True, nogil=True, inline="always")
def _integer(tri, left, start, count, ex, beta2, x, y, z, stack):
    """The winding number of a closed surface at a point off it, an integer (module docstring): the nearest
    integer to its value at ``SNAP_ACCURACY`` when that is within ``SNAP_TOLERANCE`` of it, else the rounded value
    at ``beta2`` (the accuracy asked for, squared)."""
    w = winding_fast_one(tri, left, start, count, ex, SNAP_ACCURACY * SNAP_ACCURACY, x, y, z, stack)
    k = math.floor(w + 0.5)
    if abs(w - k) <= SNAP_TOLERANCE:
        return k
    return math.floor(winding_fast_one(tri, left, start, count, ex, beta2, x, y, z, stack) + 0.5)


@njit(cache=True, nogil=True, inline="always")
def _integer_capped(mesh, caps, beta2, x, y, z, stack):
    """:func:`_integer` for the surface made of the trees ``mesh`` and ``caps`` together."""
    snap2 = SNAP_ACCURACY * SNAP_ACCURACY
    w = winding_fast_one(mesh[0], mesh[1], mesh[2], mesh[3], mesh[4], snap2, x, y, z, stack)
    w += winding_fast_one(caps[0], caps[1], caps[2], caps[3], caps[4], snap2, x, y, z, stack)
    k = math.floor(w + 0.5)
    if abs(w - k) <= SNAP_TOLERANCE:
        return k
    w = winding_fast_one(mesh[0], mesh[1], mesh[2], mesh[3], mesh[4], beta2, x, y, z, stack)
    w += winding_fast_one(caps[0], caps[1], caps[2], caps[3], caps[4], beta2, x, y, z, stack)
    return math.floor(w + 0.5)


@njit(cache=True, nogil=True, parallel=True)
def sign_by_chains(tri, left, start, count, ex, beta, boxes, points, order, dist, flip, depth):
    """Negate ``dist`` at the points inside the closed mesh, one winding number per chain (module docstring)."""
    n = order.shape[0]
    chain, seeds, n_chains = _chains(boxes, points, order, dist)
    inside = np.zeros(n_chains, dtype=np.bool_)
    for c in prange(n_chains):
        i = seeds[c]
        if dist[i] > 0.0:
            stack = np.empty(depth + 2, dtype=np.int64)
            w = _integer(tri, left, start, count, ex, beta * beta, points[i, 0], points[i, 1], points[i, 2], stack)
            inside[c] = flip * w > 0.5
    for o in prange(n):
        i = order[o]
        if chain[o] >= 0 and inside[chain[o]] and dist[i] > 0.0:
            dist[i] = -dist[i]


@njit(cache=True, nogil=True, parallel=True)
def sign_through_caps(mesh, caps, beta, boxes, points, order, dist, caps_dist, flip, depth):
    """Negate ``dist`` at the points inside the open mesh closed by ``caps`` (module docstring). ``mesh`` and
    ``caps`` are ``(triangles, left, start, count, expansion)`` of their trees, ``caps_dist`` the points'
    distances to the caps, ``depth`` the larger tree depth."""
    n = order.shape[0]
    beta2 = beta * beta
    both = np.minimum(dist, caps_dist)  # (NaN where the point is not finite)
    chain, seeds, n_chains = _chains(boxes, points, order, both)
    whole = np.zeros(n_chains)  # winding number of mesh + caps, an integer
    known = np.zeros(n_chains, dtype=np.bool_)
    for c in prange(n_chains):
        i = seeds[c]
        if both[i] > 0.0:
            stack = np.empty(depth + 2, dtype=np.int64)
            x, y, z = points[i, 0], points[i, 1], points[i, 2]
            whole[c] = _integer_capped(mesh, caps, beta2, x, y, z, stack)
            known[c] = True
    for o in prange(n):
        i = order[o]
        if not dist[i] > 0.0:
            continue
        stack = np.empty(depth + 2, dtype=np.int64)
        x, y, z = points[i, 0], points[i, 1], points[i, 2]
        if chain[o] >= 0 and known[chain[o]]:
            w = whole[chain[o]] - winding_fast_one(caps[0], caps[1], caps[2], caps[3], caps[4], beta2, x, y, z, stack)
        else:  # on a cap: the mesh's own winding number
            w = winding_fast_one(mesh[0], mesh[1], mesh[2], mesh[3], mesh[4], beta2, x, y, z, stack)
        if flip * w > 0.5:
            dist[i] = -dist[i]
