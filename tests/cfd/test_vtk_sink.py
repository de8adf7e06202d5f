"""``cfd.vtk`` through ``hpcprep.run``: files per record, the run's .pvd, overwrite and resume."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep.runner import RunError
from hpcprep.testing import assert_stage_ok, interrupted_run
from hpcprep_cfd.vtk_sink import STATE_DIR, VtkSink

from tests.cfd.test_vtkxml import cell_volumes, hex_block, read, same_bits
from tests.conftest import require_module

vtk = require_module("vtk")
from vtk.util import numpy_support as ns  # noqa: E402

TET_V = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float64)
TET_F = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.int64)
F64 = pa.list_(pa.float64())
I64 = pa.list_(pa.int64())


def flat(a):
    return np.asarray(a).reshape(-1).tolist()


def geometry_table(with_second_mesh=True):
    """Mesh records as cfd.mesh + encoders make them; a row with nothing to draw; a broken row."""
    rng = np.random.default_rng(0)
    samples = rng.random((6, 3))
    normals = samples / np.linalg.norm(samples, axis=1, keepdims=True)
    sdf_pts = rng.random((5, 3))
    sdf = rng.normal(size=5)
    sdf[2] = np.nan
    rows = [
        dict(
            source="/data/tet.stl",
            record_id="a1b2:0",
            name="tet",
            vertices=flat(TET_V),
            faces=flat(TET_F),
            surface_points=flat(samples),
            surface_normals=flat(normals),
            surface_face_ids=[0, 1, 2, 3, 0, 1],
            sdf_points=flat(sdf_pts),
            sdf=sdf.tolist(),
            sdf_vector=flat(-sdf_pts),
        ),
        dict(
            source="/data/cube.stl", record_id="c3d4:0", name="cube body", vertices=flat(TET_V * 2), faces=flat(TET_F)
        ),
        dict(source="/data/notes.txt", record_id="e5f6:0", name="notes"),
        dict(source="/data/broken.stl", record_id="0bad:0", name="broken", vertices=[0.0] * 7, faces=[0, 1, 2]),
    ]
    if not with_second_mesh:
        rows.pop(1)
    schema = pa.schema(
        [("source", pa.string()), ("record_id", pa.string()), ("name", pa.string())]
        + [(c, F64) for c in ("vertices", "surface_points", "surface_normals", "sdf_points", "sdf", "sdf_vector")]
        + [(c, I64) for c in ("faces", "surface_face_ids")]
    )
    return pa.Table.from_pylist(rows, schema=schema), {"samples": samples, "normals": normals, "sdf": sdf}


def fields_table():
    """An SDF grid with voxels, an OpenFOAM cell chunk with polyhedra, and a patch."""
    shape = (3, 4, 5)
    i, j, k = np.indices(shape)
    grid = (i + 10 * j + 100 * k).astype(np.float64)
    vox = ((i + j + k) % 2).astype(np.uint8)
    pts, stream, starts, volumes = hex_block([0.0, 1.0, 3.0], [0.0, 2.0, 3.0], [0.0, 0.5, 2.0])
    centres = np.array([[0.5, 1, 0.25]] * 8)
    p = np.arange(8.0)
    u = np.arange(24.0).reshape(8, 3)
    rows = [
        dict(
            source="/data/body.stl",
            record_id="9f9f:0",
            name="body",
            sdf_grid=flat(grid),
            sdf_grid_shape=list(shape),
            sdf_grid_origin=[-1.0, 0.0, 1.0],
            sdf_grid_spacing=[0.5, 0.25, 0.125],
            voxels=flat(vox).copy(),
            voxel_shape=list(shape),
            voxel_origin=[0.0, 0.0, 0.0],
            voxel_spacing=[1.0, 1.0, 1.0],
        ),
        dict(
            source="/cases/block",
            record_id="7e7e:0",
            case="block",
            kind="cells",
            patch="",
            time="100",
            n_cells=8,
            centres=flat(centres),
            volumes=volumes.tolist(),
            field_p=p.tolist(),
            field_U=flat(u),
            points=flat(pts),
            cell_faces=stream.tolist(),
            cell_face_offsets=starts.tolist(),
        ),
        dict(
            source="/cases/block",
            record_id="7e7e:patch:inlet",
            case="block",
            kind="patch",
            patch="inlet",
            time="100",
            n_cells=2,
            centres=flat(centres[:2]),
            volumes=[2.0, 4.0],
            area_vectors=flat(u[:2]),
            field_p=[np.nan, 1.0],
            field_U=flat(u[:2]),
        ),
    ]
    schema = pa.schema(
        [("source", pa.string()), ("record_id", pa.string()), ("name", pa.string()), ("case", pa.string()),
         ("kind", pa.string()), ("patch", pa.string()), ("time", pa.string()), ("n_cells", pa.int64())]
        + [(c, F64) for c in ("sdf_grid", "sdf_grid_origin", "sdf_grid_spacing", "voxel_origin", "voxel_spacing",
                              "centres", "volumes", "field_p", "field_U", "points", "area_vectors")]
        + [(c, I64) for c in ("sdf_grid_shape", "voxel_shape", "cell_faces", "cell_face_offsets")]
        + [("voxels", pa.list_(pa.uint8()))]
    )  # fmt: skip
    return pa.Table.from_pylist(rows, schema=schema), {"grid": grid, "vox": vox, "volumes": volumes, "p": p, "u": u}


def spec_for(tmp_path, name="viz", **run):
    return {
        "run": {"output": str(tmp_path / name), "name": name, **run},
        "reader": {"stage": "parquet", "paths": [str(tmp_path / "in")]},
        "encoders": [],
        "sinks": [{"stage": "cfd.vtk", "path": str(tmp_path / "vtk")}],
    }


def write_inputs(tmp_path, with_second_mesh=True):
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    geo, g = geometry_table(with_second_mesh)
    fields, f = fields_table()
    pq.write_table(geo, folder / "a_geometry.parquet")
    pq.write_table(fields, folder / "b_fields.parquet")
    return {**g, **f}


def vtk_files(folder: Path):
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".vtp", ".vti", ".vtu"))


def pvd_files(pvd: Path):
    return [d.get("file") for d in ET.parse(pvd).getroot().iter("DataSet")]


EXPECTED = [
    "block_7e7e-0.vtu",
    "block_inlet_7e7e-patch-inlet.vtu",
    "body_9f9f-0_sdf.vti",
    "body_9f9f-0_voxels.vti",
    "cube_cube-body_c3d4-0.vtp",
    "tet_a1b2-0.vtp",
    "tet_a1b2-0_samples.vtp",
    "tet_a1b2-0_sdf_points.vtp",
]


def test_run_writes_a_file_per_output_and_a_pvd(tmp_path, ray_local):
    want = write_inputs(tmp_path)
    result = hpcprep.run(spec_for(tmp_path), progress=False)
    out = tmp_path / "vtk"
    assert vtk_files(out) == EXPECTED
    pvd = out / "viz.pvd"
    assert sorted(pvd_files(pvd)) == EXPECTED
    sets = list(ET.parse(pvd).getroot().iter("DataSet"))
    assert sorted(int(d.get("part")) for d in sets) == list(range(len(EXPECTED)))
    assert {d.get("file"): d.get("timestep") for d in sets}["block_7e7e-0.vtu"] == "100.0"
    assert not any((out / STATE_DIR / "staging").glob("*")), "staging is empty after the run"

    # Books: 7 rows in, 5 written, 1 with nothing to draw, 1 broken (named in the report).
    assert result.counts == {"inputs": 7, "outputs": 7, "errors": 0, "balanced": True}
    report = result.manifest["sinks"]["sinks[0]"]
    assert {k: report[k] for k in ("files", "rows", "written", "skipped", "failed")} == {
        "files": 8, "rows": 7, "written": 5, "skipped": 1, "failed": 1
    }  # fmt: skip
    [message] = report["failures"]
    assert "record 0bad:0 (/data/broken.stl)" in message and "'vertices' holds 7 values" in message

    # Contents, read back by VTK.
    tet = read(vtk.vtkXMLPolyDataReader, out / "tet_a1b2-0.vtp")
    assert same_bits(ns.vtk_to_numpy(tet.GetPoints().GetData()), TET_V)
    assert np.array_equal(ns.vtk_to_numpy(tet.GetPolys().GetConnectivityArray()), TET_F.reshape(-1))
    samples = read(vtk.vtkXMLPolyDataReader, out / "tet_a1b2-0_samples.vtp")
    assert samples.GetNumberOfVerts() == 6
    assert same_bits(ns.vtk_to_numpy(samples.GetPointData().GetNormals()), want["normals"])
    assert ns.vtk_to_numpy(samples.GetPointData().GetArray("face_id")).tolist() == [0, 1, 2, 3, 0, 1]
    sdf_pts = read(vtk.vtkXMLPolyDataReader, out / "tet_a1b2-0_sdf_points.vtp")
    assert same_bits(ns.vtk_to_numpy(sdf_pts.GetPointData().GetArray("sdf")), want["sdf"])
    assert sdf_pts.GetPointData().GetArray("sdf_vector").GetNumberOfComponents() == 3

    image = read(vtk.vtkXMLImageDataReader, out / "body_9f9f-0_sdf.vti")
    assert image.GetDimensions() == (3, 4, 5) and image.GetSpacing() == (0.5, 0.25, 0.125)
    assert same_bits(ns.vtk_to_numpy(image.GetPointData().GetArray("sdf")), want["grid"].ravel(order="F"))
    vox = read(vtk.vtkXMLImageDataReader, out / "body_9f9f-0_voxels.vti")
    assert vox.GetDimensions() == (4, 5, 6)
    assert same_bits(ns.vtk_to_numpy(vox.GetCellData().GetArray("voxels")), want["vox"].ravel(order="F"))

    cells = read(vtk.vtkXMLUnstructuredGridReader, out / "block_7e7e-0.vtu")
    assert cells.GetNumberOfCells() == 8 and cells.GetCellType(0) == 42
    np.testing.assert_allclose(cell_volumes(cells), want["volumes"], rtol=1e-12)
    cd = cells.GetCellData()
    assert same_bits(ns.vtk_to_numpy(cd.GetArray("volume")), want["volumes"])
    assert same_bits(ns.vtk_to_numpy(cd.GetArray("p")), want["p"])
    assert same_bits(ns.vtk_to_numpy(cd.GetArray("U")), want["u"])
    patch = read(vtk.vtkXMLUnstructuredGridReader, out / "block_inlet_7e7e-patch-inlet.vtu")
    assert patch.GetNumberOfCells() == 2 and patch.GetCellType(0) == 1
    pp = ns.vtk_to_numpy(patch.GetCellData().GetArray("p"))
    assert np.isnan(pp[0]) and pp[1] == 1.0
    assert patch.GetCellData().GetArray("area_vector").GetNumberOfComponents() == 3


def test_second_run_needs_overwrite_and_leaves_no_stale_files(tmp_path, ray_local):
    write_inputs(tmp_path)
    hpcprep.run(spec_for(tmp_path), progress=False)
    assert "cube_cube-body_c3d4-0.vtp" in vtk_files(tmp_path / "vtk")
    other = spec_for(tmp_path, name="again")  # a new run dir, the same sink folder
    with pytest.raises(RunError, match="pass --overwrite"):
        hpcprep.run(other, progress=False)
    write_inputs(tmp_path, with_second_mesh=False)
    hpcprep.run(spec_for(tmp_path), progress=False, overwrite=True)
    expected = [f for f in EXPECTED if not f.startswith("cube")]
    assert vtk_files(tmp_path / "vtk") == expected
    assert sorted(pvd_files(tmp_path / "vtk" / "viz.pvd")) == expected


def test_resume_removes_files_of_an_interrupted_attempt(tmp_path, ray_local):
    write_inputs(tmp_path)
    spec = spec_for(tmp_path, commit_every=1)  # one commit group per input file
    interrupted_run(spec, groups=1, progress=False)
    out = tmp_path / "vtk"
    first = vtk_files(out)
    assert first == [f for f in EXPECTED if f.endswith(".vtp")]  # group 0: the geometry file
    # What a killed attempt of group 1 leaves: files in staging, and a half-done commit
    # (journal written, one file moved to its final name).
    dead = out / STATE_DIR / "staging" / "g00001-deadbeef00" / "task"
    dead.mkdir(parents=True)
    (dead / "body_9f9f-0_sdf.vti").write_text("partial")
    (out / "ghost_0000-0.vti").write_text("moved before the crash")
    journal = {
        "group": 1, "attempt": "deadbeef00", "counts": {"rows": 1, "written": 1, "skipped": 0, "failed": 0},
        "files": [{"file": "ghost_0000-0.vti", "name": "ghost", "timestep": 0.0, "record_id": "x", "staged": ""}],
    }  # fmt: skip
    (out / STATE_DIR / "groups" / "g00001.json").write_text(json.dumps(journal))

    result = hpcprep.run(spec, progress=False, resume=True)
    assert vtk_files(out) == EXPECTED
    assert sorted(pvd_files(out / "viz.pvd")) == EXPECTED
    assert not (out / STATE_DIR / "staging" / "g00001-deadbeef00").exists()
    assert result.counts["balanced"] and result.counts["inputs"] == 7
    report = result.manifest["sinks"]["sinks[0]"]
    assert (report["rows"], report["files"], report["written"]) == (7, 8, 5)


def test_what_selects_outputs_and_point_data_attaches(tmp_path, ray_local):
    write_inputs(tmp_path)
    spec = spec_for(tmp_path)
    spec["sinks"][0].update(what=["mesh"], point_data=["faces", "surface_normals"])
    hpcprep.run(spec, progress=False)
    assert vtk_files(tmp_path / "vtk") == ["cube_cube-body_c3d4-0.vtp", "tet_a1b2-0.vtp"]
    # 12 face ids fit the tetrahedron's 4 vertices as 3 components each; 6 normals x 3
    # values do not fit 4 points, so they are left out.
    tet = read(vtk.vtkXMLPolyDataReader, tmp_path / "vtk" / "tet_a1b2-0.vtp")
    pd = tet.GetPointData()
    assert pd.GetNumberOfArrays() == 1
    assert np.array_equal(ns.vtk_to_numpy(pd.GetArray("faces")), TET_F)


def test_stage_contract(tmp_path):
    assert_stage_ok(VtkSink, tmp_path)
    sink = VtkSink({"path": str(tmp_path / "x"), "what": ["sdf_grid", "voxels"]})
    assert sink.params.what == ["sdf_grid", "voxels"]
    with pytest.raises(ValueError):
        VtkSink({"path": str(tmp_path / "x"), "what": ["meshes"]})


def test_writer_reads_every_column_layout_the_runner_hands_it(tmp_path):
    """Plain Arrow lists, Ray's fixed and variable-shaped tensors, pickled objects: same files."""
    from hpcprep import SinkContext
    from hpcprep.columns import list_column
    from ray.data.block import BlockAccessor

    verts = [TET_V.reshape(-1), (TET_V * 3).reshape(-1)]
    faces = [TET_F.reshape(-1), TET_F.reshape(-1)]
    base = {"source": np.array(["a", "b"], dtype=object), "record_id": np.array(["r:0", "r:1"], dtype=object)}
    layouts = {
        "arrow_lists": pa.table(
            {**base, "vertices": list_column(verts, pa.float64()), "faces": list_column(faces, pa.int64())}
        ),
        "fixed_tensor": BlockAccessor.batch_to_block({**base, "vertices": np.stack(verts), "faces": np.stack(faces)}),
        "variable_tensor": BlockAccessor.batch_to_block(
            {
                **base,
                "vertices": np.array([verts[0], verts[1][:9]], dtype=object),
                "faces": np.array(faces, dtype=object),
            }
        ),
    }
    assert "arrow_tensor" in layouts["fixed_tensor"].schema.field("vertices").type.extension_name
    assert "variable_shaped" in layouts["variable_tensor"].schema.field("vertices").type.extension_name
    for label, table in layouts.items():
        sink = VtkSink({"path": str(tmp_path / label)})
        ctx = SinkContext(run_dir=str(tmp_path / "run"), run_name=label, attempt="a1")
        sink.prepare(ctx)
        writer = sink.open_writer(ctx)
        writer.write(table)
        report = sink.commit(ctx, [writer.close()])
        sink.finish(ctx)
        if label == "variable_tensor":  # the second mesh lost a vertex its faces use
            assert (report["written"], report["failed"]) == (1, 1), label
            assert "point ids must lie in [0, 3)" in report["failures"][0]
            continue
        assert (report["written"], report["files"]) == (2, 2), label
        second = read(vtk.vtkXMLPolyDataReader, tmp_path / label / "b_r-1.vtp")
        assert same_bits(ns.vtk_to_numpy(second.GetPoints().GetData()), TET_V * 3), label
        assert pvd_files(tmp_path / label / f"{label}.pvd") == ["a_r-0.vtp", "b_r-1.vtp"]


