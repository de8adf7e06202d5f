"""Checks of a structure file's text that gemmi does not make.

gemmi reads what it can: in a PDB file it reads an overflowed coordinate (``********``),
a word or a blank field as 0 and ``nan`` as NaN, and in mmCIF any value that is not a
number (``?``, ``.``, ``nan``, ``abc``) as NaN. A chain built from such atoms looks like
data and is not. So every coordinate (and B-factor) of the first model, the only model
the reader uses, must be a finite number as written; a file where one is not is
refused with the line and the atom. All values are first tested together for plain decimals
(:mod:`.plain_decimals`: what nearly every coordinate is); only the others get the full check, one
by one in file order, so the error names the first value that is not a number.

gemmi also gives an atom whose B-factor the file leaves out (a blank PDB field, a short
line, ``?`` or ``.`` in mmCIF) the value 0 or 20. :func:`check_pdb` and
:func:`check_mmcif` list those atoms (``Findings.unknown_b``) so that the reader reports
NaN, "unknown", instead.

A file can also be cut at a line boundary (a copy interrupted, a disk full) and still
parse. The checks say whether the first model's coordinates run to the end of the file
with nothing written after them (``Findings.unterminated``; a PDB file ends with END, an
mmCIF file written by the usual tools closes its last category with ``#``), and which
residue the file ends in, with the heavy atoms it lacks. A file that ends inside an
incomplete amino-acid residue looks truncated; what the reader does with that is its
``truncated`` parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from hpcprep import RecordError

from . import plain_decimals, residues

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: mmCIF numbers may carry a standard uncertainty in parentheses: 12.345(3).
_CIF_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?(?:\(\d+\))?")
_NON_FINITE_WORDS = {"nan", "inf", "infinity"}
#: The reader stores coordinates and B-factors as float32: a larger number would become inf.
_FLOAT32_MAX = 3.4028234663852886e38

#: PDB records that belong to the coordinates of a model; any other record after the
#: last of them shows that the writer got past the coordinates.
_COORDINATE_RECORDS = ("ATOM", "HETATM", "ANISOU", "SIGATM", "SIGUIJ")

#: Fixed PDB columns (0-based slices) of x, y, z and the B-factor.
_PDB_FIELDS = (("x coordinate", 30, 38), ("y coordinate", 38, 46), ("z coordinate", 46, 54))
_PDB_B_FACTOR = ("B-factor", 60, 66)


@dataclass(frozen=True)
class LastResidue:
    """The residue whose atoms are the last coordinates of the first model in the file."""

    chain: str
    name: str
    number: str  # residue number with its insertion code, as written
    missing: tuple[str, ...]  # heavy atoms a residue of this name has and this one lacks

    def describe(self) -> str:
        return f"{self.name} {self.chain}{self.number}"


@dataclass(frozen=True)
class Findings:
    """What the checks of a file's text found in its first model, besides errors."""

    #: The coordinates run to the end of the file: no END/TER/ENDMDL/CONECT/MASTER (PDB)
    #: or closing ``#`` (mmCIF) after them.
    unterminated: bool = False
    #: The residue the coordinates end in, when ``unterminated``.
    last: LastResidue | None = None
    #: Serial numbers (``atom.serial`` in gemmi) of atoms whose B-factor the file leaves out.
    unknown_b: frozenset[int] = frozenset()
    #: Some atom without a B-factor has no usable serial number, so no B-factor can be trusted.
    unknown_b_unmapped: bool = False
    #: Some atom may have an alternative location (False: none has, so the reader need not look).
    altlocs: bool = True

    def b_factor_unknown(self, serial: int) -> bool:
        """Whether the file gives no B-factor for the atom with this serial number."""
        return self.unknown_b_unmapped or serial in self.unknown_b

    @property
    def cut(self) -> bool:
        """Unterminated and ending inside a residue that lacks atoms: the file looks truncated."""
        return self.unterminated and self.last is not None and bool(self.last.missing)

    def truncation_message(self, source: str, kind: str) -> str:
        ending = (
            "it ends at an atom record with no END, TER or ENDMDL after it"
            if kind == "PDB"
            else "it ends inside the _atom_site rows (no '#' or other category after them)"
        )
        return (
            f"{source}: the {kind} file looks truncated: {ending}, and its last residue, "
            f"{self.last.describe()}, lacks {', '.join(self.last.missing)}; "
            "if the file is complete, set truncated = \"flag\" to keep its chains (flagged 'truncated')"
        )


