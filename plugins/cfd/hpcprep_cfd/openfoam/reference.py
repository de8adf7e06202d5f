"""Plain NumPy/Python versions of the geometry kernels, for the tests.

Same definitions as ``geometry.py`` (see its docstring), written for clarity: a Python
loop over faces, vectorised sums over cells.
"""

from __future__ import annotations

import numpy as np


def face_centres_areas(points, face_offsets, face_points):
    """Vectorised over the faces of each size (all quads of a hex mesh at once)."""
    points = np.asarray(points, dtype=np.float64)
    face_offsets = np.asarray(face_offsets, dtype=np.int64)
    face_points = np.asarray(face_points, dtype=np.int64)
    sizes = np.diff(face_offsets)
    n = len(sizes)
    centres = np.empty((n, 3))
    areas = np.empty((n, 3))
    for m in np.unique(sizes):
        faces = np.flatnonzero(sizes == m)
        idx = face_offsets[faces][:, None] + np.arange(m)[None, :]
        p = points[face_points[idx]]  # (k, m, 3)
        if m == 3:
            centres[faces] = p.sum(axis=1) / 3.0
            areas[faces] = 0.5 * np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
            continue
        mean = p.sum(axis=1) / m
        q = np.roll(p, -1, axis=1)
        tri_n = np.cross(q - p, mean[:, None, :] - p)  # twice each fan triangle's area vector
        tri_a = np.linalg.norm(tri_n, axis=2)
        tri_c3 = p + q + mean[:, None, :]  # three times each triangle's centroid
        sum_a = tri_a.sum(axis=1)
        ok = sum_a >= 1e-150
        safe = np.where(ok, sum_a, 1.0)
        centres[faces] = np.where(ok[:, None], (tri_a[:, :, None] * tri_c3).sum(axis=1) / (3.0 * safe[:, None]), mean)
        areas[faces] = np.where(ok[:, None], 0.5 * tri_n.sum(axis=1), 0.0)
    return centres, areas


def cell_centres_volumes(face_centres, face_areas, owner, neighbour, n_cells):
    fc = np.asarray(face_centres, dtype=np.float64)
    fa = np.asarray(face_areas, dtype=np.float64)
    owner = np.asarray(owner, dtype=np.int64)
    neighbour = np.asarray(neighbour, dtype=np.int64)
    n_int = len(neighbour)
    # every (cell, face, sign) the cell sees: +A for its owner, -A for its neighbour
    cells = np.concatenate([owner, neighbour])
    faces = np.concatenate([np.arange(len(owner)), np.arange(n_int)])
    sign = np.concatenate([np.ones(len(owner)), -np.ones(n_int)])
    count = np.bincount(cells, minlength=n_cells)
    est = np.stack([np.bincount(cells, fc[faces, d], n_cells) for d in range(3)], axis=1)
    est /= np.maximum(count, 1)[:, None]
    apex = est[cells]
    v3 = sign * np.einsum("ij,ij->i", fa[faces], fc[faces] - apex)
    centroid = 0.75 * fc[faces] + 0.25 * apex
    vol3 = np.bincount(cells, v3, n_cells)
    weighted = np.stack([np.bincount(cells, v3 * centroid[:, d], n_cells) for d in range(3)], axis=1)
    ok = np.abs(vol3) > 1e-300
    centres = np.where(ok[:, None], weighted / np.where(ok, vol3, 1.0)[:, None], est)
    return centres, vol3 / 3.0
