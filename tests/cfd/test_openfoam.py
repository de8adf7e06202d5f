"""The ``cfd.openfoam`` reader on its own: fields, chunks, patches, polyhedra, bad input, a full run.

Geometry against OpenFOAM itself is in ``test_vs_openfoam.py``. Small cases come from
``write_box_case`` (a structured hex box whose centres and volumes are known exactly)
and the airFoil2D tutorial (gzipped ASCII mesh, fields in 0/).
"""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest
from hpcprep.stages import ErrorRecord, RecordError
from hpcprep.testing import assert_stage_ok
from hpcprep_cfd.openfoam import foamfile, geometry, polymesh
from hpcprep_cfd.openfoam.box_case import box_mesh, write_box_case
from hpcprep_cfd.openfoam.reader import OpenFoamReader

from tests.cfd import data

# -- helpers (also used by test_vs_openfoam.py) ---------------------------------------------


def read_all(**params) -> tuple[list[dict], list[str]]:
    """Every record as a dict of column -> value, and the error messages, reading as a task does."""
    reader = OpenFoamReader(params)
    rows, errors = [], []
    for item in reader.plan():
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    errors.append(out.message)
                    continue
                n = len(out["source"])
                rows += [{k: v[i] for k, v in out.items()} for i in range(n)]
        except RecordError as exc:
            errors.append(str(exc))
    return rows, errors


def read_records(**params) -> list[dict]:
    rows, errors = read_all(**params)
    assert errors == []
    return rows


def write_binary_polymesh(mesh: polymesh.PolyMesh, out: Path, label_bits: int = 32, gzip_files=()) -> None:
    """Write ``mesh`` as an OpenFOAM binary polyMesh (faces as faceCompactList), little endian."""
    out.mkdir(parents=True, exist_ok=True)
    label = np.dtype(f"<i{label_bits // 8}")
    arch = f"LSB;label={label_bits};scalar=64"

    def header(cls: str, obj: str, fmt: str = "binary") -> bytes:
        arch_line = f'    arch "{arch}";\n' if fmt == "binary" else ""
        return (
            f"FoamFile\n{{\n    version 2.0;\n    format {fmt};\n    class {cls};\n{arch_line}"
            f'    location "constant/polyMesh";\n    object {obj};\n}}\n\n'
        ).encode()

    def blist(arr: np.ndarray, dtype) -> bytes:
        n = len(arr)
        return f"{n}\n(".encode() + np.ascontiguousarray(arr, dtype=dtype).tobytes() + b")\n"

    files = {
        "points": header("vectorField", "points") + blist(mesh.points, "<f8"),
        "faces": header("faceCompactList", "faces") + blist(mesh.face_offsets, label) + blist(mesh.face_points, label),
        "owner": header("labelList", "owner") + blist(mesh.owner, label),
        "neighbour": header("labelList", "neighbour") + blist(mesh.neighbour, label),
    }
    patches = "".join(
        f"    {p.name}\n    {{\n        type {p.type};\n        nFaces {p.size};\n        startFace {p.start};\n    }}\n"
        for p in mesh.patches
    )
    files["boundary"] = (
        header("polyBoundaryMesh", "boundary", "ascii") + f"{len(mesh.patches)}\n(\n{patches})\n".encode()
    )
    for name, blob in files.items():
        if name in gzip_files:
            (out / f"{name}.gz").write_bytes(gzip.compress(blob))
        else:
            (out / name).write_bytes(blob)


@pytest.fixture
def box(tmp_path) -> Path:
    case = tmp_path / "box"
    write_box_case(str(case), (4, 3, 2), (2.0, 3.0, 1.0))
    return case


def airfoil() -> Path:
    return Path(data.case("airFoil2D"))


# -- the stage --------------------------------------------------------------------------------


def test_kit(tmp_path):
    assert_stage_ok(OpenFoamReader, tmp_path)


def test_box_geometry_is_exact(box):
    rows = read_records(paths=[str(box)], chunk_size=5)
    centres = np.concatenate([r["centres"] for r in rows]).reshape(-1, 3)
    volumes = np.concatenate([r["volumes"] for r in rows])
    i, j, k = np.meshgrid(np.arange(4), np.arange(3), np.arange(2), indexing="ij")
    expect = np.stack([(i + 0.5) * 0.5, (j + 0.5) * 1.0, (k + 0.5) * 0.5], axis=-1).transpose(2, 1, 0, 3)
    np.testing.assert_allclose(centres, expect.reshape(-1, 3), rtol=0, atol=1e-15)
    np.testing.assert_allclose(volumes, 0.25, rtol=1e-15)
    assert [r["n_cells"] for r in rows] == [5, 5, 5, 5, 4] and [r["chunk"] for r in rows] == [0, 1, 2, 3, 4]
    assert len({r["record_id"] for r in rows}) == 5
    assert all(r["kind"] == "cells" and r["patch"] == "" and r["case"] == "box" and r["time"] == "0" for r in rows)
    # fields: nonuniform scalar list, uniform vector expanded to every cell
    t = np.concatenate([r["field_T"] for r in rows])
    u = np.concatenate([r["field_U"] for r in rows]).reshape(-1, 3)
    assert np.array_equal(t, np.arange(24) * 0.5)
    assert u.shape == (24, 3) and np.all(u == [1, 2, 3])


