"""Residue name tables: the 20 standard amino acids, modified residues and their parents.

``one_letter(name)`` is the one-letter code a structure reader puts in a sequence: the
standard residues map to their letter, a modified residue (MSE, SEP, TPO, MLY, HYP, ...)
to its parent's letter, anything else to ``'X'``. Names this table does not list are
looked up in gemmi's built-in residue table (the common PDB components), so the
hand-written table below only has to be right, not complete.
"""

from __future__ import annotations

from functools import lru_cache

#: The 20 standard amino acids, three-letter → one-letter.
STANDARD: dict[str, str] = {
    "ALA": "A",
    "ARG": "R",
    "ASN": "N",
    "ASP": "D",
    "CYS": "C",
    "GLN": "Q",
    "GLU": "E",
    "GLY": "G",
    "HIS": "H",
    "ILE": "I",
    "LEU": "L",
    "LYS": "K",
    "MET": "M",
    "PHE": "F",
    "PRO": "P",
    "SER": "S",
    "THR": "T",
    "TRP": "W",
    "TYR": "Y",
    "VAL": "V",
}

#: One-letter → three-letter for the standard 20.
THREE_LETTER: dict[str, str] = {v: k for k, v in STANDARD.items()}

#: The standard one-letter alphabet in a fixed order (alphabetical by one-letter code).
ALPHABET = "ACDEFGHIKLMNPQRSTVWY"

#: The letter for a residue that is neither standard nor a known modification.
UNKNOWN = "X"

#: Residues that are genetically encoded but not among the 20: own letters, counted as
#: standard (not flagged as modified).
EXTRA_STANDARD: dict[str, str] = {"SEC": "U", "PYL": "O"}

#: Ambiguity codes used in structures; they become 'X' unless ``keep_ambiguous``.
AMBIGUOUS: dict[str, str] = {"ASX": "B", "GLX": "Z", "UNK": "X", "XLE": "J"}

#: Modified residue → standard parent (three-letter). Common PDB modifications; gemmi's
#: table covers the rest (see ``parent_letter``).
MODIFIED: dict[str, str] = {
    "MSE": "MET",  # selenomethionine
    "FME": "MET",  # N-formylmethionine
    "MHO": "MET",  # methionine sulfoxide
    "SEP": "SER",  # phosphoserine
    "TPO": "THR",  # phosphothreonine
    "PTR": "TYR",  # phosphotyrosine
    "TYS": "TYR",  # sulfotyrosine
    "MLY": "LYS",  # N,N-dimethyllysine
    "MLZ": "LYS",  # N-methyllysine
    "M3L": "LYS",  # N-trimethyllysine
    "ALY": "LYS",  # N-acetyllysine
    "KCX": "LYS",  # lysine NZ-carboxylic acid
    "LLP": "LYS",  # lysine-pyridoxal-5'-phosphate
    "HYP": "PRO",  # 4-hydroxyproline
    "CSO": "CYS",  # S-hydroxycysteine
    "CSD": "CYS",  # 3-sulfinoalanine
    "CME": "CYS",  # S,S-(2-hydroxyethyl)thiocysteine
    "CSS": "CYS",  # S-mercaptocysteine
    "OCS": "CYS",  # cysteinesulfonic acid
    "CAS": "CYS",  # S-(dimethylarsenic)cysteine
    "SMC": "CYS",  # S-methylcysteine
    "PCA": "GLU",  # pyroglutamic acid
    "CGU": "GLU",  # gamma-carboxyglutamic acid
    "HIC": "HIS",  # 4-methylhistidine
    "NEP": "HIS",  # N1-phosphohistidine
    "MEN": "ASN",  # N-methylasparagine
    "AGM": "ARG",  # 5-methylarginine
    "DAL": "ALA",  # D-alanine
    "AIB": "ALA",  # alpha-aminoisobutyric acid
    "NLE": "LEU",  # norleucine
    "MVA": "VAL",  # N-methylvaline
    "TRQ": "TRP",  # tryptophan-6,7-dione
    "DSN": "SER",  # D-serine
}


def _gemmi_info(name: str):
    try:
        import gemmi
    except ImportError:  # pragma: no cover - gemmi is a dependency of the plugin
        return None
    info = gemmi.find_tabulated_residue(name)
    return info if info is not None and info.found() else None


