"""Geometry kernels: plain functions over NumPy arrays, Numba inside, usable without Ray.

Meshes are ``vertices`` (V, 3) float64 and ``faces`` (F, 3) integer arrays; query points
are (P, 3) float64. Each module keeps a plain NumPy reference (``reference_spatial``,
``reference_mesh``) that the tests compare the compiled kernels against.
"""

from .bvh import BVH, build_bvh
from .descriptor import descriptor_length, shape_descriptor
from .distance import signed_distance, unsigned_distance
from .grid import sdf_grid
from .health import check_mesh, mesh_health
from .repair import normalize, repair
from .sampling import sample_surface
from .voxels import voxelize
from .winding import winding_number

__all__ = [
    "BVH",
    "build_bvh",
    "check_mesh",
    "descriptor_length",
    "mesh_health",
    "normalize",
    "repair",
    "sample_surface",
    "sdf_grid",
    "shape_descriptor",
    "signed_distance",
    "unsigned_distance",
    "voxelize",
    "winding_number",
]
