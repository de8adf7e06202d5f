"""Face and cell geometry of a polyhedral mesh, with OpenFOAM's definitions.

Faces: a triangle's centre is its centroid and its area vector half the cross product of
two edges. A larger face is cut into a fan of triangles about the mean of its points;
its area vector is the sum of the triangles' area vectors and its centre the mean of the
triangles' centroids weighted by their area magnitudes. (For a planar face this is the
exact centroid; for a warped one it is the convention OpenFOAM's results depend on.)

Cells: a first guess of the centre is the mean of the cell's face centres. Each face
with that point as apex is a pyramid of volume ``A . (c_f - apex) / 3`` (``A`` the face
area vector as the cell sees it: +A for the owner, -A for the neighbour) and centroid
``3/4 c_f + 1/4 apex``. The cell volume is the sum of its pyramid volumes, the cell
centre the volume-weighted mean of the pyramid centroids (the guess where the volume is
zero).

The plain NumPy versions in ``reference.py`` say the same thing without loops.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: Below this the face is degenerate: the centre is the mean of its points, the area zero.
TINY_AREA = 1e-150  # about the square root of the smallest normal double
TINY_VOLUME = 1e-300


def _check_faces(points, face_offsets, face_points):
    points = np.ascontiguousarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be (P, 3), got shape {points.shape}")
    face_offsets = np.ascontiguousarray(face_offsets, dtype=np.int64)
    face_points = np.ascontiguousarray(face_points, dtype=np.int64)
    if face_offsets.ndim != 1 or len(face_offsets) < 1:
        raise ValueError("face_offsets must be a 1-d array of F + 1 offsets")
    if face_offsets[0] != 0 or face_offsets[-1] != len(face_points) or np.any(np.diff(face_offsets) < 3):
        raise ValueError("face_offsets must start at 0, end at len(face_points) and give every face >= 3 points")
    if len(face_points) and (face_points.min() < 0 or face_points.max() >= len(points)):
        raise ValueError(f"face_points holds labels outside 0..{len(points) - 1}")
    return points, face_offsets, face_points


def face_centres_areas(points, face_offsets, face_points) -> tuple[np.ndarray, np.ndarray]:
    """Face centres (F, 3) and area vectors (F, 3) of CSR faces (``face_offsets`` (F+1,),
    ``face_points``); the area vector points along the right-hand rule of the point order."""
    points, face_offsets, face_points = _check_faces(points, face_offsets, face_points)
    n = len(face_offsets) - 1
    centres = np.empty((n, 3), np.float64)
    areas = np.empty((n, 3), np.float64)
    _face_kernel(points, face_offsets, face_points, centres, areas)
    return centres, areas


def cell_centres_volumes(face_centres, face_areas, owner, neighbour, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (C, 3) and volumes (C,) from face centres and area vectors (F, 3),
    ``owner`` (F,) and ``neighbour`` (the first len(neighbour) faces are internal)."""
    fc = np.ascontiguousarray(face_centres, dtype=np.float64)
    fa = np.ascontiguousarray(face_areas, dtype=np.float64)
    owner = np.ascontiguousarray(owner, dtype=np.int64)
    neighbour = np.ascontiguousarray(neighbour, dtype=np.int64)
    if fc.ndim != 2 or fc.shape[1] != 3 or fa.shape != fc.shape:
        raise ValueError(f"face_centres and face_areas must both be (F, 3), got {fc.shape} and {fa.shape}")
    if owner.shape != (len(fc),) or neighbour.ndim != 1 or len(neighbour) > len(fc):
        raise ValueError(f"owner must be (F,) = ({len(fc)},) and neighbour at most F long")
    for name, arr in (("owner", owner), ("neighbour", neighbour)):
        if len(arr) and (arr.min() < 0 or arr.max() >= n_cells):
            raise ValueError(f"{name} holds labels outside 0..{n_cells - 1}")
    centres = np.empty((n_cells, 3), np.float64)
    volumes = np.empty(n_cells, np.float64)
    _cell_kernel(fc, fa, owner, neighbour, centres, volumes)
    return centres, volumes


def mesh_geometry(points, face_offsets, face_points, owner, neighbour, n_cells: int):
    """(cell centres, cell volumes, face centres, face area vectors) of a whole mesh."""
    fc, fa = face_centres_areas(points, face_offsets, face_points)
    cc, cv = cell_centres_volumes(fc, fa, owner, neighbour, n_cells)
    return cc, cv, fc, fa


