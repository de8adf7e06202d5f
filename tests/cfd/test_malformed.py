"""The malformed-input corpus of the cfd readers (``tests/data/malformed/{stl,obj,ply,openfoam}``):
each bad input through its reader with the message ``expected.toml`` gives, seeded mutations
of good inputs, and one real run per reader of the whole corpus mixed with good real files.

The property every reader keeps: it yields rows and ``ErrorRecord``s or raises
``RecordError``, with a message naming the file; never another exception, and never a
non-finite number in its rows that the file did not hold.
"""

from __future__ import annotations

import gzip
import random
import shutil
import tomllib
from pathlib import Path

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest
import trimesh
from hpcprep import InputItem
from hpcprep.testing import read_records
from hpcprep_cfd.mesh_reader import MeshReader
from hpcprep_cfd.openfoam import polymesh
from hpcprep_cfd.openfoam.reader import OpenFoamReader

from tests.cfd import data
from tests.cfd.make_malformed_corpus import ply_binary_tet, stl_binary, stl_text
from tests.conftest import require_tool

CORPUS = Path(__file__).resolve().parents[1] / "data" / "malformed"
MESH_FORMATS = ("stl", "obj", "ply")
BASE = CORPUS / "openfoam" / "base"  # the real 36-cell blockMesh case the openfoam cases edit


def expected(fmt: str) -> dict[str, dict]:
    with open(CORPUS / fmt / "expected.toml", "rb") as f:
        return tomllib.load(f)


MESH_CASES = [(fmt, name) for fmt in MESH_FORMATS for name in expected(fmt)]
FOAM_CASES = list(expected("openfoam"))


def read_item(reader, source: str) -> tuple[list[dict], list[str]]:
    """Rows and error messages of one input item, read as a read task does."""
    return read_records(reader, [InputItem(source, 0)])


def assert_finite(rows: list[dict], columns: tuple[str, ...]) -> None:
    for row in rows:
        for name in columns:
            assert np.isfinite(np.asarray(row[name], dtype=np.float64)).all(), (row["record_id"], name)


def make_foam_case(root: Path, name: str) -> Path:
    """The base case with the edits of ``openfoam/expected.toml[name]``, at ``root/name``."""
    case = root / name
    shutil.copytree(BASE, case)
    mesh = case / "constant" / "polyMesh"
    for edit in expected("openfoam")[name]["edits"]:
        path = mesh / edit["file"]
        if edit.get("delete"):
            path.unlink()
        elif "truncate" in edit:
            path.write_bytes(path.read_bytes()[: edit["truncate"]])
        elif "line" in edit:
            lines = path.read_text().split("\n")
            lines[edit["line"] - 1] = edit["text"]
            path.write_text("\n".join(lines))
        else:
            old, new = edit["replace"]
            text = path.read_text()
            assert old in text, (name, edit)
            path.write_text(text.replace(old, new, 1))
    return case


# -- the corpus, one input at a time --------------------------------------------------------------


def test_the_corpus_has_ten_cases_per_format_each_with_a_message():
    for fmt in MESH_FORMATS:
        cases = expected(fmt)
        files = {p.name for p in (CORPUS / fmt).iterdir() if p.name != "expected.toml"}
        assert len(cases) >= 10 and set(cases) == files, fmt
        assert all(c["message"] and c["what"] for c in cases.values())
    cases = expected("openfoam")
    assert len(cases) >= 10 and all(c["message"] and c["edits"] and c["file"] for c in cases.values())


@pytest.mark.parametrize("fmt,name", MESH_CASES)
def test_mesh_file_gives_its_message(fmt, name):
    path = str(CORPUS / fmt / name)
    rows, messages = read_item(MeshReader({"paths": [path]}), path)
    assert rows == [] and len(messages) == 1, messages
    assert messages[0].startswith(f"{path}: ")
    assert expected(fmt)[name]["message"] in messages[0]


@pytest.mark.parametrize("name", FOAM_CASES)
def test_openfoam_case_gives_its_message(tmp_path, name):
    case = make_foam_case(tmp_path, name)
    rows, messages = read_item(OpenFoamReader({"paths": [str(case)], "boundary": True}), str(case))
    assert rows == [] and len(messages) == 1, messages
    entry = expected("openfoam")[name]
    assert messages[0].startswith(str(case / "constant" / "polyMesh" / entry["file"]))
    assert entry["message"] in messages[0]