def test_airfoil_fields():
    rows = read_records(paths=[str(airfoil())], chunk_size=100_000, boundary=True)
    cells = [r for r in rows if r["kind"] == "cells"]
    assert len(cells) == 1 and cells[0]["n_cells"] == 10720 and cells[0]["time"] == "0"
    names = {k[len("field_") :] for k in cells[0] if k.startswith("field_")}
    assert names == {"U", "p", "nut", "nuTilda"}
    u = cells[0]["field_U"].reshape(-1, 3)
    assert u.shape == (10720, 3) and np.all(u == [25.75, 3.62, 0])
    assert cells[0]["field_p"].shape == (10720,) and np.all(cells[0]["field_p"] == 0)
    patches = {r["patch"]: r for r in rows if r["kind"] == "patch"}
    assert list(patches) == ["inlet", "outlet", "walls", "frontAndBack"]
    assert [patches[p]["n_cells"] for p in patches] == [134, 160, 78, 21440]
    # nut's walls have 'value uniform 0'; freestream patches of U and empty patches have none
    assert np.all(patches["walls"]["field_nut"] == 0)
    assert np.all(np.isnan(patches["inlet"]["field_U"])) and patches["inlet"]["field_U"].shape == (134 * 3,)
    assert np.all(np.isnan(patches["frontAndBack"]["field_p"]))
    # the two sides of a 2-D mesh: the empty patch's area is twice the cells' area
    span = 0.05  # the extrusion depth (z from 0 to 0.05)
    cell_area = cells[0]["volumes"].sum() / span
    assert patches["frontAndBack"]["volumes"].sum() == pytest.approx(2 * cell_area, rel=1e-9)
    # closed surface: the outward area vectors of all patches sum to zero
    total = sum(p["area_vectors"].reshape(-1, 3).sum(axis=0) for p in patches.values())
    assert np.abs(total).max() < 1e-9 * patches["frontAndBack"]["volumes"].sum()


def test_chunks_concatenate_to_the_whole(box):
    for params in ({"paths": [str(airfoil())]}, {"paths": [str(box)]}):
        whole = read_records(**params, chunk_size=10**6, polyhedra=False)
        parts = read_records(**params, chunk_size=997 if "box" not in params["paths"][0] else 7)
        assert len(whole) == 1 and len(parts) > 1
        assert [r["cell_start"] for r in parts] == [sum(p["n_cells"] for p in parts[:i]) for i in range(len(parts))]
        for col in whole[0]:
            if col in ("centres", "volumes", "area_vectors") or col.startswith("field_"):
                assert np.array_equal(np.concatenate([r[col] for r in parts]), whole[0][col]), col


def test_boundary_records_of_the_box(box):
    rows = read_records(paths=[str(box)], boundary=True, chunk_size=1000)
    patches = {r["patch"]: r for r in rows if r["kind"] == "patch"}
    assert list(patches) == ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"]
    size = np.array([2.0, 3.0, 1.0])
    for axis, (lo, hi) in enumerate((("xmin", "xmax"), ("ymin", "ymax"), ("zmin", "zmax"))):
        side_area = np.prod(np.delete(size, axis))
        for name, sign, where in ((lo, -1, 0.0), (hi, 1, size[axis])):
            r = patches[name]
            c = r["centres"].reshape(-1, 3)
            a = r["area_vectors"].reshape(-1, 3)
            assert np.allclose(c[:, axis], where)
            assert r["volumes"].sum() == pytest.approx(side_area)
            assert np.allclose(a[:, axis] * sign, r["volumes"]) and np.allclose(np.delete(a, axis, 1), 0)
    # T: 'value uniform i' on even patches (fixedValue), none (NaN) on odd ones; U has none anywhere
    for i, r in enumerate(patches.values()):
        if i % 2 == 0:
            assert np.all(r["field_T"] == i)
        else:
            assert np.all(np.isnan(r["field_T"]))
        assert np.all(np.isnan(r["field_U"])) and len(r["field_U"]) == 3 * r["n_cells"]
        assert r["chunk"] == i and r["record_id"].endswith(f":patch:{r['patch']}")