@lru_cache(maxsize=4096)
def classify(name: str) -> tuple[str, str]:
    """``(letter, kind)`` for a three-letter residue name.

    kind is ``"standard"`` (the 20, plus SEC/PYL), ``"modified"`` (letter is the
    parent's), ``"unknown"`` (letter 'X': UNK, ambiguity codes, names neither table
    knows, or known non-amino-acid components) .
    """
    name = name.strip().upper()
    if name in STANDARD:
        return STANDARD[name], "standard"
    if name in EXTRA_STANDARD:
        return EXTRA_STANDARD[name], "standard"
    if name in AMBIGUOUS:
        return UNKNOWN, "unknown"
    if name in MODIFIED:
        return STANDARD[MODIFIED[name]], "modified"
    info = _gemmi_info(name)
    if info is not None and info.is_amino_acid():
        code = info.one_letter_code
        # gemmi: upper case = standard, lower case = a modification of that parent.
        if code.islower() and code.upper() in THREE_LETTER:
            return code.upper(), "modified"
    return UNKNOWN, "unknown"


def one_letter(name: str) -> str:
    """One-letter code: standard letter, the parent's letter for a modified residue, else 'X'."""
    return classify(name)[0]


def is_modified(name: str) -> bool:
    """True for a modified residue mapped to a standard parent (MSE → M)."""
    return classify(name)[1] == "modified"


def is_unknown(name: str) -> bool:
    """True where the residue becomes 'X'."""
    return classify(name)[1] == "unknown"


def parent(name: str) -> str:
    """Three-letter parent of a residue: itself when standard, the parent when modified, 'UNK' otherwise."""
    letter, kind = classify(name)
    if kind == "unknown":
        return "UNK"
    return THREE_LETTER.get(letter, name.strip().upper())


BACKBONE_HEAVY = ("N", "CA", "C", "O")

#: Side-chain heavy atoms of the 20 standard residues (PDB names), for telling a residue
#: cut short at the end of a file from a complete one.
SIDE_CHAIN_HEAVY: dict[str, tuple[str, ...]] = {
    "ALA": ("CB",), "ARG": ("CB", "CG", "CD", "NE", "CZ", "NH1", "NH2"), "ASN": ("CB", "CG", "OD1", "ND2"),
    "ASP": ("CB", "CG", "OD1", "OD2"), "CYS": ("CB", "SG"), "GLN": ("CB", "CG", "CD", "OE1", "NE2"),
    "GLU": ("CB", "CG", "CD", "OE1", "OE2"), "GLY": (), "HIS": ("CB", "CG", "ND1", "CD2", "CE1", "NE2"),
    "ILE": ("CB", "CG1", "CG2", "CD1"), "LEU": ("CB", "CG", "CD1", "CD2"), "LYS": ("CB", "CG", "CD", "CE", "NZ"),
    "MET": ("CB", "CG", "SD", "CE"), "PHE": ("CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ"),
    "PRO": ("CB", "CG", "CD"), "SER": ("CB", "OG"), "THR": ("CB", "OG1", "CG2"),
    "TRP": ("CB", "CG", "CD1", "CD2", "NE1", "CE2", "CE3", "CZ2", "CZ3", "CH2"),
    "TYR": ("CB", "CG", "CD1", "CD2", "CE1", "CE2", "CZ", "OH"), "VAL": ("CB", "CG1", "CG2"),
}  # fmt: skip

#: Old names still found in files: isoleucine's CD1 was CD.
_OLD_NAMES = {("ILE", "CD"): "CD1"}


def missing_heavy_atoms(name: str, present) -> tuple[str, ...]:
    """Heavy atoms a residue called ``name`` has and ``present`` lacks: backbone and side
    chain for the 20 standard residues, the backbone for other amino acids, nothing for
    anything else (this table does not know their atoms)."""
    name = name.strip().upper()
    have = {_OLD_NAMES.get((name, a), a) for a in present}
    if name in SIDE_CHAIN_HEAVY:
        expected = BACKBONE_HEAVY + SIDE_CHAIN_HEAVY[name]
    elif classify(name)[1] == "modified" or name in EXTRA_STANDARD:
        expected = BACKBONE_HEAVY
    else:
        return ()
    return tuple(a for a in expected if a not in have)
