"""The fuzz targets: bytes in, the reader run on them as the runner runs it, the property checked.

Each target writes the input to a fresh temporary directory under the name the reader
expects (a suffix, or for OpenFOAM a whole case, see :func:`unpack_case`), builds the
reader stage from parameters as a spec would, and calls :func:`checks.check_reader`.
Where the stage has options that send the bytes down different code paths (windows or
whole records, parts or whole files, a streamed or an indexed gzip), every input runs
through each of those configurations, so that a saved crash replays the same way
without any hidden choice.

``TARGETS`` maps a name to its :class:`Target`; ``Target.modules`` lists the pure-Python
modules to instrument for coverage (Numba kernels cannot be: instrumented bytecode would
no longer compile, so only their Python callers are). Seeds live in
``tests/fuzz/seeds/<name>/``, crashes in ``tests/fuzz/crashes/<name>/``.

One module because the fuzz runner and the regression test look a target up by name in one
table (``TARGETS``), and each target is a few lines over the shared unpacking and checks.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .checks import NonFinite, ReadOutcome, Violation, check_reader, never, spelled_only, spells_nonfinite

#: Inputs larger than this are not fuzzed (libFuzzer's -max_len); seeds stay below it.
MAX_LEN = 64 << 10


@dataclass(frozen=True)
class Target:
    name: str
    #: checks the property on one input; returns what the reader made of it
    run: Callable[[bytes], ReadOutcome]
    #: modules whose Python functions atheris instruments
    modules: tuple[str, ...]
    #: suffix of a saved crash, so that its owner can open it as what it is
    suffix: str
    doc: str = ""


class _Scratch:
    """A temporary directory for one input, removed afterwards."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="hpcprep-fuzz-"))
        return self.path

    def __exit__(self, *exc) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _is_gzip(data: bytes) -> bool:
    return data[:2] == b"\x1f\x8b"


# -- cfd.mesh: STL, OBJ, PLY -------------------------------------------------------------------


def _mesh_target(fmt: str) -> Callable[[bytes], ReadOutcome]:
    def run(data: bytes) -> ReadOutcome:
        from hpcprep_cfd.mesh_reader import MeshReader

        out = ReadOutcome()
        with _Scratch() as tmp:
            path = tmp / f"input.{fmt}{'.gz' if _is_gzip(data) else ''}"
            path.write_bytes(data)
            for split in ("none", "parts"):
                # The reader's contract: a non-finite coordinate makes its part an error record,
                # so no NaN or infinity may ever reach a record, spelled in the file or not.
                out += check_reader(MeshReader({"paths": [str(path)], "split": split}), data, never)
        return out

    return run


_MESH_MODULES = (
    "hpcprep_cfd.mesh_reader",
    "hpcprep_cfd.meshfiles.read",
    "hpcprep_cfd.meshfiles.common",
    "hpcprep_cfd.meshfiles.stl",
    "hpcprep_cfd.meshfiles.obj",
    "hpcprep_cfd.meshfiles.ply",
    "hpcprep.storage",
)


# -- OpenFOAM: single files through the parsers, whole cases through the reader -------------------


def run_foamfile(data: bytes) -> ReadOutcome:
    """One OpenFOAM file through every parser the reader uses on such files.

    The parsers' contract is ``FoamFileError`` (the reader turns it into a ``RecordError``)
    and nothing else, whichever parser a file reaches: polyMesh files are read by name,
    not by class, so any bytes can meet any of them. In the outcome a parser that
    returned counts as a row, one that refused the file as a failed item.
    """
    from hpcprep_cfd.openfoam.fields import read_field
    from hpcprep_cfd.openfoam.foamfile import FoamFileError, read_face_list, read_foam_file, read_list, top_dictionary
    from hpcprep_cfd.openfoam.polymesh import read_boundary

    with _Scratch() as tmp:
        path = tmp / "boundary"
        path.write_bytes(data)
        out = ReadOutcome()
        try:
            f = read_foam_file(str(path))
        except FoamFileError as exc:
            _check_message(exc)
            return ReadOutcome(failed_items=1)
        calls = [
            ("dictionary", lambda: top_dictionary(f)),
            ("dictionary (bounded lists)", lambda: top_dictionary(f, (7, "the test bound is 7"))),
            ("label list", lambda: read_list(f, f.body, "label")),
            ("label list (bounded)", lambda: read_list(f, f.body, "label", (5, "the test bound is 5"))),
            ("scalar list", lambda: read_list(f, f.body, "scalar")),
            ("vector list", lambda: read_list(f, f.body, "vector", (len(data), "the file's size"))),
            ("face list", lambda: read_face_list(f, f.body)),
            ("boundary", lambda: read_boundary(str(tmp))),
        ]
        cells = _stated_count(data)
        calls.append(("field", lambda: read_field(str(path), "T", cells)))
        calls.append(("field with patches", lambda: read_field(str(path), "T", cells, _some_patches(cells))))
        for what, call in calls:
            try:
                parsed = call()
            except FoamFileError as exc:
                _check_message(exc, what)
                out.failed_items += 1
                continue
            _check_foam_output(parsed, data, what)
            out.rows += 1
        return out


