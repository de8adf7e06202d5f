"""hpcprep-cfd: CFD geometry and OpenFOAM cases to ML-ready encodings, with Numba kernels."""

__version__ = "0.1.0"