def test_the_openfoam_base_reads():
    rows, messages = read_item(OpenFoamReader({"paths": [str(BASE)], "boundary": True}), str(BASE))
    assert messages == []
    cells = [r for r in rows if r["kind"] == "cells"]
    assert sum(r["n_cells"] for r in cells) == 36 and {r["patch"] for r in rows} == {"", "inlet", "walls"}
    assert np.sum(np.concatenate([r["volumes"] for r in cells])) == pytest.approx(1.0, rel=1e-12)


def test_the_openfoam_base_is_what_blockmesh_makes(tmp_path):
    from tests.cfd.test_vs_openfoam import foam

    require_tool("blockMesh")
    case = tmp_path / "base"
    shutil.copytree(BASE / "system", case / "system")
    foam("blockMesh", case)
    ours, theirs = (polymesh.read_polymesh(str(c / "constant" / "polyMesh")) for c in (BASE, case))
    for attr in ("points", "face_offsets", "face_points", "owner", "neighbour"):
        assert np.array_equal(getattr(ours, attr), getattr(theirs, attr)), attr
    assert ours.patches == theirs.patches and ours.n_cells == theirs.n_cells == 36


# -- seeded mutations: the property on inputs nobody wrote by hand ---------------------------------

WORDS = "nan inf -1 0 1e400 9000000000000 99999999999999999999 4294967295 ( ) { } // solid endsolid vertex f v"
TOKENS = [w.encode() for w in (WORDS + " element end_header 9000000000000{0} List<scalar> \u00b9").split()]
TOKENS += [b"\xff", b"\x00", b"\n", b" ", b"\\\n"]  # a byte that is no UTF-8, NUL, line breaks, an OBJ continuation


def mutate(data: bytes, rng: random.Random) -> bytes:
    """A few random edits: a byte changed, a token inserted, bytes deleted, a cut, a repeat."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(b"x")
        i = rng.randrange(len(out))
        op = rng.randrange(5)
        if op == 0:
            out[i] = rng.randrange(256)
        elif op == 1:
            out[i:i] = rng.choice(TOKENS)
        elif op == 2:
            del out[i : i + rng.randint(1, 20)]
        elif op == 3:
            del out[i:]
        else:
            j = rng.randrange(len(out))
            out[i:i] = out[j : j + rng.randint(1, 40)]
    return bytes(out)


def mesh_seeds() -> dict[str, bytes]:
    tet = trimesh.Trimesh([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    return {
        "a.stl": (stl_text("a") + stl_text("b")).encode(),
        "b.stl": stl_binary(),
        "c.obj": b"o a\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\ng b\nv 0 0 1\nf 1/1 -2//3 4/2/1\nf -1 -2 -3 -4\n",
        "d.ply": tet.export(file_type="ply", encoding="ascii"),
        "e.ply": ply_binary_tet(),
    }


@pytest.mark.parametrize("seed", range(4))
def test_mutated_meshes_give_rows_or_a_record_error(tmp_path, seed):
    rng = random.Random(seed)
    seeds = mesh_seeds()
    for i in range(300):
        name = rng.choice(sorted(seeds))
        path = tmp_path / f"{i}_{name}"
        path.write_bytes(mutate(seeds[name], rng))
        for split in ("none", "parts"):
            rows, messages = read_item(MeshReader({"paths": [str(path)], "split": split}), str(path))
            assert_finite(rows, ("vertices",))
            assert all(m.startswith(str(path)) for m in messages), messages


@pytest.mark.parametrize("seed", range(2))
def test_mutated_openfoam_cases_give_rows_or_a_record_error(tmp_path, seed):
    rng = random.Random(seed)
    names = ("points", "faces", "owner", "neighbour", "boundary")
    for i in range(40):
        case = tmp_path / f"case{i}"
        shutil.copytree(BASE, case)
        path = case / "constant" / "polyMesh" / rng.choice(names)
        path.write_bytes(mutate(path.read_bytes(), rng))
        reader = OpenFoamReader({"paths": [str(case)], "boundary": True, "polyhedra": True, "chunk_size": 7})
        rows, messages = read_item(reader, str(case))
        assert_finite(rows, ("centres", "volumes", "area_vectors", "points"))
        assert all(m.startswith(str(case)) for m in messages), messages
        shutil.rmtree(case)


# -- whole runs: the corpus mixed with good real files -------------------------------------------


def table_rows(path: Path, sources: set[str]) -> list[dict]:
    rows = [r for r in pq.read_table(path).to_pylist() if r["source"] in sources]
    return sorted(rows, key=lambda r: r["record_id"])


def run(out: Path, reader: dict, encoders: list[dict]):
    spec = {
        "run": {"output": str(out), "name": out.name},
        "reader": reader,
        "encoders": encoders,
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    return hpcprep.run(spec, progress=False)


def assert_errors(result, want: dict[str, str]) -> None:
    """One error row per bad source, each with its message and the source's path in it."""
    errors = result.errors().to_pylist()
    assert sorted(e["source"] for e in errors) == sorted(want)
    for e in errors:
        assert e["source"] in e["message"] and want[e["source"]] in e["message"], e


