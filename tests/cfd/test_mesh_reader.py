"""The ``cfd.mesh`` reader stage: direct reads, the plugin test kit, and a full run through hpcprep.run
on a folder that mixes good mesh files with every kind of bad one."""

from __future__ import annotations

import gzip
import os

import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep.stages import ErrorRecord, RecordError, record_id
from hpcprep.testing import assert_stage_ok
from hpcprep_cfd.mesh_reader import MeshReader

from .mesh_writers import TET, TRI, obj_groups, ply, stl_ascii, stl_binary

RIGHT = TRI + [5.0, 0.0, 0.0]


def read_all(**params):
    """(rows, errors) of a reader over its whole plan, as the runner would see them."""
    reader = MeshReader(params)
    rows, errors = [], []
    for item in reader.plan():
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    errors.append(out)
                    continue
                cols = {k: v.to_pylist() if isinstance(v, pa.Array) else list(v) for k, v in out.items()}
                rows += [dict(zip(cols, values)) for values in zip(*cols.values())]
        except RecordError as exc:
            errors.append(ErrorRecord(item.source, "input", str(exc)))
    return rows, errors


def triangles(row) -> np.ndarray:
    v = np.asarray(row["vertices"]).reshape(-1, 3)
    return v[np.asarray(row["faces"]).reshape(-1, 3)]


@pytest.fixture
def multi(tmp_path):
    """An ASCII STL with three solids, the middle one with a NaN coordinate."""
    bad = TRI.copy()
    bad[1, 0] = np.nan
    path = tmp_path / "multi.stl"
    path.write_bytes(stl_ascii([("left", TRI, TET), ("broken", bad, TET), ("right", RIGHT, TET)]))
    return str(path)


def test_parts_and_whole_file(multi):
    rows, errors = read_all(paths=[multi], split="parts")
    assert [r["name"] for r in rows] == ["left", "right"]
    assert [r["record_id"] for r in rows] == [record_id(multi, 0), record_id(multi, 2)]
    assert [(r["n_vertices"], r["n_faces"], r["format"], r["source"]) for r in rows] == [(4, 4, "stl-ascii", multi)] * 2
    np.testing.assert_array_equal(triangles(rows[0]), TRI[TET])
    np.testing.assert_array_equal(triangles(rows[1]), RIGHT[TET])
    assert [(e.record_id, e.message) for e in errors] == [
        (record_id(multi, 1), f"{multi}: solid 'broken': non-finite vertex coordinate nan (line 36)")
    ]
    # one record per file: the NaN spoils it
    rows, errors = read_all(paths=[multi])
    assert rows == [] and [(e.record_id, e.message) for e in errors] == [
        (record_id(multi, 0), f"{multi}: non-finite vertex coordinate nan (line 36)")
    ]


def test_whole_file_record(tmp_path):
    path = tmp_path / "pair.obj.gz"
    path.write_bytes(gzip.compress(obj_groups([("a", TRI, TET), ("b", RIGHT, TET)])))
    rows, errors = read_all(paths=[str(tmp_path)])
    assert errors == [] and len(rows) == 1
    assert (rows[0]["name"], rows[0]["format"], rows[0]["n_vertices"], rows[0]["n_faces"]) == ("pair", "obj", 8, 8)
    np.testing.assert_array_equal(triangles(rows[0]), np.concatenate([TRI[TET], RIGHT[TET]]))
    rows, _ = read_all(paths=[str(tmp_path)], split="parts")
    assert [r["name"] for r in rows] == ["a", "b"]


def test_kit(tmp_path):
    assert_stage_ok(MeshReader, tmp_path)


# -- a full run -------------------------------------------------------------------------------

