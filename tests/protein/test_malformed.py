"""protein.structure on broken files: the malformed-input corpus (tests/data/malformed/pdb and
mmcif), the same files in a run beside good ones, truncated files, and mutated real files.

The property for the reader: it returns rows or a RecordError (or error records) whose
message names the file, never another exception, and never NaN it did not read.
"""

from __future__ import annotations

import gzip
import itertools
import random
import tomllib
from pathlib import Path

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest
from hpcprep.stages import ErrorRecord, RecordError
from hpcprep_protein import integrity, plain_decimals
from hpcprep_protein.readers import StructureReader

from tests.conftest import unavailable
from tests.protein import malformed
from tests.protein.corpus import corpus

FORMATS = ("pdb", "mmcif")
#: Good real files run beside the malformed ones (PDB, gzipped PDB with two chains, mmCIF).
GOOD = ("1ubq.pdb", "7DDO.pdb.gz", "1A8O.cif.gz")


def expected(fmt: str) -> dict[str, str]:
    with open(malformed.CORPUS / fmt / "expected.toml", "rb") as f:
        return tomllib.load(f)["messages"]


def read(path, **params) -> tuple[list[dict], list[str]]:
    """Rows and error messages of one file, as a read task would give them."""
    reader = StructureReader({"paths": [str(path)], **params})
    (item,) = reader.plan()
    rows, errors = [], []
    try:
        for out in reader.read(item):
            if isinstance(out, ErrorRecord):
                errors.append(out.message)
            else:
                rows += [{k: v[i] for k, v in out.items()} for i in range(len(out["source"]))]
    except RecordError as exc:
        errors.append(str(exc))
    return rows, errors


def require_sources():
    corpus()  # skips (fails under CI) without the Debian packages
    missing = [p for p in (malformed.PDB_SOURCE, malformed.CIF_SOURCE, malformed.MMTF_SOURCE) if not p.exists()]
    if missing:
        unavailable(f"malformed-corpus sources missing: {missing}")


# -- the corpus -------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_malformed_file_gives_its_message(fmt):
    messages = expected(fmt)
    folder = malformed.CORPUS / fmt
    assert len(messages) >= 10
    assert sorted(messages) == sorted(p.name for p in folder.iterdir() if p.name != "expected.toml")
    for name, part in messages.items():
        path = folder / name
        rows, errors = read(path)
        assert rows == [], name
        assert len(errors) == 1, (name, errors)
        assert errors[0].startswith(f"{path}: "), errors[0]
        assert part in errors[0], (name, errors[0])


def test_corpus_is_what_the_generator_makes(tmp_path):
    require_sources()
    malformed.write(tmp_path)
    for fmt in FORMATS:
        made = {p.name: p.read_bytes() for p in (tmp_path / fmt).iterdir()}
        committed = {p.name: p.read_bytes() for p in (malformed.CORPUS / fmt).iterdir()}
        assert made == committed, f"run `python -m tests.protein.malformed` after editing the cases ({fmt})"


