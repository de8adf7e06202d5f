"""CUDA variants of the spatial kernels: signed and unsigned distances, winding numbers, SDF grids.

Same names, arguments and results as :mod:`.distance`, :mod:`.winding` and :mod:`.grid`: distances,
closest points and winding numbers to rounding (float64 throughout), the same signs, the same face ids
except between equally near faces. The tree is built once on the host by :func:`.bvh.build_bvh` and
its arrays copied to the device once per mesh (:class:`DeviceMesh`), then reused for every batch of
points; each GPU thread walks it for one point with a stack in its local memory.

The per-point code is the CPU kernels' own: their Python source compiled a second time for the GPU
(:func:`_on_device`), so the geometry (closest point on a triangle, box pruning, solid angles, the
far-field expansion) is written once. What differs is the schedule: the CPU shares work between
neighbouring points (warm starts from the previous point's triangle, one winding number per chain of
points on the same side); a GPU thread has no previous point, so each point is searched cold and gets
its own winding number at the sign accuracy the CPU uses (``WINDING_ACCURACY``). Threads take the
points in Morton order, so a warp's points walk the same part of the tree. An open mesh whose signs
the CPU finds through caps (:func:`.distance.sign_caps`) gets its unsigned distances here and its
signs from the CPU's :func:`.distance.sign_points` (the caps' winding number per point, on the host),
so both give the same signs wherever the winding number is near 0.5.

Needs numba-cuda (the plugin's ``cuda`` extra): only the CUDA variant of an encoder imports this
module, never ``kernels/__init__``.
"""

from __future__ import annotations

import math
import types

import numpy as np
from hpcprep.cuda_device import SIMULATOR, add, mul
from numba import cuda

from . import compare as _compare
from . import distance as _distance
from . import grid as _grid_cpu
from . import winding as _winding
from .bvh import BVH, as_points, mesh_bvh, morton_order
from .closed import is_closed
from .distance import WINDING_ACCURACY, orientation_flip, search_bounds
from .grid import _bounds, _shape
from .winding import DEFAULT_ACCURACY, tree_depth

#: Threads per block: a multiple of the warp size; BVH walks diverge, so blocks stay small.
THREADS = 1 if SIMULATOR else 128  # no kernel here shares anything within a block
#: Entries of a thread's traversal stack (1 KiB of local memory a thread with its distances); a mesh
#: whose tree is deeper than ``STACK - 2`` is answered by the CPU kernels (:class:`DeviceMesh`).
STACK = 64


def _on_device(kernel, **callees):
    """A CPU kernel's Python source compiled as a CUDA device function, with the kernels it calls
    replaced by their device versions (``name=device_function``)."""
    py = getattr(kernel, "py_func", kernel)
    scope = {**py.__globals__, **callees}
    clone = types.FunctionType(py.__code__, scope, py.__name__, py.__defaults__, py.__closure__)
    return cuda.jit(device=True)(clone)


_larger = _on_device(_compare.larger)
_box_gap = _on_device(_compare.box_gap, larger=_larger)
_seg = _on_device(_distance._seg)
_has_normal = _on_device(_distance._has_normal)
_closest = _on_device(_distance.closest_on_triangle, _seg=_seg, _has_normal=_has_normal)
_box_d2 = _on_device(_distance.box_d2, box_gap=_box_gap)
_leaf_d2 = _on_device(_distance.leaf_d2, larger=_larger)
_nearest = _on_device(
    _distance.nearest_one, closest_on_triangle=_closest, box_d2=_box_d2, leaf_d2=_leaf_d2, larger=_larger
)
_solid_angle = _on_device(_winding.solid_angle)
_far_field = _on_device(_winding._far_field)
_winding_fast = _on_device(_winding.winding_fast_one, solid_angle=_solid_angle, _far_field=_far_field)
_winding_exact = _on_device(_winding.winding_exact_one, solid_angle=_solid_angle)


@cuda.jit(device=True)
def _signed_at(tri, tri_bounds, leaf_bounds, boxes, left, start, count, ex, signed, flip, beta2, px, py, pz):
    """``(distance, nearest BVH triangle, closest point)`` at one point, negative inside when ``signed``."""
    stack = cuda.local.array(STACK, np.int64)
    stack_d = cuda.local.array(STACK, np.float64)
    d2, t, cx, cy, cz = _nearest(
        tri, tri_bounds, leaf_bounds, boxes, left, start, count, px, py, pz, -1, stack, stack_d
    )
    d = math.sqrt(d2)
    if signed and d > 0.0:
        w = _winding_fast(tri, left, start, count, ex, beta2, px, py, pz, stack)
        if flip * w > 0.5:
            d = -d
    return d, t, cx, cy, cz