def number_problem(field: str, text: str, cif: bool = False) -> str | None:
    """Why ``text`` is not a finite number for ``field``, or None when it is one."""
    value = text.strip()
    if not value:
        return f"{field} is blank"
    if cif and value in ("?", "."):
        return f"{field} is missing ({value!r})"
    if set(value) == {"*"}:
        return f"{field} {value!r} overflowed its column (the value did not fit the PDB format)"
    if value.lower().lstrip("+-") in _NON_FINITE_WORDS:
        return f"{field} {value!r} is not finite"
    if not (_CIF_NUMBER if cif else _NUMBER).fullmatch(value):
        return f"{field} {value!r} is not a number"
    if not abs(float(value.split("(", 1)[0])) <= _FLOAT32_MAX:
        return f"{field} {value!r} is not finite (too large)"
    return None


# -- PDB ----------------------------------------------------------------------------------


def _pdb_atom(line: str) -> str:
    name, resname, chain, number = line[12:16].strip(), line[17:20].strip(), line[21:22], line[22:27].strip()
    return f"atom {name} of {resname} {chain.strip()}{number}"


def _pdb_line_problem(line: str) -> str | None:
    """Why a coordinate or the B-factor of an atom line is not a finite number (the lines
    ``_PdbColumns.plain_fields`` cannot vouch for), or None."""
    for field, start, stop in _PDB_FIELDS:
        problem = number_problem(field, line[start:stop])
        if problem:
            return problem
    field, start, stop = _PDB_B_FACTOR
    b_factor = line[start:stop]
    if b_factor.strip():  # a blank B-factor is allowed (unknown): minimal files leave it out
        return number_problem(field, b_factor)
    return None


