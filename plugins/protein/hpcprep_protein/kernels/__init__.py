"""Numba kernels for proteins: plain functions over arrays, usable without Ray.

- :func:`assign_secondary_structure` — DSSP assignment from a backbone (mkdssp 4.x rules, polyproline II
  included); :func:`assign_model_secondary_structure` — the same for every chain of a model at once, per chain.
- :func:`contact_edges`, :func:`knn_edges`, :func:`distance_map` — residue graphs from (L, 3) coordinates.
- :func:`backbone_dihedrals` — phi, psi, omega in degrees; :func:`chain_breaks` — mkdssp's 2.5 A C-N rule.
- :func:`q8_to_q3` — 8-state to 3-state labels.
"""

from .dssp import (
    DEFAULT_PP_STRETCH,
    assign_model_secondary_structure,
    assign_secondary_structure,
    assign_secondary_structure_codes,
)
from .geometry import MAX_PEPTIDE_BOND, backbone_dihedrals, chain_breaks, contact_edges, distance_map, knn_edges
from .labels import q8_to_q3

__all__ = [
    "DEFAULT_PP_STRETCH",
    "MAX_PEPTIDE_BOND",
    "assign_model_secondary_structure",
    "assign_secondary_structure",
    "assign_secondary_structure_codes",
    "backbone_dihedrals",
    "chain_breaks",
    "contact_edges",
    "distance_map",
    "knn_edges",
    "q8_to_q3",
]