@cuda.jit
def _distances(
    tri, tri_bounds, leaf_bounds, boxes, left, start, count, perm, ex, points, order, signed, flip, beta2, out
):
    """Thread ``k`` answers point ``order[k]``: ``out[i] = (distance, face id, closest x, y, z)``."""
    k = cuda.grid(1)
    if k >= order.shape[0]:
        return
    i = order[k]
    px, py, pz = points[i, 0], points[i, 1], points[i, 2]
    if not (math.isfinite(px) and math.isfinite(py) and math.isfinite(pz)):
        for c in range(5):
            out[i, c] = np.nan
        return
    d, t, cx, cy, cz = _signed_at(
        tri, tri_bounds, leaf_bounds, boxes, left, start, count, ex, signed, flip, beta2, px, py, pz
    )
    out[i, 0] = d
    out[i, 1] = perm[t]
    out[i, 2] = cx
    out[i, 3] = cy
    out[i, 4] = cz


@cuda.jit
def _windings(tri, left, start, count, ex, points, order, exact, beta2, out):
    k = cuda.grid(1)
    if k >= order.shape[0]:
        return
    i = order[k]
    qx, qy, qz = points[i, 0], points[i, 1], points[i, 2]
    if not (math.isfinite(qx) and math.isfinite(qy) and math.isfinite(qz)):
        out[i] = np.nan
    elif exact:
        out[i] = _winding_exact(tri, qx, qy, qz)
    else:
        stack = cuda.local.array(STACK, np.int64)
        out[i] = _winding_fast(tri, left, start, count, ex, beta2, qx, qy, qz, stack)


