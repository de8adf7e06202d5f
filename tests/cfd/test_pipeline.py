"""Whole CFD runs through the runner: the example specs on real tutorial data."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import hpcprep
import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hpcprep.cli import build_cli
from hpcprep_cfd import shapes

from tests.cfd.data import case, geometry

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _cli():
    return build_cli()[0]


def _example(name: str) -> dict:
    return tomllib.loads((EXAMPLES / name).read_text())


def test_geometry_example_end_to_end(tmp_path, ray_local):
    shape_dir = tmp_path / "shapes"
    res = CliRunner().invoke(_cli(), ["cfd", "shapes", str(shape_dir), "--shapes", "sphere,box,torus"])
    assert res.exit_code == 0, res.output
    data = tmp_path / "geometry"
    data.mkdir()
    for name in ("flange.stl.gz", "propellerTip.obj.gz"):
        shutil.copy(geometry(name), data / name)
    (data / "truncated.stl").write_bytes(b"\0" * 80 + (1000).to_bytes(4, "little") + b"\0" * 120)

    spec = _example("cfd_geometry.toml")
    out = tmp_path / "out"
    spec["run"]["output"] = str(out)
    spec["reader"]["paths"] = [str(data), str(shape_dir)]
    sizes = {
        "cfd.surface_sample": {"n": 512},
        "cfd.sdf_points": {"n_volume": 256, "n_surface": 256},
        "cfd.sdf_grid": {"resolution": 16},
        "cfd.shape_descriptor": {"samples": 1024},
    }
    for enc in spec["encoders"]:
        enc.update(sizes.get(enc["stage"], {}))
    for sink in spec["sinks"]:
        key = "uri" if sink["stage"] == "lancedb" else "path"
        sink[key] = str(out / Path(sink[key]).name)

    result = hpcprep.run(spec, progress=False)
    counts = result.counts
    assert (counts["inputs"], counts["outputs"], counts["errors"]) == (6, 5, 1)
    errors = pq.read_table(out / "errors").to_pylist()
    assert Path(errors[0]["source"]).name == "truncated.stl" and errors[0]["stage"] == "reader:cfd.mesh"

    rows = {Path(r["source"]).name: r for r in pq.read_table(out / "table").to_pylist()}
    assert set(rows) == {"flange.stl.gz", "propellerTip.obj.gz", "sphere.stl", "box.stl", "torus.stl"}
    box = rows["box.stl"]
    assert box["watertight"] and box["signed_volume"] > 0
    # The procedural box: every SDF grid node against the analytic SDF (float32 output).
    params = json.loads((shape_dir / "shapes.json").read_text())
    size = next(s for s in params["shapes"] if s["file"] == "box.stl")["parameters"]["size"]
    n = box["sdf_grid_shape"]
    i, j, k = np.meshgrid(*(np.arange(m) for m in n), indexing="ij")
    nodes = np.asarray(box["sdf_grid_origin"]) + np.stack([i, j, k], -1) * np.asarray(box["sdf_grid_spacing"])
    np.testing.assert_allclose(np.asarray(box["sdf_grid"]), shapes.box_sdf(nodes.reshape(-1, 3), size=size), atol=1e-5)

    # LanceDB: the sphere's nearest other shape is not the flange.
    res = CliRunner().invoke(
        _cli(),
        [
            "search",
            str(out / "vectors"),
            "--table",
            "shapes",
            "--id",
            rows["sphere.stl"]["record_id"],
            "-k",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output

    # VTK: the collection lists every file written, and they are there.
    pvd = out / "vtk" / "cfd_geometry.pvd"
    listed = [line.split('file="')[1].split('"')[0] for line in pvd.read_text().splitlines() if 'file="' in line]
    assert len(listed) >= 5 * 3  # per mesh: surface, samples, sdf points, sdf grid
    assert all((out / "vtk" / f).exists() for f in listed)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["inputs"] == 6 and "cfd" in manifest["plugins"]


def test_cells_example_end_to_end(tmp_path, ray_local):
    spec = _example("cfd_cells.toml")
    out = tmp_path / "out"
    spec["run"]["output"] = str(out)
    broken = tmp_path / "broken"
    shutil.copytree(case("naca0012"), broken / "constant", dirs_exist_ok=True)
    (next(broken.rglob("owner*"))).unlink()
    spec["reader"]["paths"] = [str(case("airFoil2D")), str(broken)]
    for sink in spec["sinks"]:
        sink["path"] = str(out / Path(sink["path"]).name)
    result = hpcprep.run(spec, progress=False)
    assert result.counts["errors"] == 1 and result.counts["balanced"]
    errors = pq.read_table(out / "errors").to_pylist()
    assert "owner" in errors[0]["message"]

    table = pq.read_table(out / "table")
    cells = sum(table.column("n_cells").to_pylist())
    assert cells == 10720  # airFoil2D (constant/polyMesh/cells lists 10720)
    res = CliRunner().invoke(_cli(), ["cfd", "stats", str(out / "table"), "--json"])
    assert res.exit_code == 0, res.output
    stats = json.loads(res.output)
    (case_stats,) = stats.values()
    u = case_stats["U"]
    # time 0 of airFoil2D is the uniform free stream (25.75, 3.62, 0): U / u_ref everywhere.
    assert u[0]["mean"] == pytest.approx(25.75 / 26.0, rel=1e-6) and u[0]["std"] < 1e-6
    assert u[0]["n"] == cells
    # the listing names what the statistics are of: U / U_ref, and Cp for the pressure
    listing = CliRunner().invoke(_cli(), ["cfd", "stats", str(out / "table")]).output
    assert "U/U_ref (U)[0]" in listing
    assert "p" in case_stats and "Cp (p)" in listing and "\n  p " not in listing
    vtus = list((out / "vtk").glob("*.vtu"))
    assert len(vtus) == table.num_rows