@njit(cache=True, nogil=True, parallel=True)
def _face_kernel(points, offsets, labels, centres, areas):
    for f in prange(offsets.shape[0] - 1):
        s = offsets[f]
        n = offsets[f + 1] - s
        if n == 3:
            a = labels[s]
            b = labels[s + 1]
            c = labels[s + 2]
            e1x = points[b, 0] - points[a, 0]
            e1y = points[b, 1] - points[a, 1]
            e1z = points[b, 2] - points[a, 2]
            e2x = points[c, 0] - points[a, 0]
            e2y = points[c, 1] - points[a, 1]
            e2z = points[c, 2] - points[a, 2]
            for d in range(3):
                centres[f, d] = (points[a, d] + points[b, d] + points[c, d]) / 3.0
            areas[f, 0] = 0.5 * (e1y * e2z - e1z * e2y)
            areas[f, 1] = 0.5 * (e1z * e2x - e1x * e2z)
            areas[f, 2] = 0.5 * (e1x * e2y - e1y * e2x)
            continue
        mx = 0.0
        my = 0.0
        mz = 0.0
        for k in range(n):
            p = labels[s + k]
            mx += points[p, 0]
            my += points[p, 1]
            mz += points[p, 2]
        mx /= n
        my /= n
        mz /= n
        snx = 0.0
        sny = 0.0
        snz = 0.0
        sa = 0.0
        scx = 0.0
        scy = 0.0
        scz = 0.0
        for k in range(n):
            p = labels[s + k]
            q = labels[s + (k + 1) % n]
            # twice the area vector of triangle (p, q, mean) and three times its centroid
            ex = points[q, 0] - points[p, 0]
            ey = points[q, 1] - points[p, 1]
            ez = points[q, 2] - points[p, 2]
            gx = mx - points[p, 0]
            gy = my - points[p, 1]
            gz = mz - points[p, 2]
            nx = ey * gz - ez * gy
            ny = ez * gx - ex * gz
            nz = ex * gy - ey * gx
            a = np.sqrt(nx * nx + ny * ny + nz * nz)
            snx += nx
            sny += ny
            snz += nz
            sa += a
            scx += a * (points[p, 0] + points[q, 0] + mx)
            scy += a * (points[p, 1] + points[q, 1] + my)
            scz += a * (points[p, 2] + points[q, 2] + mz)
        if sa < TINY_AREA:
            centres[f, 0] = mx
            centres[f, 1] = my
            centres[f, 2] = mz
            areas[f, 0] = 0.0
            areas[f, 1] = 0.0
            areas[f, 2] = 0.0
        else:
            centres[f, 0] = scx / (3.0 * sa)
            centres[f, 1] = scy / (3.0 * sa)
            centres[f, 2] = scz / (3.0 * sa)
            areas[f, 0] = 0.5 * snx
            areas[f, 1] = 0.5 * sny
            areas[f, 2] = 0.5 * snz


@njit(cache=True, nogil=True)
def _cell_kernel(fc, fa, owner, neighbour, centres, volumes):
    n_cells = centres.shape[0]
    n_int = neighbour.shape[0]
    est = np.zeros((n_cells, 3), np.float64)
    count = np.zeros(n_cells, np.int64)
    for f in range(owner.shape[0]):
        c = owner[f]
        for d in range(3):
            est[c, d] += fc[f, d]
        count[c] += 1
    for f in range(n_int):
        c = neighbour[f]
        for d in range(3):
            est[c, d] += fc[f, d]
        count[c] += 1
    for c in range(n_cells):
        if count[c] > 0:
            for d in range(3):
                est[c, d] /= count[c]
    for c in range(n_cells):
        volumes[c] = 0.0
        for d in range(3):
            centres[c, d] = 0.0
    # 3 x pyramid volume and volume-weighted pyramid centroids, owner side then neighbour side
    for f in range(owner.shape[0]):
        c = owner[f]
        v3 = fa[f, 0] * (fc[f, 0] - est[c, 0]) + fa[f, 1] * (fc[f, 1] - est[c, 1]) + fa[f, 2] * (fc[f, 2] - est[c, 2])
        for d in range(3):
            centres[c, d] += v3 * (0.75 * fc[f, d] + 0.25 * est[c, d])
        volumes[c] += v3
    for f in range(n_int):
        c = neighbour[f]
        v3 = fa[f, 0] * (est[c, 0] - fc[f, 0]) + fa[f, 1] * (est[c, 1] - fc[f, 1]) + fa[f, 2] * (est[c, 2] - fc[f, 2])
        for d in range(3):
            centres[c, d] += v3 * (0.75 * fc[f, d] + 0.25 * est[c, d])
        volumes[c] += v3
    for c in range(n_cells):
        if abs(volumes[c]) > TINY_VOLUME:
            for d in range(3):
                centres[c, d] /= volumes[c]
        else:
            for d in range(3):
                centres[c, d] = est[c, d]
        volumes[c] /= 3.0


