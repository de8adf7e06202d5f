"""Regions a closed surface cannot cross: the cells of a grid that no triangle touches, in connected pieces.

Off a closed mesh the winding number is an integer that changes only across the surface, so it is the same at
every point of a connected region that holds no surface point. :func:`free_regions` lays a grid of cubic cells
over the mesh's bounding box, marks every cell a triangle may touch (its bounding box's cells; for a triangle
spanning more than ``SMALL_SPAN`` cells, only those its plane passes through), and labels the connected pieces
of the other cells (face neighbours): every point of one piece has the same winding number. Pieces that reach
the grid's faces join the space outside the mesh's box, where the winding number is 0; each other piece needs
one evaluation, at the centre of one of its cells. A point in a marked cell, or a point that is not finite, is
evaluated as before.

Rounding cannot hide a triangle from a cell: a point's cell and the cells a triangle marks come from the same
monotone map ``(x - lo) / h`` of the coordinates, and the marked ranges are widened by ``_MARGIN`` of a cell (far
more than the map's rounding error), so a piece's cells together with that margin hold no surface point.

A grid costs about 0.1 µs per triangle (``CELLS_PER_TRIANGLE`` cells each) and saves a hierarchical evaluation,
about 1.3 µs on the 116 062-triangle DTC hull, for every point in a free cell (about 9 in 10 of the points in
that hull's padded box); :func:`worth_a_grid` asks for at least ``MIN_POINTS_PER_TRIANGLE`` points per triangle.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

CELLS_PER_TRIANGLE = 1.0
"""Grid cells per triangle: about one cell in five marked on the tutorial hulls, and nine points in ten free."""

MIN_CELLS = 4096
"""At least this many cells (16 cubed), so a mesh of a few large triangles still gets free cells inside it."""

MAX_CELLS = 1 << 22
"""At most this many cells (about 50 MB of labels and scratch), whatever the triangle count."""

MIN_POINTS_PER_TRIANGLE = 0.25
"""A grid is built only for at least this many query points per triangle: below that it costs more than the
evaluations it saves."""

SMALL_SPAN = 8
"""A triangle whose box spans at most this many cells marks them all; a larger one only those its plane crosses."""

_MARGIN = 1e-6
"""Widening of every marked range, in cells: covers the rounding of the coordinate-to-cell map."""

OUTSIDE = 0
"""Label of the free cells connected to the space outside the mesh's box (winding number 0)."""

MARKED = -1
"""Label of a cell a triangle may touch, and :func:`region_of`'s answer for a point that needs an evaluation."""


class FreeRegions(NamedTuple):
    lo: np.ndarray  # (3,) the mesh's smallest coordinates: the grid's corner
    hi: np.ndarray  # (3,) the mesh's largest coordinates
    h: float  # the cells' edge
    dims: np.ndarray  # (3,) int64 cells along each axis
    label: np.ndarray  # (cells,) int32: MARKED, OUTSIDE or the piece 1, 2, ... (flat index (i * ny + j) * nz + k)
    seeds: np.ndarray  # (pieces,) int32: one cell of each piece, seeds[0] for OUTSIDE (unused)


def worth_a_grid(n_triangles: int, n_points: int) -> bool:
    return n_triangles > 0 and n_points >= MIN_POINTS_PER_TRIANGLE * n_triangles


def free_regions(triangles: np.ndarray) -> FreeRegions:
    """The grid of a mesh given as its triangles' vertex positions, shape (F, 3, 3) (``BVH.triangles``)."""
    lo, hi = _bounds(triangles)
    ext = hi - lo
    # Cubic cells; a flat or needle-like box still gets a finite cell (the volume of the box with each extent at
    # least a thousandth of the largest).
    longest = float(ext.max())
    cells = min(MAX_CELLS, max(MIN_CELLS, CELLS_PER_TRIANGLE * len(triangles)))
    volume = float(np.prod(np.maximum(ext, 1e-3 * longest)))
    h = (volume / cells) ** (1.0 / 3.0) if longest > 0.0 else 1.0
    dims = (np.floor(ext / h) + 1).astype(np.int64)  # the last cell reaches past hi
    label, seeds = _label(triangles, lo, h, dims)
    return FreeRegions(lo, hi, h, dims, label, seeds)


@njit(cache=True, nogil=True)
def _bounds(triangles):
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for t in range(triangles.shape[0]):
        for v in range(3):
            for d in range(3):
                lo[d] = min(lo[d], triangles[t, v, d])
                hi[d] = max(hi[d], triangles[t, v, d])
    return lo, hi


@njit(cache=True, nogil=True)
def _mark(triangles, lo, h, dims):
    ny, nz = dims[1], dims[2]
    inv = 1.0 / h
    marked = np.zeros(dims[0] * ny * nz, dtype=np.bool_)
    first = np.empty(3, dtype=np.int64)
    last = np.empty(3, dtype=np.int64)
    for t in range(triangles.shape[0]):
        for d in range(3):
            a = min(triangles[t, 0, d], triangles[t, 1, d], triangles[t, 2, d])
            b = max(triangles[t, 0, d], triangles[t, 1, d], triangles[t, 2, d])
            first[d] = max(0, int(math.floor((a - lo[d]) * inv - _MARGIN)))
            last[d] = min(dims[d] - 1, int(math.floor((b - lo[d]) * inv + _MARGIN)))
        if (last[0] - first[0] + 1) * (last[1] - first[1] + 1) * (last[2] - first[2] + 1) <= SMALL_SPAN:
            for i in range(first[0], last[0] + 1):
                for j in range(first[1], last[1] + 1):
                    for k in range(first[2], last[2] + 1):
                        marked[(i * ny + j) * nz + k] = True
        else:
            _mark_plane(triangles, t, lo, h, first, last, ny, nz, marked)
    return marked