def _spec(out: Path, paths: list[str]) -> dict:
    return {
        "run": {"name": "malformed", "output": str(out)},
        "reader": {"stage": "protein.structure", "paths": paths},
        "encoders": [],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def _rows_by_id(out: Path) -> list[dict]:
    return sorted(pq.read_table(out / "table").to_pylist(), key=lambda r: r["record_id"])


def test_malformed_files_beside_good_ones_in_a_run(tmp_path, ray_local):
    good = [str(p) for p in corpus() if p.name in GOOD]
    assert len(good) == len(GOOD)
    bad = {str(malformed.CORPUS / fmt / name): part for fmt in FORMATS for name, part in expected(fmt).items()}
    mixed = hpcprep.run(_spec(tmp_path / "mixed", good + [str(malformed.CORPUS / f) for f in FORMATS]), progress=False)
    alone = hpcprep.run(_spec(tmp_path / "alone", good), progress=False)

    rows = _rows_by_id(tmp_path / "mixed")
    assert {r["source"] for r in rows} == set(good)
    np.testing.assert_equal(rows, _rows_by_id(tmp_path / "alone"))  # NaN equals NaN here
    assert alone.counts["errors"] == 0
    assert mixed.counts == {"inputs": len(rows) + len(bad), "outputs": len(rows), "errors": len(bad), "balanced": True}
    errors = {e["source"]: e["message"] for e in mixed.errors().to_pylist()}
    assert sorted(errors) == sorted(bad)
    for source, part in bad.items():
        assert errors[source].startswith(source) and part in errors[source], (source, errors[source])


# -- a cut file, non-finite coordinates ---------------------------------------------------------


def _base_pdb() -> list[str]:
    require_sources()
    return malformed.pdb_base(malformed.PDB_SOURCE.read_text())


def _upto(lines: list[str], atom: str, residue: int) -> list[str]:
    return lines[: malformed._find(lines, atom, residue) + 1]


def test_pdb_cut_between_residues_is_flagged(tmp_path):
    """1ubq cut after residue 9 (9 of 13 residues, no TER or END): kept, flagged on every chain."""
    base = _base_pdb()
    path = tmp_path / "cut.pdb"
    path.write_text("\n".join(_upto(base, "CG2", 9)) + "\n")  # CG2 is THR 9's last atom
    rows, errors = read(path)
    assert errors == [] and len(rows) == 1
    assert rows[0]["length"] == 9 and "unterminated" in rows[0]["flags"] and "truncated" not in rows[0]["flags"]
    whole = tmp_path / "whole.pdb"
    whole.write_text("\n".join(base) + "\n")
    rows, _ = read(whole)
    assert rows[0]["length"] == 13 and "unterminated" not in rows[0]["flags"]


def test_pdb_cut_inside_a_residue_is_an_error_or_a_flag(tmp_path):
    path = tmp_path / "cut.pdb"
    path.write_text("\n".join(_upto(_base_pdb(), "CA", 9)) + "\n")
    rows, errors = read(path)
    assert rows == [] and "looks truncated" in errors[0] and "THR A9, lacks C, O, CB, OG1, CG2" in errors[0]
    rows, errors = read(path, truncated="flag")
    assert errors == [] and rows[0]["length"] == 9
    assert {"unterminated", "truncated"} <= set(rows[0]["flags"])
    assert not rows[0]["backbone_complete"][-1]


def test_a_complete_first_model_is_not_flagged_when_a_later_model_is_cut(tmp_path):
    base = [ln for ln in _base_pdb() if not ln.startswith(("TER", "END"))]
    atoms = [ln for ln in base if ln.startswith("ATOM")]
    header = [ln for ln in base if not ln.startswith("ATOM")]
    text = header + ["MODEL        1"] + atoms + ["ENDMDL"] + ["MODEL        2"] + atoms[:30]
    path = tmp_path / "nmr.pdb"
    path.write_text("\n".join(text) + "\n")
    rows, errors = read(path)
    assert errors == [] and rows[0]["length"] == 13 and list(rows[0]["flags"]) == []


@pytest.mark.parametrize(
    "value, problem", [("nan", "'nan' is not finite"), ("********", "'********' overflowed its column")]
)
def test_pdb_coordinates_that_are_not_numbers(tmp_path, value, problem):
    """The issue's case: the chain was kept and DSSP saw all coil; now the file is an error."""
    base = _base_pdb()
    i = malformed._find(base, "CA", 5)
    base[i] = malformed._set(base[i], 38, 46, value)
    path = tmp_path / "bad.pdb"
    path.write_text("\n".join(base) + "\n")
    rows, errors = read(path)
    assert rows == [] and errors == [
        f"{path}: line {i + 1} (atom CA of VAL A5): y coordinate {problem}"
        + (" (the value did not fit the PDB format)" if "*" in value else "")
    ]


@pytest.mark.parametrize("record", ["atom  ", "Hetatm", "HETAXX"])
def test_coordinates_of_every_record_gemmi_reads_as_an_atom_are_checked(tmp_path, record):
    """gemmi takes any line whose first four letters are ATOM or HETA, in any case, for an atom; its
    coordinates get the same check as an ATOM line's (a lowercase 'atom' line once slipped NaN through)."""
    base = _base_pdb()
    i = malformed._find(base, "CA", 5)
    base[i] = record + malformed._set(base[i], 38, 46, "nan")[6:]
    path = tmp_path / "bad.pdb"
    path.write_text("\n".join(base) + "\n")
    rows, errors = read(path)
    assert rows == [] and errors == [f"{path}: line {i + 1} (atom CA of VAL A5): y coordinate 'nan' is not finite"]


@pytest.mark.parametrize(
    "value, problem", [("?", "is missing ('?')"), (".", "is missing ('.')"), ("nan", "'nan' is not finite")]
)
def test_mmcif_coordinates_that_are_not_numbers(tmp_path, value, problem):
    require_sources()
    before, rows, after = malformed.cif_base(gzip.decompress(malformed.CIF_SOURCE.read_bytes()).decode())
    data, where = malformed._cif_value_case(before, rows, after, "Cartn_z", "CA", 3, value)
    path = tmp_path / "bad.cif"
    path.write_bytes(data)
    got, errors = read(path)
    assert got == [] and errors == [f"{path}: {where}: z coordinate {problem}"]


def test_the_plain_decimal_shortcut_is_the_pattern():
    """Coordinates are tested all at once for plain decimals; only the others get the full check. That test
    must be exactly ``plain_decimals.PATTERN``: every string of up to 6 characters over the classes it tells apart,
    padded as a line cut short is."""
    strings = ["".join(chars) for k in range(7) for chars in itertools.product(" 1+-.x", repeat=k)]
    codes = np.array(strings, dtype="S8").view(np.uint8).reshape(len(strings), 8)
    fast = plain_decimals.plain(codes)
    pattern = np.array([plain_decimals.PATTERN.fullmatch(s) is not None for s in strings])
    assert pattern.sum() > 300 and np.array_equal(fast, pattern)


def test_mmcif_values_the_shortcut_passes_are_numbers():
    odd = ["1e5", "1.5E-3", "1.5(3)", "?", ".", "nan", "-inf", "1_0", "'1.5'", "1.5\u00e9", "\u0661\u0662", "+", "-.",
           "1..2", "1-2", "1" * 24 + ".5", "9" * 40]  # fmt: skip
    plain = ["12.345", "-0.5", "+.5", "5.", "100", "0", "-12345678.125", " 1.5", "1" * 24]
    values = odd + plain
    fast = plain_decimals.plain(plain_decimals.codes(values, np.arange(len(values))))
    assert list(fast) == [False] * len(odd) + [True] * len(plain)
    assert all(integrity.number_problem("x", v, cif=True) is None for v in plain)


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_first_value_with_a_problem_is_named(tmp_path, fmt):
    """Values the shortcut cannot vouch for (an exponent, a blank B-factor) are checked in file order: the error
    names the first that is not a number, not a later one."""
    require_sources()
    cases = [("CA", 3, "1.5e1"), ("N", 5, "nan"), ("CA", 7, "?" if fmt == "mmcif" else "****")]
    if fmt == "pdb":
        lines = _base_pdb()
        for atom, residue, value in cases:
            data, where = malformed._pdb_field_case(lines, atom, residue, 30, 38, value)
            lines = data.decode().splitlines()
            if value == "nan":
                expected = f"{where}: x coordinate 'nan' is not finite"
    else:
        before, rows, after = malformed.cif_base(gzip.decompress(malformed.CIF_SOURCE.read_bytes()).decode())
        for atom, residue, value in cases:
            data, where = malformed._cif_value_case(before, rows, after, "Cartn_x", atom, residue, value)
            before, rows, after = malformed.cif_base(data.decode())
            if value == "nan":
                expected = f"{where}: x coordinate 'nan' is not finite"
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(data)
    got, errors = read(path)
    assert got == [] and errors == [f"{path}: {expected}"]


def test_unknown_b_factors_are_nan_not_invented(tmp_path):
    """gemmi gives an atom without a B-factor 0 or 20; the reader says NaN (unknown)."""
    require_sources()
    before, rows, after = malformed.cif_base(gzip.decompress(malformed.CIF_SOURCE.read_bytes()).decode())
    data, _ = malformed._cif_value_case(before, rows, after, "B_iso_or_equiv", "CA", 3, "?")
    (tmp_path / "b.cif").write_bytes(data)
    base = _base_pdb()
    blank, short = malformed._find(base, "CA", 3), malformed._find(base, "CA", 5)
    base[blank] = malformed._set(base[blank], 60, 66, "")  # gemmi: 0
    base[short] = base[short][:54]  # no occupancy or B-factor columns; gemmi: 20
    (tmp_path / "b.pdb").write_text("\n".join(base) + "\n")
    for name, unknown in (("b.cif", [2]), ("b.pdb", [2, 4])):
        got, errors = read(tmp_path / name)
        b = got[0]["b_factor"]
        assert errors == [] and np.isnan(b[unknown]).all(), name
        assert np.isfinite(np.delete(b, unknown)).all(), name


# -- mutated real files -------------------------------------------------------------------------

_NOISE = b"0123456789.-+ *?naNeEx#'\"\t\n_\0"


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three edits a damaged copy or a careless edit makes: a cut, a changed or
    dropped byte, a dropped, doubled or swapped line."""
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(6)
        if not data:
            break
        pos = rng.randrange(len(data))
        if op == 0:
            data = data[:pos]
        elif op == 1:
            data = data[:pos] + bytes([rng.choice(_NOISE)]) + data[pos + 1 :]
        elif op == 2:
            data = data[:pos] + data[pos + 1 :]
        else:
            lines = data.split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            if op == 3:
                del lines[i]
            elif op == 4:
                lines.insert(i, lines[j])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = b"\n".join(lines)
    return data


def _check_row(row: dict):
    atoms = {a: row[a].reshape(-1, 3) for a in ("n", "ca", "c", "o", "cb")}
    length = row["length"]
    assert len(row["sequence"]) == length and all(len(xyz) == length for xyz in atoms.values())
    for name, xyz in atoms.items():
        finite = np.isfinite(xyz)
        # an atom is there (three finite numbers) or missing (three NaN): nothing in between, no inf
        assert (finite.all(axis=1) | np.isnan(xyz).all(axis=1)).all(), name
    present = {a: np.isfinite(xyz).all(axis=1) for a, xyz in atoms.items()}
    assert (row["backbone_complete"] == (present["n"] & present["ca"] & present["c"] & present["o"])).all()
    b = row["b_factor"]
    # NaN where there is no CA, or where the file gives no B-factor (a blank field, '?')
    assert not np.isinf(b).any() and np.isnan(b[~present["ca"]]).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_files_give_rows_or_a_message(tmp_path, fmt):
    require_sources()
    if fmt == "pdb":
        seed_text = ("\n".join(malformed.pdb_base(malformed.PDB_SOURCE.read_text())) + "\n").encode()
    else:
        before, rows, after = malformed.cif_base(gzip.decompress(malformed.CIF_SOURCE.read_bytes()).decode())
        seed_text = ("\n".join(before + rows + after) + "\n").encode()
    rng = random.Random(13)
    path = tmp_path / ("m.pdb" if fmt == "pdb" else "m.cif")
    outcomes = {"rows": 0, "errors": 0}
    for case in range(150):
        data = _mutate(seed_text, rng)
        path.write_bytes(data)
        try:
            rows, errors = read(path)
        except Exception as exc:  # noqa: BLE001 - any other exception is the failure this test looks for
            (tmp_path / f"crash-{case}").write_bytes(data)
            raise AssertionError(f"mutation {case} raised {type(exc).__name__}: {exc}") from exc
        assert all(e.startswith(f"{path}: ") and len(e) > len(str(path)) + 2 for e in errors)
        for row in rows:
            _check_row(row)
        outcomes["rows" if rows else "errors"] += 1
    assert outcomes["rows"] and outcomes["errors"], outcomes
