"""The malformed-input corpus of ``protein.structure``: real files broken in specific ways.

``tests/data/malformed/pdb/`` and ``tests/data/malformed/mmcif/`` hold the broken files
and ``expected.toml`` (file name -> a part of the message the reader must give, file
path aside). Both are written by ``python -m tests.protein.malformed`` from two real
entries of Debian packages, cut down to their first 13 residues so that the files stay
small:

- ``/usr/share/freesasa/test-data/1ubq.pdb`` (package ``freesasa``): ubiquitin, PDB format;
- ``/usr/share/doc/python-biopython-doc/Tests/PDB/1A8O.cif.gz`` (``python-biopython-doc``):
  HIV-1 capsid C-terminal domain, mmCIF, selenomethionine at residue 1.

Each case breaks one thing (a coordinate field, the end of the file, a column, the
container) and names the message a person needs to fix it. ``test_malformed.py`` checks
that the committed files are what this module makes, so edit the cases here.
"""

from __future__ import annotations

import gzip
import re
from pathlib import Path

PDB_SOURCE = Path("/usr/share/freesasa/test-data/1ubq.pdb")
CIF_SOURCE = Path("/usr/share/doc/python-biopython-doc/Tests/PDB/1A8O.cif.gz")
MMTF_SOURCE = Path("/usr/share/doc/python-biopython-doc/Tests/PDB/1A8O.mmtf.gz")
CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed"
RESIDUES = 13  # residues kept from each entry

#: PDB header records kept (REMARKs would make every file 20 KB larger and test nothing).
_PDB_HEADER = ("HEADER", "TITLE", "COMPND", "SOURCE", "KEYWDS", "EXPDTA", "AUTHOR", "SEQRES", "HELIX", "SHEET",
               "CRYST1", "ORIGX", "SCALE")  # fmt: skip
#: mmCIF categories kept besides atom_site.
_CIF_CATEGORIES = ("entry", "cell", "symmetry", "entity", "entity_poly", "struct", "struct_asym", "atom_type")


# -- PDB ------------------------------------------------------------------------------------


def _pdb_atoms(lines: list[str], record: str = "ATOM") -> list[str]:
    return [ln for ln in lines if ln.startswith(record) and int(ln[22:26]) <= RESIDUES]


def pdb_base(text: str) -> list[str]:
    """1ubq cut to its header records and the atoms of residues 1-13, closed by TER and END."""
    lines = text.splitlines()
    header = [ln for ln in lines if ln.startswith(_PDB_HEADER)]
    atoms = _pdb_atoms(lines)
    last = atoms[-1]
    ter = f"TER   {int(last[6:11]) + 1:5d}      {last[17:20]} {last[21]}{last[22:26]}".ljust(80)
    return header + atoms + [ter, "END".ljust(80)]


def _find(lines: list[str], atom: str, residue: int) -> int:
    """Index of the ATOM line of ``atom`` in residue ``residue``."""
    for i, ln in enumerate(lines):
        if ln.startswith("ATOM") and ln[12:16].strip() == atom and int(ln[22:26]) == residue:
            return i
    raise LookupError(f"no atom {atom} in residue {residue}")


def _set(line: str, start: int, stop: int, value: str) -> str:
    return line[:start] + value.rjust(stop - start)[: stop - start] + line[stop:]


def _text(lines: list[str]) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _pdb_field_case(base, atom, residue, start, stop, value):
    lines = list(base)
    i = _find(lines, atom, residue)
    lines[i] = _set(lines[i], start, stop, value)
    ln = lines[i]
    where = f"line {i + 1} (atom {atom} of {ln[17:20]} {ln[21]}{residue})"
    return _text(lines), where


