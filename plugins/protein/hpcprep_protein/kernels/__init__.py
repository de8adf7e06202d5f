"""Numba kernels for proteins: plain functions over arrays, usable without Ray.

- :func:`assign_secondary_structure` — DSSP assignment from a backbone (mkdssp 4.x rules, polyproline II
  included); :func:`assign_model_secondary_structure` — the same for every chain of a model at once, per chain.
- :func:`contact_edges`, :func:`knn_edges`, :func:`distance_map` — residue graphs from (L, 3) coordinates.
- :func:`backbone_dihedrals` — phi, psi, omega in degrees; :func:`chain_breaks` — mkdssp's 2.5 A C-N rule.
- :func:`q8_to_q3` — 8-state to 3-state labels.
"""

from hpcprep.lazy import lazy_attributes

# Imported on first use (a run's driver validates and plans, it calls no kernel): see hpcprep.lazy.
_KERNELS = {
    "DEFAULT_PP_STRETCH": ".dssp",
    "assign_model_secondary_structure": ".dssp",
    "assign_secondary_structure": ".dssp",
    "assign_secondary_structure_codes": ".dssp",
    "MAX_PEPTIDE_BOND": ".geometry",
    "backbone_dihedrals": ".geometry",
    "chain_breaks": ".geometry",
    "contact_edges": ".geometry",
    "distance_map": ".geometry",
    "knn_edges": ".geometry",
    "q8_to_q3": ".labels",
}
__getattr__, __dir__ = lazy_attributes(__name__, _KERNELS)

__all__ = sorted(_KERNELS)