def _serial(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def check_pdb(source: str, text: str) -> Findings:
    """Raise ``RecordError`` for a coordinate or B-factor of the first model that is not a
    finite number; otherwise say what else the text shows (see ``Findings``)."""
    lines = text.splitlines()
    view = _PdbColumns(lines, "\0" in text)
    # gemmi reads an atom from every line whose first four letters are ATOM or HETA, in any case.
    atoms = np.flatnonzero(view.record("ATOM") | view.record("HETA"))
    if not len(atoms):
        return Findings(altlocs=False)
    altlocs = bool(np.any((view.codes[atoms, 16] != ord(" ")) & (view.codes[atoms, 16] != 0)))
    # The first model: from the first atom to the first MODEL or ENDMDL after it (the reader uses no other).
    ends = np.flatnonzero(view.starts("MODEL") | view.starts("ENDMDL"))
    ends = ends[ends > atoms[0]]
    end = int(ends[0]) if len(ends) else len(lines)
    atoms = atoms[atoms < end]
    # Lines whose fields are all plain decimals (nearly all) need no closer look; the others are checked one by
    # one, in order, so the error names the first line with a problem.
    plain, blank_b = view.plain_fields(atoms)
    for i in atoms[~plain]:
        problem = _pdb_line_problem(lines[i])
        if problem:
            raise RecordError(f"{source}: line {i + 1} ({_pdb_atom(lines[i])}): {problem}")
        blank_b[np.searchsorted(atoms, i)] = not lines[i][60:66].strip()
    unknown_b = {_serial(lines[i][6:11]) for i in atoms[blank_b]}  # hybrid-36 serials are not mapped (None)
    b_factors = {"unknown_b": frozenset(unknown_b - {None}), "unknown_b_unmapped": None in unknown_b}
    last = int(atoms[-1])
    # After the first model's last atom: MODEL/ENDMDL, or any other record that is not a coordinate one, shows
    # that the writer got past the coordinates.
    if end < len(lines) or any(ln.strip() and not ln.startswith(_COORDINATE_RECORDS) for ln in lines[last + 1 :]):
        return Findings(altlocs=altlocs, **b_factors)
    return Findings(unterminated=True, last=_last_pdb_residue(lines, atoms), altlocs=altlocs, **b_factors)


def _residue_key(line: str) -> tuple[str, str, str]:
    return line[17:20], line[21:22], line[22:27]


def _last_pdb_residue(lines: list[str], atoms: np.ndarray) -> LastResidue:
    """The residue of the last atom line, with its atoms: the atom lines before it with the same residue."""
    key = _residue_key(lines[atoms[-1]])
    first = len(atoms) - 1
    while first > 0 and _residue_key(lines[atoms[first - 1]]) == key:
        first -= 1
    line = lines[atoms[first]]
    name = line[17:20].strip()
    return LastResidue(
        chain=line[21:22].strip(),
        name=name,
        number=line[22:27].strip(),
        missing=residues.missing_heavy_atoms(name, [lines[i][12:16].strip() for i in atoms[first:]]),
    )


class _PdbColumns:
    """The first 66 columns of every line as one array of bytes (0 past a line's end), so that record names and
    numeric fields are tested for all lines at once."""

    def __init__(self, lines: list[str], has_nul: bool):
        head = [ln[:66] for ln in lines]
        if has_nul:
            head = [h.replace("\0", "\1") for h in head]  # a NUL would read as the end of the line
        try:
            array = np.array(head, dtype="S66")
        except UnicodeEncodeError:  # the reader hands on ASCII; '?' is as far from a digit as any other letter
            array = np.array([h.encode("ascii", "replace") for h in head], dtype="S66")
        self.codes = array.view(np.uint8).reshape(len(lines), 66)

    def starts(self, record: str) -> np.ndarray:
        return (self.codes[:, : len(record)] == np.frombuffer(record.encode(), dtype=np.uint8)).all(axis=1)

    def record(self, name: str) -> np.ndarray:
        """Lines that begin with ``name`` in any case (``| 0x20`` lowers a letter and maps nothing else onto one)."""
        lowered = np.frombuffer(name.lower().encode(), dtype=np.uint8)
        return ((self.codes[:, : len(name)] | 0x20) == lowered).all(axis=1)

    def plain_fields(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each row: x, y and z plain decimals and the B-factor one or blank (``plain_decimals.PATTERN``, a
        field cut short by the line's end read as padded with spaces, which that pattern allows); and whether
        the B-factor is blank (meaningful where the first is true)."""
        # Columns 31-54 (x, y, z) and 61-66 (B-factor), transposed: the automaton reads one character position of
        # all rows at a time, and here each is a row of this block already.
        fields = self.codes[rows, 30:66].T
        coords = plain_decimals.plain(fields[:24].reshape(3, 8, len(rows)).transpose(0, 2, 1)).all(axis=0)
        b = fields[30:36].T
        blank_b = plain_decimals.blank(b)
        return coords & (plain_decimals.plain(b) | blank_b), blank_b


# -- mmCIF --------------------------------------------------------------------------------


class _AtomSite:
    """The columns of an mmCIF ``_atom_site`` table the checks read, as raw strings (a
    column the file lacks is None; author names are preferred, as gemmi does)."""

    def __init__(self, table):
        self.table = table
        self._tags = list(table.tags)
        self.coords = [self.column(f"Cartn_{axis}") for axis in "xyz"]
        self.b_factors = self.column("B_iso_or_equiv")
        self.models = self.column("pdbx_PDB_model_num")

    # Columns read only to name an atom or a residue, or to map B-factors: most files never need them, and each
    # costs a Python string per row.
    @cached_property
    def ids(self) -> list[str] | None:
        return self.column("id")

    @cached_property
    def chains(self) -> list[str] | None:
        return self.column("auth_asym_id", "label_asym_id")

    @cached_property
    def names(self) -> list[str] | None:
        return self.column("auth_atom_id", "label_atom_id")

    @cached_property
    def comps(self) -> list[str] | None:
        return self.column("auth_comp_id", "label_comp_id")

    @cached_property
    def numbers(self) -> list[str] | None:
        return self.column("auth_seq_id", "label_seq_id")

    @cached_property
    def icodes(self) -> list[str] | None:
        return self.column("pdbx_PDB_ins_code")

    def column(self, *tags: str) -> list[str] | None:
        """The raw values of the first of ``tags`` (without ``_atom_site.``) the table has."""
        for tag in tags:
            if "_atom_site." + tag in self._tags:
                return list(self.table.column(self._tags.index("_atom_site." + tag)))
        return None

    def first_model_rows(self) -> np.ndarray:
        """The rows of the first model, the only one the reader uses."""
        if self.models is None:
            return np.arange(len(self.table))
        models = np.array(self.models, dtype=object)
        return np.flatnonzero(models == models[0])

    @staticmethod
    def value(column: list[str] | None, row: int) -> str:
        if column is None:
            return ""
        text = _cif_string(column[row])
        return "" if text in ("?", ".") else text

    def atom(self, row: int) -> str:
        v = self.value
        residue = f"{v(self.comps, row)} {v(self.chains, row)}{v(self.numbers, row)}{v(self.icodes, row)}"
        return f"atom {v(self.names, row)} of {residue}"

    def residue_key(self, row: int) -> tuple:
        return tuple(None if col is None else col[row] for col in (self.chains, self.numbers, self.icodes, self.comps))

    def line_of(self, text: str, row: int) -> int | None:
        """The line of ``row`` in ``text``, found by its first two values."""
        values = [self.table[row][i] for i in range(min(2, self.table.width()))]
        pattern = r"^[ \t]*" + r"[ \t]+".join(re.escape(v) for v in values) + r"(?:[ \t]|$)"
        match = re.search(pattern, text, flags=re.MULTILINE)
        return text.count("\n", 0, match.start()) + 1 if match else None

    def last_residue(self, row: int) -> LastResidue:
        """The residue of ``row`` with the atoms it has in the rows up to ``row``."""
        start = row
        while start > 0 and self.residue_key(start - 1) == self.residue_key(row):
            start -= 1
        name = self.value(self.comps, row)
        present = [self.value(self.names, r) for r in range(start, row + 1)]
        return LastResidue(
            chain=self.value(self.chains, row),
            name=name,
            number=self.value(self.numbers, row) + self.value(self.icodes, row),
            missing=residues.missing_heavy_atoms(name, present),
        )


def _cif_string(raw: str) -> str:
    import gemmi

    return gemmi.cif.as_string(raw)


def _check_cif_numbers(source: str, text: str, site: _AtomSite, rows: np.ndarray) -> set[int | None]:
    """Raise ``RecordError`` for a coordinate or B-factor of ``rows`` that is not a finite
    number; return the serial numbers (None: no usable one) of atoms without a B-factor."""
    # '?' or '.' is an unknown B-factor (NaN in the output); any other text must be a number. Rows whose values
    # are all plain decimals (nearly all) are numbers; the others are checked one by one, in order, so the error
    # names the first row with a problem.
    if site.b_factors is None:
        unknown = np.ones(len(rows), dtype=bool)
        suspect = np.zeros(len(rows), dtype=bool)
    else:
        b_factors = plain_decimals.codes(site.b_factors, rows)
        unknown = plain_decimals.equals(b_factors, "?") | plain_decimals.equals(b_factors, ".")
        suspect = ~(plain_decimals.plain(b_factors) | unknown)
    for column in site.coords:
        suspect |= ~plain_decimals.plain(plain_decimals.codes(column, rows))
    if "\0" in text:  # a NUL reads as the padding of the arrays above: check every row
        suspect[:] = True
    for row in rows[suspect]:
        problems = [number_problem(f"{axis} coordinate", col[row], cif=True) for axis, col in zip("xyz", site.coords)]
        if site.b_factors is not None and site.b_factors[row] not in ("?", "."):
            problems.append(number_problem("B-factor", site.b_factors[row], cif=True))
        problem = next((p for p in problems if p), None)
        if problem:
            line = site.line_of(text, row)
            where = f"line {line}" if line else f"_atom_site row {row + 1}"
            raise RecordError(f"{source}: {where} ({site.atom(row)}): {problem}")
    return {_serial(site.ids[row]) if site.ids is not None else None for row in rows[unknown]}


def check_mmcif(source: str, block, text: str) -> Findings:
    """The mmCIF counterpart of :func:`check_pdb`, on the block gemmi parsed."""
    table = block.find_mmcif_category("_atom_site.")
    if not table or len(table) == 0:
        return Findings()
    site = _AtomSite(table)
    lacking = [f"_atom_site.Cartn_{axis}" for axis, col in zip("xyz", site.coords) if col is None]
    if lacking:
        raise RecordError(f"{source}: the atom_site table has no {', '.join(lacking)} column")
    rows = site.first_model_rows()
    unknown_b = _check_cif_numbers(source, text, site, rows)
    alt_ids = site.column("label_alt_id")
    found = {
        "unknown_b": frozenset(unknown_b - {None}),
        "unknown_b_unmapped": None in unknown_b,
        # gemmi gives an atom an alternative location from label_alt_id unless the value is null ('.' or '?')
        "altlocs": alt_ids is not None and bool(set(alt_ids) - {".", "?"}),
    }
    # Rows of a later model after the first show that the first one was written whole.
    if rows[-1] != len(table) - 1 or not _ends_in_atom_site(block, text):
        return Findings(**found)
    return Findings(unterminated=True, last=site.last_residue(rows[-1]), **found)


def _ends_in_atom_site(block, text: str) -> bool:
    """The atom_site rows are the last thing in the file: no other item and no closing ``#``."""
    items = list(block)
    if not items:
        return False
    last = items[-1]
    tag = last.loop.tags[0] if last.loop is not None else last.pair[0] if last.pair is not None else ""
    if not tag.startswith("_atom_site."):
        return False
    tail = text.rstrip()
    last_line = tail[tail.rfind("\n") + 1 :].strip()
    return not last_line.startswith("#")
