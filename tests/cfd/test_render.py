"""``hpcprep cfd render``: ParaView (pvpython, offscreen) draws what ``cfd.vtk`` wrote."""

from __future__ import annotations

import hpcprep
import numpy as np
import pytest
from click.testing import CliRunner
from hpcprep.cli import build_cli

from tests.cfd.data import case, geometry
from tests.conftest import require_module, require_tool


def pixels(path) -> np.ndarray:
    """The PNG's pixels as (height, width, channels), read by VTK's own PNG reader."""
    vtk = require_module("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    reader = vtk.vtkPNGReader()
    reader.SetFileName(str(path))
    reader.Update()
    image = reader.GetOutput()
    w, h, _ = image.GetDimensions()
    data = vtk_to_numpy(image.GetPointData().GetScalars())
    return data.reshape(h, w, -1)[:, :, :3].astype(int)


def cli():
    return build_cli()[0]


def render(*args) -> str:
    require_tool("pvpython")
    require_tool("xvfb-run")
    result = CliRunner().invoke(cli(), ["cfd", "render", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def geometry_run(tmp_path_factory, ray_local):
    tmp = tmp_path_factory.mktemp("geometry")
    spec = {
        "run": {"output": str(tmp / "run"), "name": "bullet"},
        "reader": {"stage": "cfd.mesh", "paths": [str(geometry("bullet.stl.gz"))]},
        "encoders": [{"stage": "cfd.surface_sample", "n": 2048}, {"stage": "cfd.sdf_grid", "resolution": 32}],
        "sinks": [{"stage": "cfd.vtk", "path": str(tmp / "vtk")}],
    }
    hpcprep.run(spec, progress=False)
    return tmp


def test_a_geometry_is_drawn_with_its_samples_and_sdf_slice(geometry_run):
    out = geometry_run / "bullet.png"
    said = render(geometry_run / "run", "--out", out, "--size", "600x400")
    assert said.startswith(f"wrote {out} (geometry: bullet_") and ".vtp)" in said
    img = pixels(out)
    assert img.shape == (400, 600, 3)
    drawn = (img < 250).any(axis=2)  # the background is white
    assert 0.05 < drawn.mean() < 0.9
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    # the slice's colours: red outside the surface, blue inside (the samples are blue too)
    assert ((r > b + 60) & (r > g + 40)).sum() > 500
    assert ((b > r + 60) & drawn).sum() > 200


def test_openfoam_cells_are_drawn_coloured_by_a_field(tmp_path, ray_local):
    spec = {
        "run": {"output": str(tmp_path / "run"), "name": "foil"},
        "reader": {"stage": "cfd.openfoam", "paths": [str(case("airFoil2D"))], "polyhedra": True},
        "sinks": [{"stage": "cfd.vtk", "path": str(tmp_path / "vtk")}],
    }
    hpcprep.run(spec, progress=False)
    out = tmp_path / "foil.png"
    said = render(tmp_path / "run", "--out", out, "--color", "volume", "--zoom", "6", "--size", "600x400")
    assert said.startswith(f"wrote {out} (cells: airFoil2D_")
    img = pixels(out)
    drawn = (img < 250).any(axis=2)
    assert drawn.mean() > 0.8  # zoomed onto the foil: cells fill the picture, the foil is a white hole
    assert not drawn[200, 300]  # the middle of the picture is the foil itself


def test_render_says_what_is_missing(tmp_path):
    require_tool("pvpython")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "manifest.json").write_text('{"spec": {"sinks": [{"stage": "parquet", "path": "t"}]}}')
    result = CliRunner().invoke(cli(), ["cfd", "render", str(tmp_path / "run"), "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "this run has no cfd.vtk sink, so there is nothing to draw" in result.output
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(cli(), ["cfd", "render", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "no surface mesh (.vtp) to draw" in result.output
    result = CliRunner().invoke(
        cli(), ["cfd", "render", str(tmp_path / "empty"), "--out", str(tmp_path / "x.png"), "--size", "big"]
    )
    assert result.exit_code != 0 and "'big' is not WIDTHxHEIGHT" in result.output


def test_a_crash_is_reported_by_its_reason_not_only_its_stack():
    from hpcprep_cfd.render_command import _what_went_wrong

    crash = ["(   1.8s) [paraview ]vtkXOpenGLRenderWindow.:465    ERR| bad X server connection. DISPLAY=:1. Aborting."]
    crash += [f"{n}      0x7f0 frame {n}" for n in range(40, 0, -1)] + ["Aborted"]
    said = _what_went_wrong("\n".join(crash)).splitlines()
    assert said[0] == crash[0] and said[-1] == "Aborted" and len(said) == 16