def pdb_cases(text: str, mmtf: bytes) -> dict[str, tuple[bytes, str]]:
    base = pdb_base(text)
    lines = text.splitlines()
    header = [ln for ln in base if ln.startswith(_PDB_HEADER)]
    cases = {}
    for name, atom, residue, (start, stop), value, problem in [
        ("nan_coordinate.pdb", "CA", 5, (30, 38), "nan", "x coordinate 'nan' is not finite"),
        ("overflowed_coordinate.pdb", "CB", 6, (38, 46), "********", "y coordinate '********' overflowed its column"),
        ("infinite_coordinate.pdb", "N", 7, (46, 54), "-inf", "z coordinate '-inf' is not finite"),
        ("word_coordinate.pdb", "O", 3, (30, 38), "12.3a5", "x coordinate '12.3a5' is not a number"),
        ("blank_coordinate.pdb", "C", 2, (46, 54), "", "z coordinate is blank"),
        ("nan_b_factor.pdb", "CA", 4, (60, 66), "nan", "B-factor 'nan' is not finite"),
    ]:
        data, where = _pdb_field_case(base, atom, residue, start, stop, value)
        cases[name] = (data, f"{where}: {problem}")
    cut = _find(base, "CA", 9) + 1  # THR 9 keeps N and CA
    cases["cut_inside_residue.pdb"] = (
        _text(base[:cut]),
        "the PDB file looks truncated: it ends at an atom record with no END, TER or ENDMDL after it, "
        "and its last residue, THR A9, lacks C, O, CB, OG1, CG2",
    )
    inside = base[:cut]
    inside[-1] = inside[-1][:40]  # cut inside the y coordinate
    cases["cut_inside_line.pdb"] = (
        "\n".join(inside).encode(),
        f"cannot parse as PDB: Problem in line {cut}: The line is too short to be correct: {' '.join(inside[-1].split())}",
    )
    cases["empty.pdb"] = (b"", "the file is empty")
    cases["header_only.pdb"] = (_text(header + ["END".ljust(80)]), "no model with atoms")
    water = [ln for ln in lines if ln.startswith("HETATM")][:20]
    cases["water_only.pdb"] = (_text(header + water + ["END".ljust(80)]), "no protein chain in the first model")
    ca_only = [ln for ln in base if not ln.startswith("ATOM") or ln[12:16].strip() == "CA"]
    cases["ca_only.pdb"] = (_text(ca_only), "chain 'A' has 0 of 13 residues with N, CA, C and O all present")
    packed = gzip.compress(_text(base), mtime=0)
    cases["truncated.pdb.gz"] = (packed[: len(packed) // 2], "damaged or truncated gzip data")
    cases["mmtf_renamed.pdb"] = (mmtf, "binary data, not a PDB or mmCIF text file")
    return cases


# -- mmCIF ----------------------------------------------------------------------------------


def _cif_chunks(text: str) -> list[str]:
    """The categories of a wwPDB mmCIF file: the text between its '#' lines."""
    return re.split(r"\n#[ \t]*\n", text)


def _category(chunk: str) -> str:
    m = re.search(r"^_([A-Za-z0-9_]+)\.", chunk, flags=re.MULTILINE)
    return m.group(1) if m else ""


def _atom_site(chunk: str) -> tuple[list[str], list[str]]:
    lines = chunk.splitlines()
    head = [ln for ln in lines if not ln.startswith(("ATOM", "HETATM"))]
    return head, [ln for ln in lines if ln.startswith(("ATOM", "HETATM"))]


def cif_base(text: str) -> tuple[list[str], list[str], list[str]]:
    """1A8O cut to a few header categories and the atoms of residues 1-13 of chain A:
    (lines before the atom rows, the atom rows, lines after them)."""
    chunks = _cif_chunks(text)
    kept = [chunks[0]] + [c for c in chunks[1:] if _category(c) in _CIF_CATEGORIES]
    head, rows = _atom_site(next(c for c in chunks if _category(c) == "atom_site"))
    rows = [r for r in rows if r.split()[8] != "." and int(r.split()[8]) <= RESIDUES and r.split()[6] == "A"]
    before = "\n# \n".join(kept + ["\n".join(head)]).splitlines()
    return before, rows, ["# "]


def _tags(before: list[str]) -> list[str]:
    return [ln.strip() for ln in before if ln.startswith("_atom_site.")]


def _row_of(rows: list[str], tags: list[str], atom: str, residue: int) -> int:
    name, seq = tags.index("_atom_site.label_atom_id"), tags.index("_atom_site.label_seq_id")
    for i, r in enumerate(rows):
        v = r.split()
        if v[name] == atom and v[seq] == str(residue):
            return i
    raise LookupError(f"no atom {atom} in residue {residue}")


def _cif_value_case(before, rows, after, tag, atom, residue, value):
    tags = _tags(before)
    i = _row_of(rows, tags, atom, residue)
    values = rows[i].split()
    values[tags.index("_atom_site." + tag)] = value
    rows = list(rows)
    rows[i] = " ".join(values) + " "
    auth = dict(zip(tags, values))
    where = (
        f"line {len(before) + i + 1} (atom {auth['_atom_site.auth_atom_id']} of "
        f"{auth['_atom_site.auth_comp_id']} {auth['_atom_site.auth_asym_id']}{auth['_atom_site.auth_seq_id']})"
    )
    return _text(before + rows + after), where


def cif_cases(text: str) -> dict[str, tuple[bytes, str]]:
    before, rows, after = cif_base(text)
    tags = _tags(before)
    cases = {}
    for name, tag, atom, residue, value, problem in [
        ("question_mark_coordinate.cif", "Cartn_x", "CA", 5, "?", "x coordinate is missing ('?')"),
        ("dot_coordinate.cif", "Cartn_y", "CB", 8, ".", "y coordinate is missing ('.')"),
        ("nan_coordinate.cif", "Cartn_z", "N", 7, "nan", "z coordinate 'nan' is not finite"),
        ("word_coordinate.cif", "Cartn_x", "O", 3, "abc", "x coordinate 'abc' is not a number"),
        ("huge_coordinate.cif", "Cartn_y", "C", 2, "1e999", "y coordinate '1e999' is not finite (too large)"),
        ("nan_b_factor.cif", "B_iso_or_equiv", "CA", 4, "NaN", "B-factor 'NaN' is not finite"),
    ]:
        data, where = _cif_value_case(before, rows, after, tag, atom, residue, value)
        cases[name] = (data, f"{where}: {problem}")
    z = tags.index("_atom_site.Cartn_z")
    no_z = [ln for ln in before if ln.strip() != "_atom_site.Cartn_z"]
    no_z_rows = [" ".join(v for k, v in enumerate(r.split()) if k != z) + " " for r in rows]
    cases["no_cartn_z.cif"] = (_text(no_z + no_z_rows + after), "the atom_site table has no _atom_site.Cartn_z column")
    cut = _row_of(rows, tags, "CA", 9) + 1  # GLU 9 (author number 159) keeps N and CA
    cases["cut_inside_residue.cif"] = (
        _text(before + rows[:cut]),
        "the mmCIF file looks truncated: it ends inside the _atom_site rows (no '#' or other category after "
        "them), and its last residue, GLU A159, lacks C, O, CB, CG, CD, OE1, OE2",
    )
    cases["cut_inside_row.cif"] = (
        "\n".join(before + rows[: cut - 1] + [rows[cut - 1][:40]]).encode(),
        f"cannot parse as mmCIF: the loop _atom_site.* that starts at line {len(before) - before[::-1].index('loop_')}"
        " does not hold a whole number of rows: its last row is incomplete",
    )
    cases["empty.cif"] = (b"", "the file is empty")
    cases["no_atom_site.cif"] = (_text(before[: len(before) - 1 - before[::-1].index("loop_")]), "no model with atoms")
    second = [ln.replace("data_1A8O", "data_1A8O_copy") for ln in before]
    cases["two_blocks.cif"] = (
        _text(before + rows + after + second + rows + after),
        "single data block expected, got 2",
    )
    title = next(i for i, ln in enumerate(before) if ln.startswith("_struct.title"))
    unclosed = list(before)
    unclosed[title] = unclosed[title].replace("'", "", 1)  # the title's closing quote is left alone
    cases["unclosed_quote.cif"] = (
        _text(unclosed + rows + after),
        f"cannot parse as mmCIF: line {title + 1}: parse error",
    )
    water = [
        r for r in _atom_site(next(c for c in _cif_chunks(text) if _category(c) == "atom_site"))[1] if " HOH " in r
    ][:20]
    cases["water_only.cif"] = (_text(before + water + after), "no protein chain in the first model")
    packed = gzip.compress(_text(before + rows + after), mtime=0)
    cases["truncated.cif.gz"] = (packed[: len(packed) // 2], "damaged or truncated gzip data")
    return cases


# -- the corpus -----------------------------------------------------------------------------


def cases() -> dict[str, dict[str, tuple[bytes, str]]]:
    """format -> file name -> (bytes, expected message part)."""
    pdb = PDB_SOURCE.read_text()
    cif = gzip.decompress(CIF_SOURCE.read_bytes()).decode()
    mmtf = gzip.decompress(MMTF_SOURCE.read_bytes())
    return {"pdb": pdb_cases(pdb, mmtf), "mmcif": cif_cases(cif)}


def _toml_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def expected_toml(fmt: str, items: dict[str, tuple[bytes, str]]) -> str:
    lines = [
        f"# Malformed {fmt} inputs of protein.structure and a part of the message each must give",
        "# (after the file's path). Written by `python -m tests.protein.malformed`; edit the cases there.",
        "",
        "[messages]",
    ]
    lines += [f"{_toml_string(name)} = {_toml_string(msg)}" for name, (_, msg) in sorted(items.items())]
    return "\n".join(lines) + "\n"


def write(root: Path = CORPUS) -> None:
    for fmt, items in cases().items():
        folder = root / fmt
        folder.mkdir(parents=True, exist_ok=True)
        for name, (data, _) in items.items():
            (folder / name).write_bytes(data)
        (folder / "expected.toml").write_text(expected_toml(fmt, items))


if __name__ == "__main__":
    write()
    print(f"wrote {CORPUS}")
