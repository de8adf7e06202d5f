"""Plugin discovery: entry points, allow/block lists, broken plugins that never crash the CLI."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.plugins import PluginRegistry
from hpcprep.spec import SpecError, resolve

GOOD = '''
import numpy as np
import hpcprep

class Echo(hpcprep.Encoder):
    """Copies the size column."""
    name = "good.echo"
    outputs = (hpcprep.Column("echo", "int64", "copy of size"),)
    def encode(self, batch):
        return {"echo": batch["size"].copy()}

@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(Echo)

@hpcprep.hookimpl
def hpcprep_register_commands(cli):
    @cli.command("good-hello")
    def hello():
        """Says hello."""
        print("hello from good")
'''

BROKEN = """
import numpy_that_does_not_exist  # the import error under test
"""

RAISING = """
import hpcprep

@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    raise RuntimeError("registration exploded")
"""


def _dist(site, dist_name, module, source, ep_name):
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[hpcprep]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _dist(site, "hpcprep-good", "hpx_good", GOOD, "good")
    _dist(site, "hpcprep-broken", "hpx_broken", BROKEN, "broken")
    _dist(site, "hpcprep-raising", "hpx_raising", RAISING, "raising")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("HPCPREP_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("HPCPREP_DISABLE_PLUGINS", raising=False)
    yield site
    for m in ("hpx_good", "hpx_broken", "hpx_raising"):
        sys.modules.pop(m, None)


def test_entry_points_are_discovered_and_broken_ones_recorded(site):
    reg = PluginRegistry()
    assert reg.plugins["good"].status == "ok"
    assert reg.plugins["good"].version == "1.2.3"
    assert reg.plugins["good"].stages == ["good.echo"]
    assert reg.get("good.echo", "encoder").plugin == "good"
    broken = reg.plugins["broken"]
    assert broken.status == "broken"
    assert "ModuleNotFoundError" in broken.error and "numpy_that_does_not_exist" in broken.error
    raising = reg.plugins["raising"]
    assert raising.status == "broken" and "registration exploded" in raising.error
    # The core's own stages are there regardless.
    assert reg.get("parquet", "sink").plugin == "hpcprep"


def loaded(reg: PluginRegistry) -> set[str]:
    return {name for name, p in reg.plugins.items() if p.status != "disabled"}


def test_load_plugins_allow_list(site, monkeypatch):
    monkeypatch.setenv("HPCPREP_LOAD_PLUGINS", "good")
    reg = PluginRegistry()
    assert loaded(reg) == {"hpcprep", "good"}
    assert reg.plugins["broken"].error == "not in HPCPREP_LOAD_PLUGINS"
    monkeypatch.setenv("HPCPREP_LOAD_PLUGINS", "")
    reg = PluginRegistry()
    assert loaded(reg) == {"hpcprep"}, "empty allow-list loads no external plugins"
    # The distribution name works too, in any case.
    monkeypatch.setenv("HPCPREP_LOAD_PLUGINS", "HPCPREP-Broken")
    assert loaded(PluginRegistry()) == {"hpcprep", "broken"}


def test_disable_plugins_block_list(site, monkeypatch):
    monkeypatch.setenv("HPCPREP_DISABLE_PLUGINS", "broken, raising")
    reg = PluginRegistry()
    assert {"good"} <= loaded(reg) and not {"broken", "raising"} & loaded(reg)
    assert not reg.broken()
    assert {p.name for p in reg.disabled()} == {"broken", "raising"}


def test_disable_ignores_case_and_says_why_a_stage_is_missing(site, monkeypatch, tmp_path):
    monkeypatch.setenv("HPCPREP_DISABLE_PLUGINS", "GOOD")
    reg = PluginRegistry()
    assert reg.plugins["good"].status == "disabled"
    with pytest.raises(SpecError) as info:
        resolve(_spec(tmp_path, "good.echo"), reg)
    assert info.value.problems == [
        "encoders[0]: stage 'good.echo' comes from plugin 'good' (hpcprep-good 1.2.3), which is disabled: "
        "named in HPCPREP_DISABLE_PLUGINS"
    ]
    text = CliRunner().invoke(cli, ["plugins"], obj={"registry": reg}).output
    assert "good 1.2.3 (hpcprep-good): disabled (named in HPCPREP_DISABLE_PLUGINS)" in text


EXITING = """
import sys
sys.exit(3)  # a module that ends the process at import: the case under test
"""


def test_a_plugin_calling_sys_exit_at_import_is_broken_not_fatal(site):
    _dist(site, "hpcprep-exiting", "hpx_exiting", EXITING, "exiting")
    reg = PluginRegistry()
    assert reg.plugins["exiting"].status == "broken"
    assert reg.plugins["exiting"].error == "SystemExit(3) raised while loading"
    assert reg.plugins["good"].status == "ok"
    from hpcprep.cli import build_cli

    group, reg = build_cli()
    listed = CliRunner().invoke(group, ["plugins"], obj={"registry": reg})
    assert listed.exit_code == 0 and "exiting 1.2.3 (hpcprep-exiting): BROKEN: SystemExit(3)" in listed.output
    described = CliRunner().invoke(group, ["describe", "good.echo"], obj={"registry": reg})
    assert described.exit_code == 0 and "Copies the size column" in described.output


def test_cli_plugins_lists_broken_plugins_without_crashing(site):
    reg = PluginRegistry()
    result = CliRunner().invoke(cli, ["plugins", "--json"], obj={"registry": reg})
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert rows["good"]["stages"] == ["good.echo"]
    assert "hpcprep_register_encoders" in rows["good"]["hooks"]
    assert rows["broken"]["status"] == "broken"
    assert "numpy_that_does_not_exist" in rows["broken"]["error"]
    text = CliRunner().invoke(cli, ["plugins"], obj={"registry": reg}).output
    assert "broken 1.2.3 (hpcprep-broken): BROKEN: ModuleNotFoundError" in text


def test_plugin_commands_are_added(site):
    from hpcprep.cli import build_cli

    group, reg = build_cli()
    result = CliRunner().invoke(group, ["good-hello"], obj={"registry": reg})
    assert result.exit_code == 0 and "hello from good" in result.output


def test_stage_modules_and_kernels_are_imported_only_when_needed():
    # The CLI builds the registry for every command but ``run``; collecting the stages imports every stage
    # module, so it waits until something asks for a stage. The stage modules name their kernels (Numba) for
    # first use (hpcprep.lazy): validating and planning a spec on the driver imports no kernel.
    probe = textwrap.dedent(
        """
        import sys
        from hpcprep.cli import build_cli
        group, reg = build_cli()
        print(sorted(group.commands) == sorted(set(group.commands)), "cfd" in group.commands)
        print("numba" in sys.modules, "hpcprep_cfd.encoders" in sys.modules, "hpcprep_genomics.encoders" in sys.modules)
        reg.get("cfd.sdf_points", "encoder")
        print("numba" in sys.modules, "hpcprep_cfd.encoders" in sys.modules, reg.plugins["cfd"].stages[:1])
        from hpcprep_cfd import encoders
        encoders.kernels.check_mesh
        print("numba" in sys.modules, "hpcprep_cfd.kernels.health" in sys.modules)
        """
    )
    import subprocess

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "True True"  # the domain plugins' commands are there
    assert out[1] == "False False False"
    assert out[2] == "False True ['cfd.mesh']"
    assert out[3] == "True True"


def test_a_raising_registration_hook_is_reported_by_the_first_question(site):
    # Stages are collected when first asked for; the plugin list asks too, so a hook that raises is still broken.
    reg = PluginRegistry()
    assert reg._stages is None
    assert reg.plugins["raising"].status == "broken"
    assert "registration exploded" in reg.plugins["raising"].error


def _spec(tmp_path, stage):
    data = tmp_path / "d"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("abc")
    return {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": stage}],
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "out" / "t")}],
    }


def test_spec_needing_a_broken_plugin_names_plugin_stage_and_error(site, tmp_path):
    with pytest.raises(SpecError) as info:
        resolve(_spec(tmp_path, "broken.thing"), PluginRegistry())
    msg = str(info.value)
    assert "'broken.thing'" in msg and "plugin 'broken'" in msg
    assert "ModuleNotFoundError" in msg and "numpy_that_does_not_exist" in msg


def test_run_with_a_broken_plugin_installed_still_works(site, tmp_path, ray_local):
    import hpcprep
    import pyarrow.parquet as pq
    from ray import cloudpickle

    reg = PluginRegistry()
    assert reg.broken()
    # The fake site directory exists only on this process's path, not on the session's
    # already-running Ray workers; a real install is in site-packages on every worker.
    cloudpickle.register_pickle_by_value(sys.modules["hpx_good"])
    result = hpcprep.run(_spec(tmp_path, "good.echo"), registry=reg, progress=False)
    table = pq.read_table(tmp_path / "out" / "t")
    assert table.column("echo").to_pylist() == [3]
    assert result.manifest["plugins"]["good"] == "1.2.3"
    assert "broken" not in result.manifest["plugins"]


def test_cli_plugins_lists_each_kind_of_stage_on_its_own_line():
    """The core's reader and sink are both called "parquet": the listing says which is which."""
    lines = CliRunner().invoke(cli, ["plugins"], obj={"registry": PluginRegistry()}).output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("hpcprep "))
    end = next(i for i in range(start + 1, len(lines) + 1) if i == len(lines) or not lines[i].startswith(" "))
    listed = dict(line.strip().split(":", 1) for line in lines[start + 1 : end])
    assert set(listed) == {"hooks", "readers", "sinks"}  # the core registers no encoder
    assert {"files", "parquet"} <= set(listed["readers"].replace(",", " ").split())
    assert {"parquet", "lancedb", "feast"} <= set(listed["sinks"].replace(",", " ").split())


def test_describe_writes_each_parameter_type_as_a_spec_writes_it():
    from typing import Annotated, Literal

    from hpcprep.cli import type_text
    from hpcprep.stages import LocalPath

    assert type_text(Literal["dense", "sparse", "auto"]) == 'one of "dense", "sparse", "auto"'
    assert type_text(int | None) == "int | None"
    assert type_text(list[LocalPath]) == "list[str]"
    assert type_text(Annotated[float, "unit"]) == "float"
    assert type_text(list[str] | None) == "list[str] | None"