def _check_message(exc: Exception, what: str = "header") -> None:
    if not str(exc).strip():
        raise Violation(f"{what}: FoamFileError without a message")


def _stated_count(data: bytes) -> int:
    """A cell count that makes the field parser go past its size check: the first list size
    the file states (capped), else 3."""
    m = re.search(rb"List<\w+>\s*(\d{1,6})", data)
    return min(int(m.group(1)), 100_000) if m else 3


def _some_patches(cells: int):
    from hpcprep_cfd.openfoam.polymesh import Patch

    return [
        Patch("inlet", "patch", cells, 2),
        Patch("walls", "wall", cells + 2, 3),
        Patch("frontAndBack", "empty", 0, 0),
    ]


def _check_foam_output(out, data: bytes, what: str) -> None:
    """Arrays a parser returned: finite unless the text spells a non-finite number, or the
    file is binary (then NaN bits are what it holds)."""
    arrays = []

    def collect(x):
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            arrays.append(x)
        elif isinstance(x, dict):
            for v in x.values():
                collect(v)
        elif isinstance(x, (list, tuple)):
            for v in x:
                collect(v)
        elif hasattr(x, "internal"):  # FieldData
            collect(x.internal)
            collect(list(x.patches.values()))

    collect(out)
    for arr in arrays:
        if arr.size and not np.isfinite(arr).all():
            if _declares_binary(data) or spells_nonfinite(data):
                continue
            raise Violation(f"{what}: a non-finite value the file does not hold ({arr.reshape(-1)[:6]!r})")


def _declares_binary(data: bytes) -> bool:
    from .checks import decompressed_views

    return any(re.search(rb"format\s+binary", v) for v in decompressed_views(data))


#: The separator of the files of a case in one fuzz input (see ``unpack_case``).
CASE_MARKER = b"%%FILE "
_CASE_SPLIT = re.compile(rb"(?:^|\n)%%FILE ([^\n]{0,200})\n")
_SAFE_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")


def pack_case(files: dict[str, bytes]) -> bytes:
    """The inverse of ``unpack_case``: ``{relative path: content}`` as one input."""
    return b"\n".join(CASE_MARKER + name.encode() + b"\n" + content for name, content in files.items())


def unpack_case(data: bytes, root: Path) -> list[str]:
    """Write the files of a packed case under ``root``: each starts with a line
    ``%%FILE relative/path`` and runs to the next such line. Names that would leave
    ``root`` (absolute, ``..``, odd characters, deeper than 4) are skipped, so that
    mutated names cannot write anywhere else. Returns the names written."""
    parts = _CASE_SPLIT.split(data)
    written = []
    for i in range(1, len(parts) - 1, 2):
        name = parts[i].decode("latin-1")
        pieces = name.split("/")
        if not 0 < len(pieces) <= 4 or not all(_SAFE_PART.match(p) and p not in (".", "..") for p in pieces):
            continue
        target = root.joinpath(*pieces)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir():
                continue
            target.write_bytes(parts[i + 1])
        except OSError:
            continue  # a name used as a file and then as a directory: the first one wins
        written.append(name)
    return written


def _openfoam_policy(data: bytes) -> Callable:
    binary = _declares_binary(data)

    def allowed(batch: dict, found: NonFinite, spelled: bool) -> bool:
        if not found.column.startswith("field_"):
            # centres, volumes, areas and points come from points checked to be finite:
            # a non-finite one is computed, never read
            return False
        kind = batch["kind"][found.row] if "kind" in batch else "cells"
        if kind == "patch" and np.isnan(found.values).all():
            return True  # a patch without a value entry: NaN by design (fields.py)
        return spelled or binary

    return allowed