def polyhedron_volume(points: np.ndarray, stream: np.ndarray, start: int) -> tuple[float, int, list[int]]:
    """Volume of one cell from its face stream (divergence theorem over fan triangles), its
    number of faces and the sizes of its faces."""
    n_faces = int(stream[start])
    i = start + 1
    vol = 0.0
    sizes = []
    for _ in range(n_faces):
        m = int(stream[i])
        ids = stream[i + 1 : i + 1 + m]
        assert ids.min() >= 0 and ids.max() < len(points)
        p = points[ids]
        for t in range(1, m - 1):
            vol += np.dot(p[0], np.cross(p[t], p[t + 1])) / 6.0
        sizes.append(m)
        i += 1 + m
    return vol, n_faces, sizes


def test_polyhedra_columns(box):
    rows = read_records(paths=[str(box)], chunk_size=10, polyhedra=True)
    for r in rows:
        pts = r["points"].reshape(-1, 3)
        offsets = r["cell_face_offsets"]
        assert len(offsets) == r["n_cells"] and offsets[0] == 0
        for c, start in enumerate(offsets):
            vol, n_faces, sizes = polyhedron_volume(pts, r["cell_faces"], int(start))
            assert n_faces == 6 and sizes == [4] * 6
            # outward faces: the stream's own volume is the cell volume, positive
            assert vol == pytest.approx(r["volumes"][c], rel=1e-12)
        assert len(np.unique(r["cell_faces"])) <= len(pts)


def test_polyhedra_of_the_airfoil_close():
    rows = read_records(paths=[str(airfoil())], chunk_size=4000, polyhedra=True, time="none")
    assert len(rows) == 3
    for r in rows:
        pts = r["points"].reshape(-1, 3)
        for c in range(0, r["n_cells"], 97):
            vol, _, _ = polyhedron_volume(pts, r["cell_faces"], int(r["cell_face_offsets"][c]))
            assert vol == pytest.approx(r["volumes"][c], rel=1e-6)


# -- bad input ---------------------------------------------------------------------------------


def _one_error(case: Path, **params) -> str:
    rows, errors = read_all(paths=[str(case)], **params)
    assert rows == [] and len(errors) == 1, errors
    return errors[0]


def test_missing_owner(box):
    os.remove(box / "constant" / "polyMesh" / "owner")
    msg = _one_error(box)
    assert str(box / "constant" / "polyMesh" / "owner") in msg and "missing" in msg


def test_truncated_binary_list(box, tmp_path):
    mesh = polymesh.read_polymesh(str(box / "constant" / "polyMesh"))
    case = tmp_path / "bin"
    write_binary_polymesh(mesh, case / "constant" / "polyMesh")
    assert len(read_records(paths=[str(case)])) == 1
    points = case / "constant" / "polyMesh" / "points"
    points.write_bytes(points.read_bytes()[:-100])
    msg = _one_error(case)
    assert str(points) in msg and "truncated binary vector list" in msg and f"says {len(mesh.points)} items" in msg


def test_count_does_not_match_contents(box):
    owner = box / "constant" / "polyMesh" / "owner"
    text = owner.read_text()
    n = len(polymesh.read_polymesh(str(box / "constant" / "polyMesh")).owner)
    owner.write_text(text.replace(f"\n{n}\n(", f"\n{n + 2}\n(", 1))
    msg = _one_error(box)
    assert str(owner) in msg and f"says {n + 2} items but holds {n}" in msg


def test_face_label_out_of_range(box):
    faces = box / "constant" / "polyMesh" / "faces"
    lines = faces.read_text().split("\n")
    i = next(k for k, line in enumerate(lines) if line.startswith("4("))
    lines[i] = "4(0 1 999 2)"
    faces.write_text("\n".join(lines))
    msg = _one_error(box)
    assert str(faces) in msg and "point label 999" in msg and "face 0" in msg


def test_field_of_the_wrong_size_fails_the_case(box):
    t = box / "0" / "T"
    t.write_text(t.read_text().replace("List<scalar> 24(", "List<scalar> 23(").replace(" 11.5)", ")"))
    msg = _one_error(box)
    assert str(t) in msg and "23 values but the mesh has 24 cells" in msg
    # without that field the case reads
    assert len(read_records(paths=[str(box)], fields=["U"])) == 1


def test_one_cell_mesh_with_a_uniform_owner_list(tmp_path):
    """OpenFOAM writes a list of equal labels as ``N{v}``: a one-cell mesh's owner is ``6{0}``.
    That stays readable; the same list claiming more items than the mesh has faces does not
    (a few bytes must not ask for gigabytes)."""
    case = tmp_path / "one"
    write_box_case(str(case), (1, 1, 1))
    owner = case / "constant" / "polyMesh" / "owner"
    text = owner.read_text()
    head = text[: text.index("6\n(")]
    owner.write_text(head + "6{0}\n")
    (row,) = [r for r in read_records(paths=[str(case)]) if r["kind"] == "cells"]
    assert row["n_cells"] == 1 and row["volumes"].tolist() == [1.0]
    owner.write_text(head + "6000000000{0}\n")
    msg = _one_error(case)
    assert str(owner) in msg and "the label list says 6000000000 items, but the mesh has 6 faces" in msg


