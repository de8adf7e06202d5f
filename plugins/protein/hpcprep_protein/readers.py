"""Reader stages ``protein.structure``, ``protein.fasta`` and ``protein.ss_table``.

Each input file is one Ray read task. Bad records (a chain without any complete
backbone, a FASTA record with digits in it, an SS table row whose labels do not match
its sequence) become error records naming the file and the chain, line or row; the rest
of the file is kept. A file that cannot be read at all is one error. See
``plugins/protein/docs/readers.md``.

One module because the three readers share the file handling (paths, gzip, binary
and encoding checks, one task per file) and the chain-row building; the checks of the
file's numbers and ending are in ``integrity``, residue tables in ``residues``.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator
from typing import Literal

import numpy as np
from hpcprep import Column, ErrorRecord, InputItem, LocalPath, RecordError, StageExamples, record_id
from hpcprep.columns import RowBatch
from hpcprep.fasta import FastaLayout, FastaScanner
from hpcprep.file_reader import FileParams, FileReader
from pydantic import Field

from . import integrity, residues

#: Rows per batch a read task hands on at most.
MAX_BATCH_ROWS = 4096

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb.gz", ".ent.gz", ".cif.gz", ".mmcif.gz")
FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fasta.gz", ".fa.gz", ".faa.gz", ".fas.gz")
TABLE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")

BACKBONE = ("N", "CA", "C", "O")
#: The atoms whose coordinates a chain row carries, in the order _chain_row finds them.
ATOM_COLUMNS = (*BACKBONE, "CB")

#: Chain-level flags of ``protein.structure`` (documented in docs/readers.md).
FLAGS = (
    "missing_backbone",  # some residue lacks N, CA, C or O
    "missing_cb",  # some non-glycine residue lacks CB
    "unknown_residue",  # some residue became 'X'
    "modified_residue",  # some residue is a modification mapped to its parent (MSE -> M)
    "altloc",  # the chain had alternative conformations; the first was kept
    "charge_columns_ignored",  # old-style PDB with text in columns 79-80; those columns were dropped
    "unterminated",  # the file ends right after an atom (no END/TER, no closing '#'): later residues may be missing
    "truncated",  # the file ends inside an incomplete residue of this chain (kept only with truncated="flag")
)


_ASCII_ONLY = bytes(range(128)) + b"?" * 128


# -- structures -------------------------------------------------------------------------


class StructureParams(FileParams):
    paths: list[LocalPath] = Field(description="PDB or mmCIF files (plain or gzip), directories, globs or s3:// URIs")
    suffixes: list[str] | None = Field(
        list(STRUCTURE_SUFFIXES), description="when expanding directories keep only files ending in one of these"
    )
    b_factor_kind: Literal["auto", "b_factor", "plddt"] = Field(
        "auto", description="what the B-factor column holds: 'auto' calls AlphaFold models (by title or AF- name) plddt"
    )
    virtual_cb: bool = Field(
        False, description="give glycine (and residues lacking CB) an ideal virtual CB from N, CA, C instead of NaN"
    )
    min_complete_residues: int = Field(
        1, ge=1, description="a chain with fewer residues whose N, CA, C and O are all present is an error record"
    )
    truncated: Literal["error", "flag"] = Field(
        "error",
        description="a file that ends inside an incomplete residue with nothing after its atoms (no END): "
        "'error' reports the file, 'flag' keeps its chains with flag 'truncated' on the chain cut short",
    )


def _is_alphafold(st, source: str) -> bool:
    name = os.path.basename(source)
    if name.startswith("AF-") or st.name.startswith("AF-"):
        return True
    info = dict(st.info)
    for key in ("_struct.title", "_struct_keywords.text", "_software.name"):
        if "alphafold" in info.get(key, "").lower():
            return True
    return any("alphafold" in r.lower() for r in st.raw_remarks[:50])


def _parse_structure(source: str, data: bytes):
    """A gemmi Structure, notes that say what was done to read it, what the checks of the
    text found (``integrity.Findings``) and the format; coordinates that are not finite
    numbers are errors."""
    import gemmi

    notes = []
    if b"\0" in data[:4096]:
        raise RecordError(
            f"{source}: binary data, not a PDB or mmCIF text file (MMTF, BinaryCIF and archives other than gzip "
            "are not read)"
        )
    text = data.decode("utf-8", "replace")
    head = text.lstrip()[:2000]
    is_cif = head.startswith("data_") or "\n_atom_site." in text[:200000] or "\nloop_" in head
    if not is_cif:
        # PDB is fixed-column ASCII and gemmi cuts its columns by byte: a non-ASCII byte
        # decoded to a multi-byte character would be cut in two. One '?' per such byte
        # keeps the columns where the file put them (a number with one fails its check).
        text = data.translate(_ASCII_ONLY).decode("ascii")
    try:
        if is_cif:
            block = gemmi.cif.read_string(text).sole_block()
            st = gemmi.make_structure_from_block(block)
        else:
            try:
                st = gemmi.read_pdb_string(text)
            except RuntimeError as exc:
                if "charge" not in str(exc):
                    raise
                # Old PDB files number their lines in columns 73-80; drop what is past column 78.
                lines = [ln[:78] if ln.startswith(("ATOM", "HETATM")) else ln for ln in text.splitlines()]
                st = gemmi.read_pdb_string("\n".join(lines) + "\n")
                notes.append("charge_columns_ignored")
        findings = integrity.check_mmcif(source, block, text) if is_cif else integrity.check_pdb(source, text)
    except (RuntimeError, ValueError, IndexError, OverflowError) as exc:
        kind = "mmCIF" if is_cif else "PDB"
        raise RecordError(f"{source}: cannot parse as {kind}: {_gemmi_message(exc)}") from None
    return st, notes, findings, "mmCIF" if is_cif else "PDB"


def _gemmi_message(exc: Exception) -> str:
    """gemmi's message on one line, its position in a string given as a line number
    ("string:78:0(2255): parse error" -> "line 78: parse error")."""
    message = " ".join(str(exc).split())
    loop = re.match(r"string:(\d+):\S*:? Wrong number of values in loop (\S+)", message)
    if loop:
        # gemmi points at the loop's first line; the damage is at its end (a row cut short).
        return (
            f"the loop {loop.group(2)} that starts at line {loop.group(1)} does not hold a whole number of "
            "rows: its last row is incomplete (a file cut short?)"
        )
    return re.sub(r"^string:(\d+):\d+(?:\(\d+\))?:\s*", r"line \1: ", message)


def _file_flags(findings, chain_name: str) -> list[str]:
    """Flags a chain gets from how its file ends (see ``integrity.Findings``)."""
    flags = ["unterminated"] if findings.unterminated else []
    if findings.cut and findings.last.chain == chain_name:
        flags.append("truncated")
    return flags


def _assign_model_ss8(chain_rows: list[dict]) -> None:
    """Secondary structure of the model's chains, assigned together: a sheet between chains (a fibril, a dimer)
    needs both partners, which a chain record alone does not carry."""
    from .kernels import assign_model_secondary_structure

    chains = [(row["n"], row["ca"], row["c"], row["o"], row["residue_names"] == "PRO") for row in chain_rows]
    for row, ss8 in zip(chain_rows, assign_model_secondary_structure(chains), strict=True):
        row["model_ss8"] = ss8


def _virtual_cb(n: np.ndarray, ca: np.ndarray, c: np.ndarray) -> np.ndarray:
    b = ca - n
    cc = c - ca
    a = np.cross(b, cc)
    return (-0.58273431 * a + 0.56802827 * b - 0.54067466 * cc + ca).astype(np.float32)


class StructureReader(FileReader):
    """Protein chains of PDB/mmCIF files (first model) with sequence, backbone and CB coordinates, via gemmi."""

    name = "protein.structure"
    Params = StructureParams
    outputs = (
        Column("source", "string", "path or URI of the structure file"),
        Column("record_id", "string", "stable id: record_id(source, model, chain)"),
        Column("model", "int32", "model number (always the first model of the file)"),
        Column("chain", "string", "author chain name"),
        Column("entity", "string", "entity id (mmCIF, or assigned by gemmi); empty when unknown"),
        Column("sequence", "string", "one-letter sequence of the residues present; modified -> parent, else X"),
        Column("length", "int64", "residues in the chain (= len(sequence))"),
        Column("residue_numbers", "list<int32>", "author residue numbers"),
        Column("insertion_codes", "string", "one character per residue, ' ' where there is none"),
        Column("residue_names", "list<string>", "three-letter residue names as in the file (MSE stays MSE)"),
        Column("n", "list<float32>", "N coordinates, flattened L*3, NaN for a missing atom"),
        Column("ca", "list<float32>", "CA coordinates, flattened L*3, NaN for a missing atom"),
        Column("c", "list<float32>", "C coordinates, flattened L*3, NaN for a missing atom"),
        Column("o", "list<float32>", "O coordinates (OXT when O is absent), flattened L*3, NaN for a missing atom"),
        Column("cb", "list<float32>", "CB coordinates, flattened L*3; NaN for GLY and missing CB unless virtual_cb"),
        Column("b_factor", "list<float32>", "CA B-factor per residue (pLDDT for AlphaFold models); NaN without CA"),
        Column("b_factor_kind", "string", "'b_factor' or 'plddt'"),
        Column("backbone_complete", "list<bool>", "N, CA, C and O all present"),
        Column("flags", "list<string>", "chain-level flags, see FLAGS"),
        Column(
            "model_ss8",
            "string",
            "DSSP state per residue, assigned on the whole model (every chain present, mkdssp 4.x's rule, P for "
            "polyproline II); '-' where the backbone is incomplete. protein.dssp hands it on",
        ),
    )

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        import gemmi

        source = item.source
        data = self.read_bytes(item)
        if not data.strip():
            raise RecordError(f"{source}: the file is empty")
        st, notes, findings, kind_of_file = _parse_structure(source, data)
        if len(st) == 0 or st[0].count_atom_sites() == 0:
            raise RecordError(f"{source}: no model with atoms (no ATOM/HETATM records)")
        if findings.cut and self.params.truncated == "error":
            raise RecordError(findings.truncation_message(source, kind_of_file))
        st.setup_entities()
        model = st[0]
        model_num = int(model.num)
        altloc_chains = (
            {ch.name for ch in model for res in ch for at in res if at.has_altloc()} if findings.altlocs else set()
        )
        model.remove_alternative_conformations()
        kind = self.params.b_factor_kind
        if kind == "auto":
            kind = "plddt" if _is_alphafold(st, source) else "b_factor"

        chain_rows: list[dict] = []
        found_protein = False
        seen: dict[str, int] = {}
        for chain in model:
            poly = chain.get_polymer()
            ptype = poly.check_polymer_type()
            if poly.length() == 0 or ptype not in (gemmi.PolymerType.PeptideL, gemmi.PolymerType.PeptideD):
                continue  # water, ligands, nucleic acids
            found_protein = True
            k = seen.get(chain.name, 0)
            seen[chain.name] = k + 1
            rid = record_id(source, model_num, chain.name) if k == 0 else record_id(source, model_num, chain.name, k)
            chain_flags = (
                notes + (["altloc"] if chain.name in altloc_chains else []) + _file_flags(findings, chain.name)
            )
            row = self._chain_row(source, poly, chain.name, rid, st, kind, chain_flags, findings)
            if isinstance(row, str):
                yield ErrorRecord(source, rid, row)
                continue
            chain_rows.append(row)
        if not found_protein:
            raise RecordError(f"{source}: no protein chain in the first model (only water, ligands or nucleic acids)")
        _assign_model_ss8(chain_rows)
        batch = RowBatch(self.outputs)
        for row in chain_rows:
            batch.add(**row)
            if len(batch) >= MAX_BATCH_ROWS:
                yield batch.take()
        if len(batch):
            yield batch.take()

    def _chain_row(
        self, source: str, poly, chain_name: str, rid: str, st, kind: str, flags: list[str], findings
    ) -> dict | str:
        source_flags = set(flags)
        names, numbers, icodes = [], [], []
        # Five atoms (ATOM_COLUMNS) times three coordinates per residue in one flat list, made an array once: a
        # NumPy assignment per atom would cost more than finding the atom.
        xyz = [math.nan] * (15 * poly.length())
        b_factors = [math.nan] * poly.length()
        for i, res in enumerate(poly):
            seqid = res.seqid
            if seqid.num is None:  # gemmi's reading of a blank residue-number field
                return f"{source}: chain {chain_name!r}: residue {i + 1} ({res.name}) has no residue number"
            names.append(res.name)
            numbers.append(seqid.num)
            icodes.append(seqid.icode if seqid.icode not in ("", "\0") else " ")
            # The first atom of each name, OXT standing in for a missing O.
            found = (
                res.find_atom("N", "*"),
                res.find_atom("CA", "*"),
                res.find_atom("C", "*"),
                res.find_atom("O", "*") or res.find_atom("OXT", "*"),
                res.find_atom("CB", "*"),
            )
            for k, atom in enumerate(found):
                if atom is not None:
                    p = atom.pos
                    j = 15 * i + 3 * k
                    xyz[j], xyz[j + 1], xyz[j + 2] = p.x, p.y, p.z
            ca = found[1]
            if ca is not None and not findings.b_factor_unknown(ca.serial):
                b_factors[i] = ca.b_iso
        per_atom = np.array(xyz, dtype=np.float32).reshape(-1, 5, 3)
        coords = {name: np.ascontiguousarray(per_atom[:, k]) for k, name in enumerate(ATOM_COLUMNS)}
        bfac = np.array(b_factors, dtype=np.float32)
        length = len(names)
        if length == 0:
            return f"{source}: chain {chain_name!r} is empty"
        complete = ~np.isnan(np.stack([coords[a][:, 0] for a in BACKBONE])).any(axis=0)
        if int(complete.sum()) < self.params.min_complete_residues:
            return (
                f"{source}: chain {chain_name!r} has {int(complete.sum())} of {length} residues with "
                f"N, CA, C and O all present (need {self.params.min_complete_residues})"
            )
        letters, kinds = zip(*(residues.classify(n) for n in names), strict=True)
        if not complete.all():
            source_flags.add("missing_backbone")
        is_gly = np.array([n == "GLY" for n in names])
        no_cb = np.isnan(coords["CB"][:, 0])
        if (no_cb & ~is_gly).any():
            source_flags.add("missing_cb")
        if "unknown" in kinds:
            source_flags.add("unknown_residue")
        if "modified" in kinds:
            source_flags.add("modified_residue")
        cb = coords["CB"]
        if self.params.virtual_cb and no_cb.any():
            virt = _virtual_cb(coords["N"], coords["CA"], coords["C"])
            cb = np.where(no_cb[:, None], virt, cb)
        entity = ""
        ent = st.get_entity_of(poly)
        if ent is not None:
            entity = ent.name
        return {
            "source": source,
            "record_id": rid,
            "model": int(st[0].num),
            "chain": chain_name,
            "entity": entity,
            "sequence": "".join(letters),
            "length": length,
            "residue_numbers": np.asarray(numbers, dtype=np.int32),
            "insertion_codes": "".join(icodes),
            "residue_names": np.asarray(names, dtype=object).astype(str),
            "n": coords["N"].reshape(-1),
            "ca": coords["CA"].reshape(-1),
            "c": coords["C"].reshape(-1),
            "o": coords["O"].reshape(-1),
            "cb": cb.reshape(-1),
            "b_factor": bfac,
            "b_factor_kind": kind,
            "backbone_complete": complete,
            "flags": np.asarray(sorted(source_flags), dtype=object).astype(str)
            if source_flags
            else np.array([], dtype=str),
        }

    @classmethod
    def examples(cls, workdir):
        good = os.path.join(workdir, "tripeptide.pdb")
        with open(good, "w") as f:
            f.write(_EXAMPLE_PDB)
        bad = os.path.join(workdir, "ligand_only.pdb")
        with open(bad, "w") as f:
            f.write(_EXAMPLE_HETATM)
        return StageExamples(params={"paths": [good]}, good={"paths": [good]}, bad={"paths": [bad]})


def _example_atoms() -> str:
    lines, serial = [], 1
    base = {
        "N": (0.0, 0.0, 0.0),
        "CA": (1.46, 0.0, 0.0),
        "C": (2.0, 1.4, 0.0),
        "O": (1.3, 2.4, 0.0),
        "CB": (2.0, -0.8, 1.2),
    }
    for i, resname in enumerate(("MET", "GLY", "SER")):
        for name, (x, y, z) in base.items():
            if resname == "GLY" and name == "CB":
                continue
            lines.append(
                f"ATOM  {serial:5d}  {name:<3} {resname} A{i + 1:4d}    {x + 3.8 * i:8.3f}{y:8.3f}{z:8.3f}"
                f"  1.00 20.00           {name[0]}"
            )
            serial += 1
    return "\n".join(lines) + "\nTER\nEND\n"


_EXAMPLE_PDB = _example_atoms()
_EXAMPLE_HETATM = (
    "HETATM    1  O   HOH W   1       0.000   0.000   0.000  1.00 20.00           O\n"
    "HETATM    2  O   HOH W   2       3.000   0.000   0.000  1.00 20.00           O\nEND\n"
)


# -- FASTA ------------------------------------------------------------------------------

_UNIPROT = re.compile(r"^(sp|tr)\|([^|\s]+)\|(\S+)(?:\s+(.*))?$")
_FIELD = re.compile(r"\s(OS|OX|GN|PE|SV)=")
_ILLEGAL = re.compile(r"[^A-Za-z* \t]")


def parse_header(header: str) -> dict:
    """UniProt-style header (without '>') → accession, entry_name, description, organism, taxon_id, gene.

    ``sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2``.
    Other headers: accession is the first word, description the rest; the other fields
    are empty (taxon_id -1).
    """
    header = header.strip()
    out = {"accession": "", "entry_name": "", "description": "", "organism": "", "taxon_id": -1, "gene": ""}
    m = _UNIPROT.match(header)
    if not m:
        first, _, rest = header.partition(" ")
        out["accession"] = first
        out["description"] = rest.strip()
        return out
    out["accession"], out["entry_name"] = m.group(2), m.group(3)
    rest = " " + (m.group(4) or "")
    parts = _FIELD.split(rest)
    out["description"] = parts[0].strip()
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        value = value.strip()
        if key == "OS":
            out["organism"] = value
        elif key == "OX":
            out["taxon_id"] = int(value) if value.isdigit() else -1
        elif key == "GN":
            out["gene"] = value
    return out


class FastaParams(FileParams):
    paths: list[LocalPath] = Field(description="protein FASTA files (plain or gzip), directories, globs or s3:// URIs")
    suffixes: list[str] | None = Field(
        list(FASTA_SUFFIXES), description="when expanding directories keep only files ending in one of these"
    )
    uppercase: bool = Field(True, description="upper-case the sequence")
    min_length: int = Field(1, ge=1, description="a record with fewer residues than this is an error record")


class ProteinFastaReader(FileReader):
    """Protein FASTA records with UniProt-style headers parsed into accession, organism, taxon and gene."""

    name = "protein.fasta"
    Params = FastaParams
    outputs = (
        Column("source", "string", "path or URI of the FASTA file"),
        Column("record_id", "string", "stable id: record_id(source, n) for the n-th record (0-based) of the file"),
        Column("accession", "string", "UniProt accession (P69905), or the first word of other headers"),
        Column("entry_name", "string", "UniProt entry name (HBA_HUMAN); empty for other headers"),
        Column("description", "string", "protein name / rest of the header, without the OS=... fields"),
        Column("organism", "string", "OS= field; empty when absent"),
        Column("taxon_id", "int64", "OX= field; -1 when absent"),
        Column("gene", "string", "GN= field; empty when absent"),
        Column("sequence", "string", "the residues (a final '*' is dropped)"),
        Column("length", "int64", "residues in the sequence"),
    )

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        source = item.source
        data = self.read_bytes(item)
        batch = RowBatch(self.outputs)
        for out in self._records(source, io.BytesIO(data)):
            if isinstance(out, ErrorRecord):
                yield out
                continue
            batch.add(**out)
            if len(batch) >= MAX_BATCH_ROWS:
                yield batch.take()
        if len(batch):
            yield batch.take()

    def _records(self, source: str, stream) -> Iterator[dict | ErrorRecord]:
        """Records through the core's FASTA scanner; names may repeat (ids count records)."""
        scanner = FastaScanner(stream, collect=True, source=source, unique_names=False)
        for n, (rec, seq) in enumerate(scanner):
            yield self._finish(source, n, rec, seq)
        if scanner.fatal:
            raise RecordError(scanner.fatal)

    def _finish(self, source: str, n: int, rec: FastaLayout, seq: bytes) -> dict | ErrorRecord:
        rid = record_id(source, n)
        where = f"{source}: record {rec.name or '(no name)'!r} (header at line {rec.header_line})"
        if rec.problem:
            return ErrorRecord(source, rid, f"{source}: {rec.problem}")
        text = seq.decode("utf-8", "replace")
        bad = _ILLEGAL.search(text)
        if bad is not None:
            line, col = rec.locate(bad.start())
            return ErrorRecord(source, rid, f"{where}: illegal character {bad.group(0)!r} at line {line}, column {col}")
        text = text.replace(" ", "").replace("\t", "")
        if text.endswith("*"):
            text = text[:-1]
        if "*" in text:
            return ErrorRecord(source, rid, f"{where}: '*' inside")
        if len(text) < self.params.min_length:
            what = "empty record (no sequence)" if not text else f"{len(text)} residues < min_length"
            return ErrorRecord(source, rid, f"{where}: {what}")
        if self.params.uppercase:
            text = text.upper()
        fields = parse_header(f"{rec.name} {rec.description}")
        return {"source": source, "record_id": rid, **fields, "sequence": text, "length": len(text)}

    @classmethod
    def examples(cls, workdir):
        good = os.path.join(workdir, "good.fasta")
        with open(good, "w") as f:
            f.write(
                ">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2\n"
                "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHV\n"
                ">plain some description\nMKT\n"
            )
        bad = os.path.join(workdir, "bad.fasta")
        with open(bad, "w") as f:
            f.write(">x\nMK1T\n>empty\n>y\nMKT\n")
        return StageExamples(params={"paths": [good]}, good={"paths": [good]}, bad={"paths": [bad]})


