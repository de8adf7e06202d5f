"""Our VTK XML writers, read back by VTK's own readers (PyPI ``vtk``) and by ParaView."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hpcprep_cfd import vtkxml

from tests.cfd.data import geometry
from tests.conftest import require_module, require_tool

vtk = require_module("vtk")
from vtk.util import numpy_support as ns  # noqa: E402

# -- helpers -------------------------------------------------------------------------------


def read(reader_cls, path):
    reader = reader_cls()
    reader.SetFileName(str(path))
    reader.Update()
    if reader.GetErrorCode():
        raise AssertionError(f"VTK could not read {path}")
    return reader.GetOutput()


def arr(attrs, name):
    a = attrs.GetArray(name)
    assert a is not None, f"no array {name!r}"
    return ns.vtk_to_numpy(a)


def same_bits(a, b):
    """Equal including dtype and NaN positions (compares the raw bytes)."""
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def hex_block(xs, ys, zs):
    """Points and polyhedron face streams of a structured hex block (outward faces)."""
    nx, ny, nz = len(xs), len(ys), len(zs)
    pts = np.array([[x, y, z] for z in zs for y in ys for x in xs], dtype=np.float64)

    def pid(i, j, k):
        return i + nx * (j + ny * k)

    stream, starts, volumes = [], [], []
    for c in range(nz - 1):
        for b in range(ny - 1):
            for a in range(nx - 1):
                corner = {(di, dj, dk): pid(a + di, b + dj, c + dk) for di in (0, 1) for dj in (0, 1) for dk in (0, 1)}
                faces = [
                    [(0, 0, 0), (0, 1, 0), (1, 1, 0), (1, 0, 0)],  # -z
                    [(0, 0, 1), (1, 0, 1), (1, 1, 1), (0, 1, 1)],  # +z
                    [(0, 0, 0), (1, 0, 0), (1, 0, 1), (0, 0, 1)],  # -y
                    [(0, 1, 0), (0, 1, 1), (1, 1, 1), (1, 1, 0)],  # +y
                    [(0, 0, 0), (0, 0, 1), (0, 1, 1), (0, 1, 0)],  # -x
                    [(1, 0, 0), (1, 1, 0), (1, 1, 1), (1, 0, 1)],  # +x
                ]
                starts.append(len(stream))
                stream.append(len(faces))
                for f in faces:
                    stream += [len(f)] + [corner[v] for v in f]
                volumes.append((xs[a + 1] - xs[a]) * (ys[b + 1] - ys[b]) * (zs[c + 1] - zs[c]))
    return pts, np.array(stream, dtype=np.int64), np.array(starts, dtype=np.int64), np.array(volumes)


def cell_types(grid):
    return {grid.GetCellType(c) for c in range(grid.GetNumberOfCells())}


def cell_volumes(grid):
    f = vtk.vtkCellSizeFilter()
    f.SetInputData(grid)
    f.Update()
    return arr(f.GetOutput().GetCellData(), "Volume")


def appended_block(path, array_name):
    """The raw bytes our file holds for ``array_name`` (UInt64 size header, then data)."""
    raw = path.read_bytes()
    marker = raw.index(b'<AppendedData encoding="raw">')
    head = raw[:marker].decode()
    pattern = r'<DataArray [^>]*Name="' + re.escape(array_name) + r'"[^>]*offset="(\d+)"'
    offset = int(re.search(pattern, head).group(1))
    start = raw.index(b"_", marker) + 1
    size = int.from_bytes(raw[start + offset : start + offset + 8], "little")
    return raw[start + offset + 8 : start + offset + 8 + size]


# -- poly data -----------------------------------------------------------------------------


def test_polydata_round_trip_on_a_tutorial_surface(tmp_path):
    trimesh = require_module("trimesh")
    with gzip.open(geometry("flange.stl.gz")) as f:
        mesh = trimesh.load(f, file_type="stl", force="mesh", process=False)
    pts = np.asarray(mesh.vertices, dtype=np.float64)
    tris = np.asarray(mesh.faces, dtype=np.int64)
    curvature = np.linalg.norm(pts - pts.mean(0), axis=1).astype(np.float32)
    curvature[::7] = np.nan  # NaN must stay NaN
    normals = np.asarray(mesh.face_normals, dtype=np.float64)
    labels = (np.arange(len(tris)) % 5).astype(np.int32)
    path = vtkxml.write_polydata(
        tmp_path / "flange.vtp",
        pts,
        tris,
        point_data={"curvature": curvature},
        cell_data={"face_normal": normals, "label": labels},
        field_data={"scale": np.array([2.5, 3.5])},
    )
    out = read(vtk.vtkXMLPolyDataReader, path)
    assert out.GetNumberOfPoints() == len(pts) > 1000
    assert out.GetNumberOfPolys() == len(tris) and out.GetNumberOfVerts() == 0
    assert same_bits(ns.vtk_to_numpy(out.GetPoints().GetData()), pts)
    polys = out.GetPolys()
    assert np.array_equal(ns.vtk_to_numpy(polys.GetConnectivityArray()), tris.reshape(-1))
    assert np.array_equal(ns.vtk_to_numpy(polys.GetOffsetsArray()), 3 * np.arange(len(tris) + 1))
    assert same_bits(arr(out.GetPointData(), "curvature"), curvature)
    assert same_bits(arr(out.GetCellData(), "face_normal"), normals)
    assert same_bits(arr(out.GetCellData(), "label"), labels)
    assert same_bits(arr(out.GetFieldData(), "scale"), np.array([2.5, 3.5]))
    assert np.isnan(arr(out.GetPointData(), "curvature")[::7]).all()


def test_point_cloud_has_a_vertex_per_point_and_normals(tmp_path):
    rng = np.random.default_rng(1)
    pts = rng.normal(size=(50, 3)).astype(np.float32)
    normals = pts / np.linalg.norm(pts, axis=1, keepdims=True)
    path = vtkxml.write_polydata(tmp_path / "cloud.vtp", pts, vertices_as_cells=True, point_data={"normals": normals})
    out = read(vtk.vtkXMLPolyDataReader, path)
    assert out.GetNumberOfVerts() == 50 and out.GetNumberOfCells() == 50
    assert same_bits(ns.vtk_to_numpy(out.GetPoints().GetData()), pts)  # float32 stays float32
    assert np.array_equal(ns.vtk_to_numpy(out.GetVerts().GetConnectivityArray()), np.arange(50))
    assert out.GetPointData().GetNormals().GetName() == "normals"
    assert same_bits(arr(out.GetPointData(), "normals"), normals)


def test_appended_section_is_raw_binary(tmp_path):
    pts = np.array([[0.1, 0.2, 0.3], [1.0, np.nan, -2.0], [3.0, 4.0, 5.0]])
    path = vtkxml.write_polydata(tmp_path / "t.vtp", pts, [[0, 1, 2]], point_data={"s": np.arange(3.0)})
    raw = path.read_bytes()
    head = raw[: raw.index(b"<AppendedData")].decode()
    assert 'header_type="UInt64"' in head and 'byte_order="LittleEndian"' in head
    assert head.count('format="appended"') == head.count("<DataArray") == 4
    assert 'encoding="raw"' in raw.decode("latin-1")
    assert appended_block(path, "Points") == pts.astype("<f8").tobytes()
    assert appended_block(path, "s") == np.arange(3.0).astype("<f8").tobytes()
    assert appended_block(path, "connectivity") == np.array([0, 1, 2], "<i8").tobytes()
    # The values are not base64: the bytes of 0.1 (as float64) sit in the file as they are.
    assert np.float64(0.1).tobytes() in raw


def test_bad_input_names_the_problem(tmp_path):
    with pytest.raises(ValueError, match=r"points must have shape \(n, 3\)"):
        vtkxml.write_polydata(tmp_path / "x.vtp", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"triangles: point ids must lie in \[0, 3\)"):
        vtkxml.write_polydata(tmp_path / "x.vtp", np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(ValueError, match="array 's' has shape"):
        vtkxml.write_polydata(tmp_path / "x.vtp", np.zeros((3, 3)), point_data={"s": np.zeros(4)})
    with pytest.raises(ValueError, match="not numeric"):
        vtkxml.write_polydata(tmp_path / "x.vtp", np.zeros((3, 3)), point_data={"s": np.array(["a", "b", "c"])})


# -- image data ----------------------------------------------------------------------------


def test_image_point_data_index_order(tmp_path):
    shape = (4, 3, 5)
    i, j, k = np.indices(shape)
    code = (i + 10 * j + 100 * k).astype(np.float64)  # the value says where it belongs
    vec = np.stack([i, j, k], axis=-1).astype(np.float32)
    origin, spacing = (-1.0, 0.5, 2.0), (0.25, 0.5, 0.125)
    path = vtkxml.write_image(tmp_path / "g.vti", origin, spacing, point_data={"code": code, "ijk": vec})
    out = read(vtk.vtkXMLImageDataReader, path)
    assert out.GetDimensions() == shape
    assert out.GetOrigin() == origin and out.GetSpacing() == spacing
    values = arr(out.GetPointData(), "code")
    ijk = arr(out.GetPointData(), "ijk")
    assert ijk.shape == (60, 3)
    for p in range(out.GetNumberOfPoints()):
        x, y, z = out.GetPoint(p)
        a, b, c = (
            round((x - origin[0]) / spacing[0]),
            round((y - origin[1]) / spacing[1]),
            round((z - origin[2]) / spacing[2]),
        )
        assert values[p] == a + 10 * b + 100 * c
        assert tuple(ijk[p]) == (a, b, c)
    # VTK's own flat order is x fastest: our array in Fortran order, bit for bit.
    assert same_bits(values, code.ravel(order="F"))


def test_image_cell_data_for_voxels(tmp_path):
    rng = np.random.default_rng(2)
    occ = rng.integers(0, 2, size=(3, 4, 2)).astype(np.uint8)
    frac = rng.random((3, 4, 2)).astype(np.float32)
    frac[1, 2, 1] = np.nan
    path = vtkxml.write_image(tmp_path / "v.vti", (0, 0, 0), (1, 2, 3), cell_data={"occ": occ, "frac": frac})
    out = read(vtk.vtkXMLImageDataReader, path)
    assert out.GetDimensions() == (4, 5, 3) and out.GetNumberOfCells() == 24
    got = arr(out.GetCellData(), "occ")
    assert same_bits(got, occ.ravel(order="F"))
    assert same_bits(arr(out.GetCellData(), "frac"), frac.ravel(order="F"))
    # Cell (i, j, k) spans origin + [i, i + 1) * spacing: its centre tells where it is.
    centres = vtk.vtkCellCenters()
    centres.SetInputData(out)
    centres.Update()
    for c in range(out.GetNumberOfCells()):
        x, y, z = centres.GetOutput().GetPoint(c)
        i, j, k = int(x // 1), int(y // 2), int(z // 3)
        assert got[c] == occ[i, j, k]


# -- unstructured grids --------------------------------------------------------------------


def test_hex_block_as_polyhedra_has_the_right_volumes(tmp_path):
    pts, stream, starts, volumes = hex_block([0.0, 1.0, 3.0], [0.0, 2.0, 3.0], [0.0, 0.5, 2.0])
    pressure = np.arange(8, dtype=np.float64) * 1.5
    velocity = np.arange(24, dtype=np.float32).reshape(8, 3)
    path = vtkxml.write_unstructured(
        tmp_path / "block.vtu", pts, polyhedra=(stream, starts), cell_data={"p": pressure, "U": velocity}
    )
    out = read(vtk.vtkXMLUnstructuredGridReader, path)
    assert out.GetNumberOfPoints() == 27 and out.GetNumberOfCells() == 8
    assert cell_types(out) == {vtkxml.VTK_POLYHEDRON}
    assert same_bits(ns.vtk_to_numpy(out.GetPoints().GetData()), pts)
    np.testing.assert_allclose(cell_volumes(out), volumes, rtol=1e-12)
    assert sorted(set(volumes)) != [volumes[0]]  # the cells differ, so a mix-up would show
    assert same_bits(arr(out.GetCellData(), "p"), pressure)
    assert same_bits(arr(out.GetCellData(), "U"), velocity)
    for c in range(8):
        cell = out.GetCell(c)
        assert cell.GetNumberOfFaces() == 6 and cell.GetNumberOfPoints() == 8
        s = starts[c]
        for f in range(6):
            ids = [cell.GetFace(f).GetPointId(q) for q in range(4)]
            assert ids == stream[s + 2 + 5 * f : s + 6 + 5 * f].tolist()


def test_polyhedra_streams_in_any_order_and_mixed_faces(tmp_path):
    # A pyramid (quad base, 4 triangles) and a cube, stored cube first: cell 0's stream
    # sits after cell 1's, so the writer must follow cell_face_offsets, not assume order.
    pts = np.array(
        [[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0], [1, 1, 3]]
        + [[5, 0, 0], [6, 0, 0], [6, 1, 0], [5, 1, 0], [5, 0, 1], [6, 0, 1], [6, 1, 1], [5, 1, 1]],
        dtype=np.float64,
    )
    pyramid = [5, 4, 0, 3, 2, 1, 3, 0, 1, 4, 3, 1, 2, 4, 3, 2, 3, 4, 3, 3, 0, 4]
    cube_faces = [[5, 8, 7, 6], [9, 10, 11, 12], [5, 6, 10, 9], [6, 7, 11, 10], [7, 8, 12, 11], [8, 5, 9, 12]]
    cube = [6] + [v for f in cube_faces for v in [4, *f]]
    stream = np.array(cube + pyramid, dtype=np.int32)
    starts = np.array([len(cube), 0])
    path = vtkxml.write_unstructured(tmp_path / "mixed.vtu", pts, polyhedra=(stream, starts))
    out = read(vtk.vtkXMLUnstructuredGridReader, path)
    assert out.GetNumberOfCells() == 2
    assert [out.GetCell(c).GetNumberOfPoints() for c in range(2)] == [5, 8]
    assert [out.GetCell(c).GetNumberOfFaces() for c in range(2)] == [5, 6]
    np.testing.assert_allclose(cell_volumes(out), [4.0 * 3.0 / 3.0, 1.0], rtol=1e-12)


def test_polyhedra_errors_name_the_cell(tmp_path):
    pts, stream, starts, _ = hex_block([0.0, 1.0], [0.0, 1.0], [0.0, 1.0])
    bad = stream.copy()
    bad[1] = 2  # a face with two points
    with pytest.raises(ValueError, match="cell 0: face 0 has 2 points"):
        vtkxml.write_unstructured(tmp_path / "x.vtu", pts, polyhedra=(bad, starts))
    with pytest.raises(ValueError, match="runs past the end"):
        vtkxml.write_unstructured(tmp_path / "x.vtu", pts, polyhedra=(stream[:-3], starts))
    with pytest.raises(ValueError, match=r"point ids must lie in \[0, 7\)"):
        vtkxml.write_unstructured(tmp_path / "x.vtu", pts[:7], polyhedra=(stream, starts))


def test_cell_centres_as_vertices(tmp_path):
    rng = np.random.default_rng(3)
    centres = rng.random((30, 3))
    vol = rng.random(30)
    path = vtkxml.write_unstructured(tmp_path / "c.vtu", centres, cell_data={"volume": vol})
    out = read(vtk.vtkXMLUnstructuredGridReader, path)
    assert out.GetNumberOfCells() == 30
    assert cell_types(out) == {vtkxml.VTK_VERTEX}
    assert same_bits(ns.vtk_to_numpy(out.GetPoints().GetData()), centres)
    assert same_bits(arr(out.GetCellData(), "volume"), vol)


# -- collections and ParaView --------------------------------------------------------------


def _write_all(folder):
    pts, stream, starts, volumes = hex_block([0.0, 1.0, 3.0], [0.0, 2.0, 3.0], [0.0, 0.5, 2.0])
    files = {
        "vtp": vtkxml.write_polydata(
            folder / "tet.vtp",
            np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], float),
            [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
            point_data={"h": np.arange(4.0)},
        ),
        "vti": vtkxml.write_image(folder / "sdf.vti", (0, 0, 0), (1, 1, 1), point_data={"sdf": np.zeros((3, 4, 5))}),
        "vtu": vtkxml.write_unstructured(
            folder / "block.vtu", pts, polyhedra=(stream, starts), cell_data={"volume": volumes}
        ),
    }
    files["pvd"] = vtkxml.write_collection(
        folder / "all.pvd",
        [{"file": f, "name": f.stem, "timestep": 0} for f in (files["vtp"], files["vti"], files["vtu"])],
    )
    return files, volumes


def test_collection_lists_relative_files(tmp_path):
    files, _ = _write_all(tmp_path)
    root = ET.parse(files["pvd"]).getroot()
    assert root.get("type") == "Collection"
    sets = root.find("Collection").findall("DataSet")
    assert [d.get("file") for d in sets] == ["tet.vtp", "sdf.vti", "block.vtu"]
    assert [d.get("part") for d in sets] == ["0", "1", "2"]
    assert [d.get("name") for d in sets] == ["tet", "sdf", "block"]
    # Each listed file, found relative to the .pvd, opens (ParaView's own test follows).
    cells = [read(vtk.vtkXMLGenericDataObjectReader, tmp_path / d.get("file")).GetNumberOfCells() for d in sets]
    assert cells == [4, 2 * 3 * 4, 8]


PVSCRIPT = """
import json, sys
from paraview import simple, servermanager
out = {}
for path in sys.argv[1:]:
    reader = simple.OpenDataFile(path)
    reader.UpdatePipeline()
    info = reader.GetDataInformation()
    entry = {"points": info.GetNumberOfPoints(), "cells": info.GetNumberOfCells(),
             "point_arrays": sorted(reader.PointData.keys()), "cell_arrays": sorted(reader.CellData.keys())}
    if path.endswith(".vtu"):
        size = simple.CellSize(Input=reader)
        data = servermanager.Fetch(size)
        vol = data.GetCellData().GetArray("Volume")
        entry["volumes"] = [vol.GetValue(i) for i in range(vol.GetNumberOfTuples())]
        entry["faces"] = [data.GetCell(i).GetNumberOfFaces() for i in range(data.GetNumberOfCells())]
    out[path.rsplit(".", 1)[1]] = entry