def test_mesh_corpus_in_a_run_with_real_files(tmp_path, ray_local):
    good = tmp_path / "good"
    good.mkdir()
    for name in ("cyclone.stl.gz", "building_wtc2.obj.gz", "flange.stl.gz"):
        shutil.copy(data.geometry(name), good / name)
    # PLY: real geometry written by an independent writer, in both encodings
    cyclone = trimesh.load(gzip.open(data.geometry("cyclone.stl.gz")), file_type="stl")
    (good / "cyclone_binary.ply").write_bytes(cyclone.export(file_type="ply", encoding="binary"))
    (good / "cyclone_ascii.ply").write_bytes(cyclone.export(file_type="ply", encoding="ascii"))
    sources = {str(p) for p in good.iterdir()}
    bad = {str(CORPUS / fmt / name): case["message"] for fmt in MESH_FORMATS for name, case in expected(fmt).items()}
    health = [{"stage": "cfd.health"}]

    mixed = run(
        tmp_path / "mixed",
        {"stage": "cfd.mesh", "paths": [str(good), *(str(CORPUS / f) for f in MESH_FORMATS)]},
        health,
    )
    alone = run(tmp_path / "alone", {"stage": "cfd.mesh", "paths": [str(good)]}, health)

    assert alone.counts == {"inputs": 5, "outputs": 5, "errors": 0, "balanced": True}
    assert mixed.counts == {"inputs": 5 + len(bad), "outputs": 5, "errors": len(bad), "balanced": True}
    assert_errors(mixed, bad)
    rows = table_rows(tmp_path / "mixed" / "table", sources)
    assert len(rows) == 5 and rows == table_rows(tmp_path / "alone" / "table", sources)


def test_openfoam_corpus_in_a_run_with_real_cases(tmp_path, ray_local):
    good = tmp_path / "good"
    shutil.copytree(BASE, good / "blockMesh36")
    shutil.copytree(data.case("airFoil2D"), good / "airFoil2D")
    bad_root = tmp_path / "bad"
    bad = {str(make_foam_case(bad_root, name)): case["message"] for name, case in expected("openfoam").items()}
    reader = {"stage": "cfd.openfoam", "chunk_size": 4000, "time": "none", "boundary": True}

    mixed = run(tmp_path / "mixed", {**reader, "paths": [str(good), str(bad_root)]}, [])
    alone = run(tmp_path / "alone", {**reader, "paths": [str(good)]}, [])

    # blockMesh36: 1 chunk + 2 patches; airFoil2D: 3 chunks of 10720 cells + 4 patches
    records = (1 + 2) + (3 + 4)
    assert alone.counts == {"inputs": records, "outputs": records, "errors": 0, "balanced": True}
    assert mixed.counts == {"inputs": records + len(bad), "outputs": records, "errors": len(bad), "balanced": True}
    assert_errors(mixed, bad)
    sources = {str(good / "blockMesh36"), str(good / "airFoil2D")}
    rows = table_rows(tmp_path / "mixed" / "table", sources)
    assert len(rows) == records and rows == table_rows(tmp_path / "alone" / "table", sources)