# -- secondary-structure tables -----------------------------------------------------------

SS8_LETTERS = frozenset("HGIEBTSCP-")
SS3_LETTERS = frozenset("HEC")
_AA = re.compile(r"^[A-Za-z]+$")


def ss8_to_ss3(ss8: str) -> str:
    """H, G, I → H; E, B → E; everything else → C."""
    return "".join("H" if ch in "HGI" else "E" if ch in "EB" else "C" for ch in ss8)


class SsTableParams(FileParams):
    paths: list[LocalPath] = Field(
        description="CSV/TSV (plain or gzip) or Parquet files, directories, globs or s3:// URIs"
    )
    suffixes: list[str] | None = Field(
        list(TABLE_SUFFIXES), description="when expanding directories keep only files ending in one of these"
    )
    sequence_column: str = Field("seq", description="column with the one-letter amino-acid sequence")
    ss8_column: str = Field("sst8", description="column with the 8-state labels (H G I E B T S C; '-' or P for coil)")
    ss3_column: str | None = Field(
        "sst3", description="column with 3-state labels (H E C); None or a missing column derives them from ss8"
    )
    id_column: str | None = Field(None, description="column with a record name copied into 'id'; None leaves it empty")
    label_format: Literal["string"] = Field("string", description="labels are one character per residue in one string")
    delimiter: str | None = Field(None, description="CSV delimiter; None: tab for .tsv, comma otherwise")