def run_openfoam(data: bytes) -> ReadOutcome:
    from hpcprep_cfd.openfoam.reader import OpenFoamReader

    with _Scratch() as tmp:
        case = tmp / "case"
        case.mkdir()
        unpack_case(data, case)
        policy = _openfoam_policy(data)
        params = {"paths": [str(case)], "chunk_size": 7, "boundary": True, "polyhedra": True}
        return check_reader(OpenFoamReader(params), data, policy)


_FOAM_MODULES = (
    "hpcprep_cfd.openfoam.foamfile",
    "hpcprep_cfd.openfoam.polymesh",
    "hpcprep_cfd.openfoam.fields",
    "hpcprep_cfd.openfoam.reader",
)


# -- genomics.fasta, genomics.fastq ------------------------------------------------------------------

#: Configurations every FASTA input runs through: whole records; small overlapping windows
#: split over several items (offsets, gaps, tails); the stream path of a gzip file.
_FASTA_CONFIGS = (
    {},
    {"window": 6, "stride": 4, "item_bases": 200, "uppercase": True},
    {"window": 5, "min_tail": 0, "keep_gaps": True, "decompress_gzip": False},
)


def run_fasta(data: bytes) -> ReadOutcome:
    from hpcprep_genomics.readers import FastaReader

    out = ReadOutcome()
    with _Scratch() as tmp:
        path = tmp / ("input.fa.gz" if _is_gzip(data) else "input.fa")
        path.write_bytes(data)
        for n, config in enumerate(_FASTA_CONFIGS):
            # a fresh cache per configuration: the index of one must not serve another
            params = {"paths": [str(path)], "cache_dir": str(tmp / f"cache{n}"), "index_beside": False, **config}
            out += check_reader(FastaReader(params), data, spelled_only)
    return out


def run_fastq(data: bytes) -> ReadOutcome:
    from hpcprep_genomics.readers import FastqReader

    out = ReadOutcome()
    with _Scratch() as tmp:
        path = tmp / ("input.fq.gz" if _is_gzip(data) else "input.fq")
        path.write_bytes(data)
        for config in ({}, {"batch_rows": 2}):
            out += check_reader(FastqReader({"paths": [str(path)], **config}), data, spelled_only)
    return out


_GENOMICS_MODULES = (
    "hpcprep_genomics.readers",
    "hpcprep_genomics.fastx",
    "hpcprep.fasta",
    "hpcprep_genomics.fasta_index",
    "pyfaidx",
)


# -- protein.structure: PDB and mmCIF ---------------------------------------------------------------

_ATOM_COLUMNS = ("n", "ca", "c", "o", "cb")
_BACKBONE = ("n", "ca", "c", "o")


def _protein_policy(batch: dict, found: NonFinite, spelled: bool) -> bool:
    """NaN marks a missing atom (all three coordinates) and an unknown B-factor; a
    residue with its whole backbone must have finite backbone coordinates; infinity is
    never a marker."""
    if spelled:
        return True
    values = found.values
    if np.isinf(values).any():
        return False
    if found.column == "b_factor":
        return True
    if found.column not in _ATOM_COLUMNS or values.size % 3:
        return False
    atoms = values.reshape(-1, 3)
    nan = np.isnan(atoms)
    if (nan.any(axis=1) & ~nan.all(axis=1)).any():
        return False  # an atom with some coordinates NaN and others not: no missing atom looks so
    if found.column in _BACKBONE and "backbone_complete" in batch:
        complete = np.asarray(batch["backbone_complete"][found.row], dtype=bool)
        if len(complete) == len(atoms) and (complete & nan.all(axis=1)).any():
            return False  # "complete" residues whose backbone atom is missing
    return True


def _structure_target(suffix: str) -> Callable[[bytes], ReadOutcome]:
    def run(data: bytes) -> ReadOutcome:
        from hpcprep_protein.readers import StructureReader

        out = ReadOutcome()
        with _Scratch() as tmp:
            path = tmp / f"input{suffix}{'.gz' if _is_gzip(data) else ''}"
            path.write_bytes(data)
            for config in ({}, {"truncated": "flag", "virtual_cb": True}):
                out += check_reader(StructureReader({"paths": [str(path)], **config}), data, _protein_policy)
        return out

    return run


_PROTEIN_MODULES = ("hpcprep_protein.readers", "hpcprep.fasta", "hpcprep_protein.integrity", "hpcprep_protein.residues")


# -- the TOML pipeline spec ----------------------------------------------------------------------------

_REGISTRY = None


