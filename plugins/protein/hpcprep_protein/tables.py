"""Residue tables: the alphabet, BLOSUM62 and named physico-chemical scales.

Values are the published ones (BLOSUM62: Henikoff & Henikoff 1992; scales as cited per
entry); ``tests/protein/test_encoders.py`` checks them against Biopython's copies.
"""

from __future__ import annotations

import numpy as np

#: The 20 standard amino acids in one-letter alphabetical order; index 20 is unknown ("X").
ALPHABET = "ACDEFGHIKLMNPQRSTVWY"
UNKNOWN = len(ALPHABET)

#: Index of every byte: the 20 letters (either case) -> 0..19, anything else -> 20.
INDEX = np.full(256, UNKNOWN, dtype=np.int8)
for _i, _a in enumerate(ALPHABET):
    INDEX[ord(_a)] = INDEX[ord(_a.lower())] = _i
INDEX.setflags(write=False)

#: BLOSUM62 row of each standard residue, columns in ALPHABET order.
BLOSUM62 = {
    "A": (4, 0, -2, -1, -2, 0, -2, -1, -1, -1, -1, -2, -1, -1, -1, 1, 0, 0, -3, -2),
    "C": (0, 9, -3, -4, -2, -3, -3, -1, -3, -1, -1, -3, -3, -3, -3, -1, -1, -1, -2, -2),
    "D": (-2, -3, 6, 2, -3, -1, -1, -3, -1, -4, -3, 1, -1, 0, -2, 0, -1, -3, -4, -3),
    "E": (-1, -4, 2, 5, -3, -2, 0, -3, 1, -3, -2, 0, -1, 2, 0, 0, -1, -2, -3, -2),
    "F": (-2, -2, -3, -3, 6, -3, -1, 0, -3, 0, 0, -3, -4, -3, -3, -2, -2, -1, 1, 3),
    "G": (0, -3, -1, -2, -3, 6, -2, -4, -2, -4, -3, 0, -2, -2, -2, 0, -2, -3, -2, -3),
    "H": (-2, -3, -1, 0, -1, -2, 8, -3, -1, -3, -2, 1, -2, 0, 0, -1, -2, -3, -2, 2),
    "I": (-1, -1, -3, -3, 0, -4, -3, 4, -3, 2, 1, -3, -3, -3, -3, -2, -1, 3, -3, -1),
    "K": (-1, -3, -1, 1, -3, -2, -1, -3, 5, -2, -1, 0, -1, 1, 2, 0, -1, -2, -3, -2),
    "L": (-1, -1, -4, -3, 0, -4, -3, 2, -2, 4, 2, -3, -3, -2, -2, -2, -1, 1, -2, -1),
    "M": (-1, -1, -3, -2, 0, -3, -2, 1, -1, 2, 5, -2, -2, 0, -1, -1, -1, 1, -1, -1),
    "N": (-2, -3, 1, 0, -3, 0, 1, -3, 0, -3, -2, 6, -2, 0, 0, 1, 0, -3, -4, -2),
    "P": (-1, -3, -1, -1, -4, -2, -2, -3, -1, -3, -2, -2, 7, -1, -2, -1, -1, -2, -4, -3),
    "Q": (-1, -3, 0, 2, -3, -2, 0, -3, 1, -2, 0, 0, -1, 5, 1, 0, -1, -2, -2, -1),
    "R": (-1, -3, -2, 0, -3, -2, 0, -3, 2, -2, -1, 0, -2, 1, 5, -1, -1, -3, -3, -2),
    "S": (1, -1, 0, 0, -2, 0, -1, -2, 0, -2, -1, 1, -1, 0, -1, 4, 1, -2, -3, -2),
    "T": (0, -1, -1, -1, -2, -2, -2, -1, -1, -1, -1, 0, -1, -1, -1, 1, 5, 0, -2, -2),
    "V": (0, -1, -3, -2, -1, -3, -3, 3, -2, 1, 1, -3, -2, -2, -3, -2, 0, 4, -3, -1),
    "W": (-3, -2, -4, -3, 1, -2, -2, -3, -3, -2, -1, -4, -4, -2, -3, -3, -2, -3, 11, 2),
    "Y": (-2, -2, -3, -2, 3, -3, 2, -1, -2, -1, -1, -2, -3, -1, -2, -2, -2, -1, 2, 7),
}

