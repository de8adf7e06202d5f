"""Hypothesis property tests of the Numba kernels against plain reference implementations."""