@njit(cache=True, nogil=True)
def _mark_plane(triangles, t, lo, h, first, last, ny, nz, marked):
    """Mark the cells of a large triangle's box that its plane ``n.x = n.a`` crosses: those whose centre is within
    half the cell's extent along ``n`` (widened by the margin and the rounding of ``n.x``) of it."""
    ax, ay, az = triangles[t, 0, 0], triangles[t, 0, 1], triangles[t, 0, 2]
    ux, uy, uz = triangles[t, 1, 0] - ax, triangles[t, 1, 1] - ay, triangles[t, 1, 2] - az
    vx, vy, vz = triangles[t, 2, 0] - ax, triangles[t, 2, 1] - ay, triangles[t, 2, 2] - az
    nx, ny_, nz_ = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    norm1 = abs(nx) + abs(ny_) + abs(nz_)
    reach = (0.5 + 2.0 * _MARGIN) * h * norm1 + 1e-12 * norm1 * (abs(ax) + abs(ay) + abs(az) + h)
    offset = nx * ax + ny_ * ay + nz_ * az
    for i in range(first[0], last[0] + 1):
        cx = lo[0] + (i + 0.5) * h
        for j in range(first[1], last[1] + 1):
            cy = lo[1] + (j + 0.5) * h
            for k in range(first[2], last[2] + 1):
                cz = lo[2] + (k + 0.5) * h
                if abs(nx * cx + ny_ * cy + nz_ * cz - offset) <= reach:
                    marked[(i * ny + j) * nz + k] = True


@njit(cache=True, nogil=True)
def _label(triangles, lo, h, dims):
    nx, ny, nz = dims[0], dims[1], dims[2]
    marked = _mark(triangles, lo, h, dims)
    n = nx * ny * nz
    label = np.full(n, -2, dtype=np.int32)  # -2: free, not yet reached
    queue = np.empty(n, dtype=np.int32)
    seeds = np.zeros(n + 1, dtype=np.int32)
    for c in range(n):
        if marked[c]:
            label[c] = MARKED
    n_pieces = 1  # OUTSIDE first: every free cell on the grid's faces, then the pieces the rest fall into
    for inner in (False, True):
        for c in range(n):
            if label[c] != -2:
                continue
            i, j, k = c // (ny * nz), (c // nz) % ny, c % nz
            if not inner and not (i == 0 or j == 0 or k == 0 or i == nx - 1 or j == ny - 1 or k == nz - 1):
                continue
            piece = OUTSIDE
            if inner:
                piece = n_pieces
                seeds[piece] = c
                n_pieces += 1
            label[c] = piece
            head, tail = 0, 1
            queue[0] = c
            while head < tail:
                cc = queue[head]
                head += 1
                i, j, k = cc // (ny * nz), (cc // nz) % ny, cc % nz
                for side in range(6):
                    ii, jj, kk = i, j, k
                    if side == 0:
                        ii -= 1
                    elif side == 1:
                        ii += 1
                    elif side == 2:
                        jj -= 1
                    elif side == 3:
                        jj += 1
                    elif side == 4:
                        kk -= 1
                    else:
                        kk += 1
                    if 0 <= ii < nx and 0 <= jj < ny and 0 <= kk < nz:
                        nc = (ii * ny + jj) * nz + kk
                        if label[nc] == -2:
                            label[nc] = piece
                            queue[tail] = nc
                            tail += 1
    return label, seeds[:n_pieces]


@njit(cache=True, nogil=True)
def _lookup(points, lo, hi, h, dims, label):
    ny, nz = dims[1], dims[2]
    inv = 1.0 / h
    out = np.empty(points.shape[0], dtype=np.int64)
    for p in range(points.shape[0]):
        x, y, z = points[p, 0], points[p, 1], points[p, 2]
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            out[p] = MARKED
        elif x < lo[0] or y < lo[1] or z < lo[2] or x > hi[0] or y > hi[1] or z > hi[2]:
            out[p] = OUTSIDE  # outside the mesh's box
        else:
            i = min(dims[0] - 1, int((x - lo[0]) * inv))
            j = min(dims[1] - 1, int((y - lo[1]) * inv))
            k = min(dims[2] - 1, int((z - lo[2]) * inv))
            out[p] = label[(i * ny + j) * nz + k]
    return out


def region_of(points: np.ndarray, regions: FreeRegions) -> np.ndarray:
    """Each point's piece (``OUTSIDE`` or 1, 2, ...), or ``MARKED`` where it must be evaluated."""
    r = regions
    return _lookup(points, r.lo, r.hi, r.h, r.dims, r.label)


def seed_points(regions: FreeRegions) -> np.ndarray:
    """The centre of one cell of each inner piece (1, 2, ...), shape (pieces - 1, 3): off the surface."""
    r = regions
    c = r.seeds[1:]
    ny, nz = r.dims[1], r.dims[2]
    idx = np.stack([c // (ny * nz), (c // nz) % ny, c % nz], axis=1)
    return np.ascontiguousarray(r.lo + (idx + 0.5) * r.h)
