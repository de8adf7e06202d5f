"""`hpcprep plan --format dot|svg|png`: the resolved pipeline drawn by Graphviz, for every example spec."""

from __future__ import annotations

import importlib
import struct
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.placement import ClusterInfo
from hpcprep.plan import build_plan, format_dot, render
from hpcprep.plugins import PluginRegistry
from hpcprep.scaffold import create_plugin
from hpcprep.spec import resolve

from tests.conftest import require_tool

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.toml"))
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def registry():
    return PluginRegistry()


def demo_stand_ins(spec: Path, tmp_path: Path) -> tuple[list[str], list]:
    """``(overrides, extra plugins)`` standing in for what `make demo` makes before a spec runs:
    GNN weights (untrained: only the file's shape matters to the plan) and the `bytes` plugin
    the core demo scaffolds, and a folder for the reader's paths (the demo prepares the
    inputs; a path that names nothing is refused when the spec is resolved). The inputs are
    not listed: the plan is drawn from the stages."""
    data = tomllib.loads(spec.read_text())
    overrides, plugins = [f'reader.paths=["{tmp_path}"]'], []
    for i, enc in enumerate(data.get("encoders", [])):
        if enc["stage"] == "genomics.gnn_embed":
            from hpcprep_genomics.gnn import GnnConfig, random_weights, save_weights

            config = GnnConfig(k=5)
            save_weights(tmp_path / "gnn.npz", config, random_weights(config, 0))
            overrides.append(f"encoders.{i}.weights={tmp_path / 'gnn.npz'}")
        if enc["stage"].startswith("bytes."):
            create_plugin("bytes", tmp_path)
            project = str(tmp_path / "hpcprep-bytes")
            sys.path.insert(0, project)
            try:
                plugins.append(importlib.import_module("hpcprep_bytes.plugin"))
            finally:
                sys.path.remove(project)
    return overrides, plugins


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_spec_is_drawn_as_svg_and_png(spec, tmp_path):
    require_tool("dot")
    overrides, plugins = demo_stand_ins(spec, tmp_path)
    registry = PluginRegistry(extra_plugins=plugins)
    resolved = resolve(spec, registry, overrides, plan_inputs=False)
    plan = build_plan(resolved, registry, ClusterInfo(cpus=16, gpus=1))
    svg = ET.fromstring(render(plan, "svg"))
    assert svg.tag == f"{SVG}svg"
    texts = [t.text or "" for t in svg.iter(f"{SVG}text")]
    for stage in plan["stages"]:
        assert stage["stage"] in texts, f"{spec.name}: {stage['stage']} not drawn"
    arrows = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(arrows) == len(plan["stages"]) - 1  # a chain from the reader, each sink fed once
    frames = [g for g in svg.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert len(frames) == len(plan["pools"])

    png = render(plan, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert width > 100 and height > 30


def test_the_cli_writes_the_drawing(tmp_path):
    require_tool("dot")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("hello")
    spec = tmp_path / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{tmp_path / "out"}"\n[reader]\nstage = "files"\npaths = ["{tmp_path / "data"}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{tmp_path / "out" / "t"}"\n'
    )
    runner = CliRunner()
    res = runner.invoke(cli, ["plan", str(spec), "--format", "svg", "--out", str(tmp_path / "plan.svg")])
    assert res.exit_code == 0, res.output
    assert ET.parse(tmp_path / "plan.svg").getroot().tag == f"{SVG}svg"
    res = runner.invoke(cli, ["plan", str(spec), "--format", "png"])  # not a terminal: bytes on stdout
    assert res.exit_code == 0 and res.stdout_bytes[:4] == b"\x89PNG"
    res = runner.invoke(cli, ["plan", str(spec), "--format", "dot"])
    assert res.output.startswith("digraph hpcprep {") and "s0 -> s1;" in res.output


def test_without_graphviz_the_error_says_what_to_install(registry, monkeypatch):
    plan = build_plan(resolve(EXAMPLES[0], registry, plan_inputs=False), registry, ClusterInfo(cpus=2))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        render(plan, "svg")
    assert format_dot(plan).startswith("digraph hpcprep {")  # the source needs nothing