BAD = {
    # file name: (bytes, words of the message)
    "truncated.stl": (stl_binary(TRI, TET)[:-20], "truncated binary STL: the header declares 4 facets"),
    "count.stl": (stl_binary(TRI, TET, count=5), "binary STL facet count does not match the file size"),
    "empty.obj": (b"", "the file is empty"),
    "range.obj": (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "face index 4 is out of range: the file has 3 vertices"),
    "zero.obj": (b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "face index 0 (OBJ indices start at 1)"),
    "header.ply": (
        ply(TRI, TET.tolist(), "ascii").replace(b"element face", b"elephant face"),
        "broken PLY header: unknown keyword 'elephant'",
    ),
    "short.ply": (ply(TRI, TET.tolist(), "binary_little_endian")[:-30], "PLY data is short"),
    "cut.stl.gz": (gzip.compress(stl_ascii([("a", TRI, TET)]))[:-12], "damaged or truncated gzip data"),
    "points.obj": (b"v 0 0 0\nv 1 0 0\n", "no faces"),
}


def test_run(tmp_path, ray_local, multi):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    os.replace(multi, folder / "multi.stl")
    (folder / "box.stl").write_bytes(stl_binary(RIGHT, TET, b"solid box, but binary"))
    (folder / "sub" / "groups.obj.gz").write_bytes(gzip.compress(obj_groups([("a", TRI, TET), ("b", RIGHT, TET)])))
    (folder / "tet.PLY").write_bytes(ply(TRI, TET.tolist(), "binary_big_endian"))
    (folder / "notes.txt").write_text("not a mesh, and not planned\n")
    for name, (data, _) in BAD.items():
        (folder / name).write_bytes(data)
    out = tmp_path / "out"
    spec = {
        "run": {"output": str(out), "name": "meshes"},
        "reader": {"stage": "cfd.mesh", "paths": [str(folder)], "split": "parts"},
        "encoders": [],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, progress=False)
    good = 2 + 1 + 2 + 1  # multi (left, right), box, groups (a, b), tet
    bad = 1 + len(BAD)  # the broken solid of multi, and each bad file
    assert result.manifest["counts"] == {"inputs": good + bad, "outputs": good, "errors": bad, "balanced": True}

    errors = result.errors().to_pylist()
    by_file = {}
    for e in errors:
        assert e["source"] in e["message"] and e["stage"] == "reader:cfd.mesh"
        by_file[os.path.basename(e["source"])] = e["message"]
    assert sorted(by_file) == sorted([*BAD, "multi.stl"])
    for name, (_, words) in BAD.items():
        assert words in by_file[name], (name, by_file[name])
    assert "solid 'broken': non-finite vertex coordinate nan" in by_file["multi.stl"]
    multi_error = next(e for e in errors if e["source"].endswith("multi.stl"))
    assert multi_error["record_id"] == record_id(str(folder / "multi.stl"), 1)

    table = pq.read_table(out / "table")
    assert table.schema.field("vertices").type == pa.list_(pa.float64())
    assert table.schema.field("faces").type == pa.list_(pa.int64())
    assert table.schema.field("n_faces").type == pa.int64()
    rows = {(os.path.basename(r["source"]), r["name"]): r for r in table.to_pylist()}
    assert sorted(rows) == [
        ("box.stl", "box"),
        ("groups.obj.gz", "a"),
        ("groups.obj.gz", "b"),
        ("multi.stl", "left"),
        ("multi.stl", "right"),
        ("tet.PLY", "tet"),
    ]
    formats = {k: r["format"] for k, r in rows.items()}
    assert formats[("box.stl", "box")] == "stl-binary" and formats[("multi.stl", "left")] == "stl-ascii"
    assert formats[("tet.PLY", "tet")] == "ply" and formats[("groups.obj.gz", "b")] == "obj"
    expected = {"box.stl": RIGHT, "a": TRI, "b": RIGHT, "left": TRI, "right": RIGHT, "tet": TRI}
    for (file, name), r in rows.items():
        np.testing.assert_array_equal(triangles(r), expected.get(name, expected.get(file))[TET])
        assert (r["n_vertices"], r["n_faces"]) == (4, 4)
        assert len(r["vertices"]) == 12 and len(r["faces"]) == 12
    assert rows[("multi.stl", "right")]["record_id"] == record_id(str(folder / "multi.stl"), 2)
