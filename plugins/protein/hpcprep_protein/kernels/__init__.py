"""Numba kernels for proteins: plain functions over arrays, usable without Ray.

- :func:`assign_secondary_structure` — DSSP 8-state assignment from one chain's backbone (mkdssp 4.x rules).
- :func:`contact_edges`, :func:`knn_edges`, :func:`distance_map` — residue graphs from (L, 3) coordinates.
- :func:`backbone_dihedrals` — phi, psi, omega in degrees; :func:`chain_breaks` — mkdssp's 2.5 A C-N rule.
- :func:`q8_to_q3` — 8-state to 3-state labels.
"""

from .dssp import assign_secondary_structure, assign_secondary_structure_codes
from .geometry import MAX_PEPTIDE_BOND, backbone_dihedrals, chain_breaks, contact_edges, distance_map, knn_edges
from .labels import q8_to_q3

__all__ = [
    "MAX_PEPTIDE_BOND",
    "assign_secondary_structure",
    "assign_secondary_structure_codes",
    "backbone_dihedrals",
    "chain_breaks",
    "contact_edges",
    "distance_map",
    "knn_edges",
    "q8_to_q3",
]