def registry():
    """Every installed plugin's stages, loaded once per process (loading costs seconds)."""
    global _REGISTRY
    if _REGISTRY is None:
        from hpcprep.plugins import PluginRegistry

        _REGISTRY = PluginRegistry()
    return _REGISTRY


def run_spec(data: bytes) -> ReadOutcome:
    """``resolve`` gives a resolved spec or a ``SpecError`` listing problems, nothing else.

    Inputs are not planned (``plan_inputs=False``): a fuzzed ``paths = ["/"]`` would walk
    the whole file system, which is what the user asked for, not a bug; the readers'
    ``plan`` has targets of its own. In the outcome a resolved spec counts as a row, a
    refused one as a failed item.
    """
    from hpcprep.spec import ResolvedSpec, SpecError, resolve

    with _Scratch() as tmp:
        path = tmp / "spec.toml"
        path.write_bytes(data)
        cwd = os.getcwd()
        os.chdir(tmp)  # relative run.output and paths resolve inside the scratch directory
        try:
            try:
                resolved = resolve(str(path), registry(), plan_inputs=False)
            except SpecError as exc:
                problems = exc.problems
                if not isinstance(problems, list) or not problems:
                    raise Violation(f"SpecError without problems: {exc!r}") from None
                bad = [p for p in problems if not isinstance(p, str) or not p.strip()]
                if bad:
                    raise Violation(f"SpecError with empty or non-text problems: {bad!r}") from None
                return ReadOutcome(failed_items=1)
            if not isinstance(resolved, ResolvedSpec):
                raise Violation(f"resolve returned {type(resolved).__name__}, not a ResolvedSpec")
            resolved.to_dict()  # what plan and the manifest print must work for a resolved spec
            return ReadOutcome(rows=1)
        finally:
            os.chdir(cwd)


_SPEC_MODULES = (
    "hpcprep.spec",
    "hpcprep.wiring",
    "hpcprep.plugins",
    "hpcprep.stages",
    "hpcprep.placement",
    "tomllib._parser",
)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("stl", _mesh_target("stl"), _MESH_MODULES, ".stl", "cfd.mesh on .stl files (ASCII, binary, gzip)"),
        Target("obj", _mesh_target("obj"), _MESH_MODULES, ".obj", "cfd.mesh on .obj files"),
        Target("ply", _mesh_target("ply"), _MESH_MODULES, ".ply", "cfd.mesh on .ply files (all three encodings)"),
        Target(
            "foamfile",
            run_foamfile,
            _FOAM_MODULES,
            ".foam",
            "one OpenFOAM file through the FoamFile header, dictionary, list, face list, boundary and field parsers",
        ),
        Target(
            "openfoam",
            run_openfoam,
            _FOAM_MODULES,
            ".case",
            "cfd.openfoam on a whole case packed into one input (see unpack_case)",
        ),
        Target(
            "fasta", run_fasta, _GENOMICS_MODULES, ".fa", "genomics.fasta (plain, gzip, bgzip), three configurations"
        ),
        Target("fastq", run_fastq, _GENOMICS_MODULES, ".fq", "genomics.fastq (plain, gzip, bgzip)"),
        Target("pdb", _structure_target(".pdb"), _PROTEIN_MODULES, ".pdb", "protein.structure on PDB files"),
        Target("mmcif", _structure_target(".cif"), _PROTEIN_MODULES, ".cif", "protein.structure on mmCIF files"),
        Target("spec", run_spec, _SPEC_MODULES, ".toml", "hpcprep.spec.resolve on a TOML pipeline spec"),
    )
}


def signature(exc: BaseException) -> str:
    """What tells two crashes apart: the exception type and the innermost frame in the
    project's code (or the first line of a violation's message)."""
    import traceback

    if isinstance(exc, Violation):
        # the message without the scratch paths and numbers that differ from input to input
        text = re.sub(r"\S*hpcprep-fuzz-[^/\s]+/\S*", "FILE", str(exc))
        text = re.sub(r"\d+", "N", text.splitlines()[0] if text else "")
        return f"{type(exc).__name__}: {text[-90:]}"
    kind = type(exc).__qualname__
    if type(exc).__module__ not in ("builtins", "__main__"):
        kind = f"{type(exc).__module__}.{kind}"  # zlib.error, not a bare "error"
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/plugins/" in f.filename or "/core/hpcprep/" in f.filename]
    last = (ours or frames or [None])[-1]
    where = f"{Path(last.filename).name}:{last.lineno}" if last else "?"
    return f"{kind}@{where}"
