"""Geometry kernels: plain functions over NumPy arrays, Numba inside, usable without Ray.

Meshes are ``vertices`` (V, 3) float64 and ``faces`` (F, 3) integer arrays; query points
are (P, 3) float64. Each module keeps a plain NumPy reference (``reference_spatial``,
``reference_mesh``) that the tests compare the compiled kernels against.
"""

from hpcprep.lazy import lazy_attributes

# Imported on first use (a run's driver validates and plans, it calls no kernel): see hpcprep.lazy.
_KERNELS = {
    "BVH": ".bvh",
    "build_bvh": ".bvh",
    "descriptor_length": ".descriptor",
    "shape_descriptor": ".descriptor",
    "signed_distance": ".distance",
    "unsigned_distance": ".distance",
    "sdf_grid": ".grid",
    "check_mesh": ".health",
    "mesh_health": ".health",
    "normalize": ".repair",
    "repair": ".repair",
    "sample_surface": ".sampling",
    "voxelize": ".voxels",
    "winding_number": ".winding",
}
__getattr__, __dir__ = lazy_attributes(__name__, _KERNELS)

__all__ = sorted(_KERNELS)