class SsTableReader(FileReader):
    """Sequences with 8- and 3-state secondary-structure labels from CSV or Parquet tables (NetSurfP, Kaggle)."""

    name = "protein.ss_table"
    Params = SsTableParams
    outputs = (
        Column("source", "string", "path or URI of the table"),
        Column("record_id", "string", "stable id: record_id(source, row) with the 0-based data row"),
        Column("id", "string", "value of id_column; empty without it"),
        Column("sequence", "string", "one-letter sequence, upper case"),
        Column("ss8", "string", "8-state labels, upper case, one per residue"),
        Column("ss3", "string", "3-state labels (from the table, or derived from ss8)"),
        Column("length", "int64", "residues"),
    )

    def _table(self, item: InputItem):
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        source = item.source
        data = self.read_bytes(item)
        lower = source.lower()
        try:
            if data[:4] == b"PAR1" or lower.endswith((".parquet", ".pq")):
                return pq.read_table(pa.BufferReader(data)), "row"
            delim = self.params.delimiter or ("\t" if ".tsv" in lower else ",")
            convert = pacsv.ConvertOptions(strings_can_be_null=False, column_types=None)
            return pacsv.read_csv(
                io.BytesIO(data), parse_options=pacsv.ParseOptions(delimiter=delim), convert_options=convert
            ), "line"
        except (pa.ArrowInvalid, OSError) as exc:
            raise RecordError(f"{source}: cannot read the table: {exc}") from None

    def read(self, item: InputItem) -> Iterator[dict | ErrorRecord]:
        p = self.params
        source = item.source
        table, unit = self._table(item)
        names = table.column_names
        for col in (p.sequence_column, p.ss8_column) + ((p.id_column,) if p.id_column else ()):
            if col not in names:
                raise RecordError(f"{source}: no column {col!r}; the columns are {names}")
        seqs = table.column(p.sequence_column).to_pylist()
        ss8s = table.column(p.ss8_column).to_pylist()
        ss3s = table.column(p.ss3_column).to_pylist() if p.ss3_column and p.ss3_column in names else None
        ids = table.column(p.id_column).to_pylist() if p.id_column else None
        batch = RowBatch(self.outputs)
        for i in range(table.num_rows):
            rid = record_id(source, i)
            where = f"{source}: line {i + 2}" if unit == "line" else f"{source}: row {i}"
            seq, ss8 = seqs[i], ss8s[i]
            ss3 = ss3s[i] if ss3s is not None else None
            problem = self._check(seq, ss8, ss3, ss3s is not None)
            if problem:
                yield ErrorRecord(source, rid, f"{where}: {problem}")
                continue
            seq, ss8 = seq.strip().upper(), ss8.strip().upper()
            ss3 = ss3.strip().upper() if ss3s is not None else ss8_to_ss3(ss8)
            ident = "" if ids is None or ids[i] is None else str(ids[i])
            batch.add(record_id=rid, id=ident, sequence=seq, ss8=ss8, ss3=ss3, length=len(seq))
            if len(batch) >= MAX_BATCH_ROWS:
                yield batch.take(source=source)
        if len(batch):
            yield batch.take(source=source)

    def _check(self, seq, ss8, ss3, has_ss3: bool) -> str | None:
        p = self.params
        if not isinstance(seq, str) or not seq.strip():
            return f"empty or missing {p.sequence_column!r}"
        if not isinstance(ss8, str) or not ss8.strip():
            return f"empty or missing {p.ss8_column!r}"
        seq, ss8 = seq.strip().upper(), ss8.strip().upper()
        if not _AA.match(seq):
            bad = next(ch for ch in seq if not ch.isalpha())
            return f"illegal character {bad!r} in {p.sequence_column!r}"
        if len(ss8) != len(seq):
            return f"{p.ss8_column!r} has {len(ss8)} labels for {len(seq)} residues"
        odd = sorted(set(ss8) - SS8_LETTERS)
        if odd:
            return f"unknown 8-state label(s) {''.join(odd)!r} in {p.ss8_column!r} (expected one of HGIEBTSC, P or -)"
        if has_ss3:
            if not isinstance(ss3, str) or not ss3.strip():
                return f"empty or missing {p.ss3_column!r}"
            ss3 = ss3.strip().upper()
            if len(ss3) != len(seq):
                return f"{p.ss3_column!r} has {len(ss3)} labels for {len(seq)} residues"
            odd = sorted(set(ss3) - SS3_LETTERS)
            if odd:
                return f"unknown 3-state label(s) {''.join(odd)!r} in {p.ss3_column!r} (expected H, E or C)"
        return None

    @classmethod
    def examples(cls, workdir):
        good = os.path.join(workdir, "ss.csv")
        with open(good, "w") as f:
            f.write("pdb_id,seq,sst8,sst3\n1abc,MKTAYIA,CHHHHHC,CHHHHHC\n2xyz,GSEE,CEEC,CEEC\n")
        bad = os.path.join(workdir, "ss_bad.csv")
        with open(bad, "w") as f:
            f.write("pdb_id,seq,sst8,sst3\n1abc,MKTAYIA,CHHHC,CHHHC\n")
        return StageExamples(
            params={"paths": [good]}, good={"paths": [good], "id_column": "pdb_id"}, bad={"paths": [bad]}
        )


READERS = (StructureReader, ProteinFastaReader, SsTableReader)