def test_openfoam_case_to_vtu_volumes_match_and_paraview_opens_it(tmp_path, ray_local):
    """cfd.openfoam (polyhedra) -> cfd.vtk on a tutorial case: VTK's polyhedron volumes
    equal the reader's cell volumes, and ParaView opens the run's .pvd."""
    import subprocess

    from tests.cfd.data import case
    from tests.cfd.test_vtkxml import PVSCRIPT
    from tests.conftest import require_tool

    spec = {
        "run": {"output": str(tmp_path / "run"), "name": "foil"},
        "reader": {
            "stage": "cfd.openfoam",
            "paths": [str(case("airFoil2D"))],
            "chunk_size": 5000,
            "boundary": True,
            "polyhedra": True,
        },
        "encoders": [],
        "sinks": [
            {"stage": "cfd.vtk", "path": str(tmp_path / "vtk")},
            {"stage": "parquet", "path": str(tmp_path / "pq")},
        ],
    }
    result = hpcprep.run(spec, progress=False)
    report = result.manifest["sinks"]["sinks[0]"]
    assert report["failed"] == 0 and report["files"] == report["rows"] == result.counts["outputs"]
    records = pq.read_table(tmp_path / "pq").to_pylist()
    n_cells = n_faces = 0
    for row in records:
        path = (
            tmp_path
            / "vtk"
            / f"airFoil2D{'_' + row['patch'] if row['patch'] else ''}_{row['record_id'].replace(':', '-')}.vtu"
        )
        grid = read(vtk.vtkXMLUnstructuredGridReader, path)
        assert grid.GetNumberOfCells() == row["n_cells"]
        if row["kind"] == "cells":
            n_cells += row["n_cells"]
            np.testing.assert_allclose(cell_volumes(grid), row["volumes"], rtol=1e-10)
            assert grid.GetCellData().GetArray("U").GetNumberOfComponents() == 3
        else:
            n_faces += row["n_cells"]
    assert n_cells == 10720  # entries of airFoil2D's constant/polyMesh/cells
    pvpython = require_tool("pvpython")
    script = tmp_path / "probe.py"
    script.write_text(PVSCRIPT)
    proc = subprocess.run(
        [pvpython, "--force-offscreen-rendering", str(script), str(tmp_path / "vtk" / "foil.pvd")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    got = json.loads(lines[-1].removeprefix("RESULT "))["pvd"]
    assert got["cells"] == n_cells + n_faces
    assert {"volume", "p", "U"} <= set(got["cell_arrays"])


def test_a_record_id_in_two_commit_groups_stops_the_run_and_keeps_the_first(tmp_path, ray_local):
    folder = tmp_path / "in"
    folder.mkdir()
    geo, _ = geometry_table()
    pq.write_table(geo, folder / "a.parquet")
    pq.write_table(geo, folder / "b.parquet")  # the same record ids again
    with pytest.raises(Exception, match="already written by another commit group"):
        hpcprep.run(spec_for(tmp_path, commit_every=1), progress=False)
    assert "tet_a1b2-0.vtp" in vtk_files(tmp_path / "vtk")


def test_files_are_named_after_the_source_file_then_the_solid():
    from hpcprep_cfd.vtk_sink import _base_name

    assert _base_name({"source": "s3://b/geo/DTC-scaled.stl.gz", "name": "patch1"}, "ab:0") == "DTC-scaled_patch1_ab-0"
    assert _base_name({"source": "/data/wing.obj", "name": "wing"}, "cd:1") == "wing_cd-1"  # the name says no more
    assert _base_name({"source": "/cases/pitz", "case": "pitz", "patch": "inlet"}, "e:2") == "pitz_inlet_e-2"
    assert _base_name({}, "f:3") == "record_f-3"