print("RESULT " + json.dumps(out))
"""


def test_paraview_opens_every_file(tmp_path):
    pvpython = require_tool("pvpython")
    files, volumes = _write_all(tmp_path)
    script = tmp_path / "probe.py"
    script.write_text(PVSCRIPT)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no DISPLAY: data readers only
    proc = subprocess.run(
        [pvpython, "--force-offscreen-rendering", str(script), *(str(files[k]) for k in ("vtp", "vti", "vtu", "pvd"))],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    got = json.loads(lines[-1].removeprefix("RESULT "))
    assert got["vtp"] == {"points": 4, "cells": 4, "point_arrays": ["h"], "cell_arrays": []}
    assert got["vti"] == {"points": 60, "cells": 24, "point_arrays": ["sdf"], "cell_arrays": []}
    assert got["vtu"]["points"] == 27 and got["vtu"]["cells"] == 8
    assert got["vtu"]["cell_arrays"] == ["volume"]
    assert got["vtu"]["faces"] == [6] * 8  # ParaView's VTK reads the polyhedra's faces
    np.testing.assert_allclose(got["vtu"]["volumes"], volumes, rtol=1e-12)
    assert got["pvd"]["points"] == 4 + 60 + 27 and got["pvd"]["cells"] == 4 + 24 + 8
    assert got["pvd"]["point_arrays"] == ["h", "sdf"]