@cuda.jit
def _grid(tri, tri_bounds, leaf_bounds, boxes, left, start, count, ex, origin, spacing, flip, beta2, out):
    """One thread per node, ``k`` fastest (neighbouring threads, neighbouring nodes)."""
    m = cuda.grid(1)
    nx, ny, nz = out.shape
    if m >= nx * ny * nz:
        return
    i = m // (ny * nz)
    j = (m // nz) % ny
    k = m % nz
    # the CPU's node positions exactly (a fused multiply-add would move nodes by an ulp)
    px = add(origin[0], mul(float(i), spacing[0]))
    py = add(origin[1], mul(float(j), spacing[1]))
    pz = add(origin[2], mul(float(k), spacing[2]))
    d, _, _, _, _ = _signed_at(
        tri, tri_bounds, leaf_bounds, boxes, left, start, count, ex, True, flip, beta2, px, py, pz
    )
    out[i, j, k] = d


def _blocks(n: int) -> int:
    return (n + THREADS - 1) // THREADS


class DeviceMesh:
    """A mesh and its tree on the GPU, for any number of point batches.

    ``DeviceMesh(vertices, faces, bvh=None)`` validates the mesh as the CPU kernels do, builds the tree
    on the host (or takes ``bvh``) and copies its arrays to the device once. A tree too deep for a
    thread's stack (``on_cpu``) is queried with the CPU kernels, with the same results.
    """

    def __init__(self, vertices, faces, bvh: BVH | None = None):
        v, f, bvh = mesh_bvh(vertices, faces, bvh)
        self.vertices, self.faces, self.bvh = v, f, bvh
        self.n_faces = len(f)
        # A tree deeper than a thread's stack (rare: a few levels per doubling of the triangle count,
        # 19 for the 116 062-triangle DTC hull) is answered by the CPU kernels instead.
        self.on_cpu = bool(len(f)) and tree_depth(bvh.left, bvh.right) + 2 > STACK
        self.flip = orientation_flip(bvh)
        self._closed = None  # is_closed, found on the first winding-number call
        self._caps = None  # (the sign's caps, see _sign_caps), found on the first signed query
        if self.on_cpu:
            return
        self._tree = tuple(
            cuda.to_device(np.ascontiguousarray(a))
            for a in (bvh.triangles, *search_bounds(bvh), bvh.boxes, bvh.left, bvh.start, bvh.count)
        )
        self._perm = cuda.to_device(bvh.perm)
        self._ex = cuda.to_device(np.ascontiguousarray(bvh.expansion))

    def _query(self, points, signed: bool):
        if self.n_faces == 0:
            raise ValueError("the mesh has no faces: distances to it are undefined")
        p = as_points(points)
        if len(p) == 0:
            return np.zeros(0), np.zeros((0, 3)), np.zeros(0, dtype=np.int64)
        if self.on_cpu:
            query = _distance.signed_distance if signed else _distance.unsigned_distance
            return query(self.vertices, self.faces, p, bvh=self.bvh)
        out = cuda.device_array((len(p), 5))
        order = morton_order(p)
        caps = self._sign_caps() if signed else None
        _distances[_blocks(len(p)), THREADS](
            *self._tree, self._perm, self._ex, cuda.to_device(p), cuda.to_device(order),
            signed and caps is None, self.flip, WINDING_ACCURACY**2, out,
        )  # fmt: skip
        res = out.copy_to_host()
        fid = np.where(np.isnan(res[:, 1]), -1, np.nan_to_num(res[:, 1])).astype(np.int64)
        dist = res[:, 0].copy()
        if caps is not None:
            _distance.sign_points(self.vertices, self.bvh, caps, p, order, dist)
        return dist, np.ascontiguousarray(res[:, 2:]), fid

    def _sign_caps(self):
        """The caps through which the CPU signs this open mesh's points (``distance.sign_caps``), else None."""
        if self._caps is None:
            caps = _distance.sign_caps(self.vertices, self.faces)
            self._caps = (caps,) if caps is not None and len(caps[1]) else (None,)
        return self._caps[0]

    def unsigned_distance(self, points):
        """As :func:`.distance.unsigned_distance`: ``(distance, closest_points, face_ids)``."""
        return self._query(points, False)

    def signed_distance(self, points):
        """As :func:`.distance.signed_distance`: negative inside (winding number > 0.5)."""
        return self._query(points, True)

    def winding_number(self, points, accuracy: float | None = DEFAULT_ACCURACY) -> np.ndarray:
        """As :func:`.winding.winding_number` (``accuracy=None``: every triangle summed exactly)."""
        if accuracy is not None and not accuracy > 1.0:
            raise ValueError(f"accuracy must be None (exact) or a number > 1, got {accuracy}")
        p = as_points(points)
        if len(p) == 0:
            return np.zeros(0)
        if self.on_cpu:
            return _winding.winding_number(self.vertices, self.faces, p, accuracy, bvh=self.bvh)
        if self._closed is None:
            self._closed = is_closed(self.vertices, self.faces)
        return _winding.snapped(self._windings, p, accuracy, self._closed, self.bvh.triangles)

    def _windings(self, p, accuracy):
        tri, _, _, _, left, start, count = self._tree
        out = cuda.device_array(len(p))
        beta2 = 0.0 if accuracy is None else float(accuracy) ** 2
        _windings[_blocks(len(p)), THREADS](
            tri, left, start, count, self._ex, cuda.to_device(p), cuda.to_device(morton_order(p)),
            accuracy is None, beta2, out,
        )  # fmt: skip
        return out.copy_to_host()

    def sdf_grid(self, resolution, bounds=None, padding: float = 0.1):
        """As :func:`.grid.sdf_grid`: ``(grid, origin, spacing)``."""
        if self.n_faces == 0:
            raise ValueError("the mesh has no faces: a distance field is undefined")
        if self.on_cpu:
            return _grid_cpu.sdf_grid(self.vertices, self.faces, resolution, bounds, padding, bvh=self.bvh)
        shape = _shape(resolution)
        lo, hi = _bounds(self.vertices, self.faces, bounds, padding)
        spacing = (hi - lo) / (np.asarray(shape, dtype=np.float64) - 1.0)
        out = cuda.device_array(shape)
        _grid[_blocks(math.prod(shape)), THREADS](
            *self._tree, self._ex, cuda.to_device(lo), cuda.to_device(spacing), self.flip, WINDING_ACCURACY**2, out
        )
        grid = out.copy_to_host()
        caps = self._sign_caps()
        if caps is not None:  # signed again on the host, as the CPU signs it
            nodes = _grid_cpu._nodes(shape, lo, spacing)
            np.abs(grid, out=grid)
            _distance.sign_points(self.vertices, self.bvh, caps, nodes, morton_order(nodes), grid.reshape(-1))
        return grid, lo, spacing


def unsigned_distance(vertices, faces, points, *, bvh: BVH | None = None):
    """As :func:`.distance.unsigned_distance`, on the GPU."""
    return DeviceMesh(vertices, faces, bvh).unsigned_distance(points)


def signed_distance(vertices, faces, points, *, bvh: BVH | None = None):
    """As :func:`.distance.signed_distance`, on the GPU."""
    return DeviceMesh(vertices, faces, bvh).signed_distance(points)


def winding_number(vertices, faces, points, accuracy: float | None = DEFAULT_ACCURACY, *, bvh: BVH | None = None):
    """As :func:`.winding.winding_number`, on the GPU."""
    if accuracy is not None and not accuracy > 1.0:
        raise ValueError(f"accuracy must be None (exact) or a number > 1, got {accuracy}")
    return DeviceMesh(vertices, faces, bvh).winding_number(points, accuracy)


def sdf_grid(vertices, faces, resolution, bounds=None, padding: float = 0.1, *, bvh: BVH | None = None):
    """As :func:`.grid.sdf_grid`, on the GPU."""
    return DeviceMesh(vertices, faces, bvh).sdf_grid(resolution, bounds, padding)


__all__ = ["DeviceMesh", "sdf_grid", "signed_distance", "unsigned_distance", "winding_number"]