# -- cells as VTK polyhedra ---------------------------------------------------------------


def cell_face_csr(owner, neighbour, n_cells: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (C+1,), faces) of every cell; a face is stored as ``f`` for its owner and
    ``-(f + 1)`` for its neighbour (so the face is reversed there, to point outward)."""
    owner = np.ascontiguousarray(owner, dtype=np.int64)
    neighbour = np.ascontiguousarray(neighbour, dtype=np.int64)
    offsets = np.zeros(n_cells + 1, np.int64)
    faces = np.empty(len(owner) + len(neighbour), np.int64)
    _cell_faces_kernel(owner, neighbour, offsets, faces)
    return offsets, faces


@njit(cache=True, nogil=True)
def _cell_faces_kernel(owner, neighbour, offsets, faces):
    n_cells = offsets.shape[0] - 1
    for f in range(owner.shape[0]):
        offsets[owner[f] + 1] += 1
    for f in range(neighbour.shape[0]):
        offsets[neighbour[f] + 1] += 1
    for c in range(n_cells):
        offsets[c + 1] += offsets[c]
    fill = offsets[:-1].copy()
    for f in range(owner.shape[0]):
        c = owner[f]
        faces[fill[c]] = f
        fill[c] += 1
    for f in range(neighbour.shape[0]):
        c = neighbour[f]
        faces[fill[c]] = -(f + 1)
        fill[c] += 1


def polyhedra(cell_start: int, cell_end: int, cell_offsets, cell_faces, face_offsets, face_points, n_points: int):
    """VTK polyhedron streams for cells ``cell_start .. cell_end-1``.

    Returns (global point labels used (P,), stream, stream offsets (n,)) where the stream
    holds per cell ``nFaces, nPts, ids..., nPts, ids...`` with local point ids (indices
    into the returned point labels), faces oriented outward.
    """
    if not 0 <= cell_start <= cell_end <= len(cell_offsets) - 1:
        raise ValueError(f"cell range {cell_start}..{cell_end} outside 0..{len(cell_offsets) - 1}")
    local = np.full(n_points, -1, np.int64)
    return _polyhedra_kernel(cell_start, cell_end, cell_offsets, cell_faces, face_offsets, face_points, local)


@njit(cache=True, nogil=True)
def _polyhedra_kernel(c0, c1, cell_offsets, cell_faces, face_offsets, face_points, local):
    n = c1 - c0
    size = 0
    for c in range(c0, c1):
        size += 1
        for k in range(cell_offsets[c], cell_offsets[c + 1]):
            f = cell_faces[k]
            if f < 0:
                f = -f - 1
            size += 1 + face_offsets[f + 1] - face_offsets[f]
    stream = np.empty(size, np.int64)
    starts = np.empty(n, np.int64)
    used = np.empty(size, np.int64)
    n_used = 0
    i = 0
    for c in range(c0, c1):
        starts[c - c0] = i
        stream[i] = cell_offsets[c + 1] - cell_offsets[c]
        i += 1
        for k in range(cell_offsets[c], cell_offsets[c + 1]):
            f = cell_faces[k]
            flip = f < 0
            if flip:
                f = -f - 1
            s = face_offsets[f]
            m = face_offsets[f + 1] - s
            stream[i] = m
            i += 1
            for j in range(m):
                # the neighbour sees the face reversed: first point kept, order flipped
                p = face_points[s + ((m - j) % m if flip else j)]
                if local[p] < 0:
                    local[p] = n_used
                    used[n_used] = p
                    n_used += 1
                stream[i] = local[p]
                i += 1
    points = used[:n_used].copy()
    for j in range(n_used):
        local[points[j]] = -1
    return points, stream, starts
