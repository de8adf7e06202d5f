"""Geometry kernels: plain functions over NumPy arrays, Numba inside, usable without Ray."""