#: Named per-residue scales (value per standard residue; unknown residues get the mean).
SCALES = {
    # Kyte & Doolittle 1982, hydropathy
    "kyte_doolittle": {
        "A": 1.8,
        "C": 2.5,
        "D": -3.5,
        "E": -3.5,
        "F": 2.8,
        "G": -0.4,
        "H": -3.2,
        "I": 4.5,
        "K": -3.9,
        "L": 3.8,
        "M": 1.9,
        "N": -3.5,
        "P": -1.6,
        "Q": -3.5,
        "R": -4.5,
        "S": -0.8,
        "T": -0.7,
        "V": 4.2,
        "W": -0.9,
        "Y": -1.3,
    },
    # Hopp & Woods 1981, hydrophilicity
    "hopp_woods": {
        "A": -0.5,
        "C": -1.0,
        "D": 3.0,
        "E": 3.0,
        "F": -2.5,
        "G": 0.0,
        "H": -0.5,
        "I": -1.8,
        "K": 3.0,
        "L": -1.8,
        "M": -1.3,
        "N": 0.2,
        "P": 0.0,
        "Q": 0.2,
        "R": 3.0,
        "S": 0.3,
        "T": -0.4,
        "V": -1.5,
        "W": -3.4,
        "Y": -2.3,
    },
    # Vihinen et al. 1994, normalised flexibility (B-values)
    "flexibility": {
        "A": 0.984,
        "C": 0.906,
        "D": 1.068,
        "E": 1.094,
        "F": 0.915,
        "G": 1.031,
        "H": 0.95,
        "I": 0.927,
        "K": 1.102,
        "L": 0.935,
        "M": 0.952,
        "N": 1.048,
        "P": 1.049,
        "Q": 1.037,
        "R": 1.008,
        "S": 1.046,
        "T": 0.997,
        "V": 0.931,
        "W": 0.904,
        "Y": 0.929,
    },
    # Emini et al. 1985, surface accessibility
    "emini_surface": {
        "A": 0.815,
        "C": 0.394,
        "D": 1.283,
        "E": 1.445,
        "F": 0.695,
        "G": 0.714,
        "H": 1.18,
        "I": 0.603,
        "K": 1.545,
        "L": 0.603,
        "M": 0.714,
        "N": 1.296,
        "P": 1.236,
        "Q": 1.348,
        "R": 1.475,
        "S": 1.115,
        "T": 1.184,
        "V": 0.606,
        "W": 0.808,
        "Y": 1.089,
    },
    # side-chain charge at pH 7 (D, E -1; K, R +1; H taken as neutral)
    "charge_ph7": {
        "A": 0.0,
        "C": 0.0,
        "D": -1.0,
        "E": -1.0,
        "F": 0.0,
        "G": 0.0,
        "H": 0.0,
        "I": 0.0,
        "K": 1.0,
        "L": 0.0,
        "M": 0.0,
        "N": 0.0,
        "P": 0.0,
        "Q": 0.0,
        "R": 1.0,
        "S": 0.0,
        "T": 0.0,
        "V": 0.0,
        "W": 0.0,
        "Y": 0.0,
    },
}


def blosum62_matrix() -> np.ndarray:
    """(21, 20) float32: BLOSUM62 rows in ALPHABET order, and a zero row for unknown residues."""
    out = np.zeros((UNKNOWN + 1, len(ALPHABET)), dtype=np.float32)
    for i, a in enumerate(ALPHABET):
        out[i] = BLOSUM62[a]
    return out


def scale_matrix(names: list[str]) -> np.ndarray:
    """(21, len(names)) float32: each scale's value per residue; unknown gets the scale's mean."""
    out = np.zeros((UNKNOWN + 1, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        values = SCALES[name]
        out[:UNKNOWN, j] = [values[a] for a in ALPHABET]
        out[UNKNOWN, j] = np.mean(out[:UNKNOWN, j])
    return out