def test_uniform_field_list_is_bounded_by_the_mesh(box):
    t = box / "0" / "T"
    text = t.read_text()
    start = text.index("List<scalar> 24(")
    t.write_text(text[:start] + "List<scalar> 9000000000000{1.5};\n" + text[text.index("boundaryField") :])
    msg = _one_error(box)
    assert str(t) in msg and "says 9000000000000 items, but the mesh has 24 cells" in msg


def test_other_bad_cases(box, tmp_path):
    assert "no such time directory" in _one_error(box, time="7")
    assert "no such field" in _one_error(box, fields=["k"])
    empty = tmp_path / "empty_case"
    empty.mkdir()
    assert "no constant/polyMesh" in _one_error(empty)
    with pytest.raises(FileNotFoundError):
        OpenFoamReader({"paths": [str(tmp_path / "nowhere*")]}).plan()


def test_ascii_numbers_are_correctly_rounded(tmp_path):
    values = np.concatenate(
        [
            np.random.default_rng(1).normal(size=2000) * 10.0 ** np.arange(-20, 20).repeat(50),
            [0.1, 1e-310, 5e-324, 1.7976931348623157e308, -0.0, 123456789012345678.0],
        ]
    )
    body = "\n".join(repr(float(v)) for v in values)
    path = tmp_path / "s"
    path.write_text(f"FoamFile {{ format ascii; class scalarField; }}\n{len(values)}\n(\n{body}\n)\n")
    f = foamfile.read_foam_file(str(path))
    got, _ = foamfile.read_list(f, f.body, "scalar")
    assert np.array_equal(got, values)


def test_kernels_validate_their_input():
    pts, faces, owner, neighbour, _ = box_mesh((2, 1, 1))
    offsets = np.arange(0, faces.size + 1, 4)
    with pytest.raises(ValueError, match="points must be"):
        geometry.face_centres_areas(pts[:, :2], offsets, faces.reshape(-1))
    with pytest.raises(ValueError, match="labels outside"):
        geometry.face_centres_areas(pts, offsets, faces.reshape(-1) + 100)
    fc, fa = geometry.face_centres_areas(pts, offsets, faces.reshape(-1))
    with pytest.raises(ValueError, match="owner holds labels"):
        geometry.cell_centres_volumes(fc, fa, owner, neighbour, 1)


# -- a whole run ---------------------------------------------------------------------------------


def test_run_with_errors_table(tmp_path, ray_local):
    good = tmp_path / "cases" / "box"
    write_box_case(str(good), (3, 2, 2))
    bad = tmp_path / "cases" / "broken"
    write_box_case(str(bad), (2, 1, 1))
    os.remove(bad / "constant" / "polyMesh" / "owner")
    foil = tmp_path / "cases" / "airFoil2D"
    shutil.copytree(airfoil(), foil)
    out = tmp_path / "out"
    spec = {
        "run": {"output": str(out), "name": "openfoam"},
        "reader": {
            "stage": "cfd.openfoam",
            "paths": [str(tmp_path / "cases")],  # a folder of cases
            "chunk_size": 5000,
            "time": "0",
            "fields": ["U"],
            "boundary": True,
            "polyhedra": True,
        },
        "encoders": [],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, progress=False)
    counts = result.manifest["counts"]
    # box: 1 chunk + 6 patches; airFoil2D: 3 chunks + 4 patches; broken: one error
    assert counts == {"inputs": 7 + 7 + 1, "outputs": 14, "errors": 1, "balanced": True}
    errors = result.errors().to_pylist()
    assert len(errors) == 1 and errors[0]["source"] == str(bad)
    assert str(bad / "constant" / "polyMesh" / "owner") in errors[0]["message"]
    rows = pq.read_table(out / "table").to_pylist()
    cells = sorted((r for r in rows if r["kind"] == "cells" and r["case"] == "airFoil2D"), key=lambda r: r["chunk"])
    assert [r["n_cells"] for r in cells] == [5000, 5000, 720]
    vols = np.concatenate([r["volumes"] for r in cells])
    direct = read_records(paths=[str(foil)], time="none", chunk_size=10**6)[0]["volumes"]
    assert np.array_equal(vols, direct)
    box_cells = [r for r in rows if r["case"] == "box" and r["kind"] == "cells"]
    assert len(box_cells) == 1 and len(box_cells[0]["cell_face_offsets"]) == 12
    assert sum(r["kind"] == "patch" for r in rows) == 10
