"""`hpcprep new-plugin`: the generated project installs, passes its own tests and runs as generated.

Everything goes through subprocesses, as a person would type it: the CLI scaffolds,
pip installs into a private folder (never into this environment, whose plugin list
other tests rely on), pytest runs the plugin's tests, and `hpcprep run` starts its
own Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from hpcprep.scaffold import ScaffoldError, create_plugin

BIN = Path(sys.executable).parent
NAME = "demo"


def hpcprep_cmd() -> str:
    script = BIN / "hpcprep"
    return str(script) if script.exists() else shutil.which("hpcprep") or pytest.fail("no hpcprep script")


def env_with(site: Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), env.get("PYTHONPATH")) if p)
    env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    env.pop("HPCPREP_LOAD_PLUGINS", None)
    env.pop("HPCPREP_DISABLE_PLUGINS", None)
    return env


def run(cmd: list, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{cmd} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def install(project: Path, site: Path) -> None:
    """pip-install ``project`` into ``site`` offline, with this environment's setuptools."""
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--target",
        site,
        project,
    ]
    result = subprocess.run([str(c) for c in pip], capture_output=True, text=True, timeout=300)
    if result.returncode == 0:
        return
    if "bdist_wheel" not in result.stdout + result.stderr:
        pytest.fail(f"pip install failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    # A setuptools older than 70.1 builds wheels only with the `wheel` package, which
    # offline we may not have; the same setuptools still lays out the package and its
    # metadata (entry points included) from the generated pyproject.toml.
    site.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "egg_info",
            "--egg-base",
            site,
            "build_py",
            "--build-lib",
            site,
        ],
        cwd=project,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(project folder, site folder it is installed in), scaffolded by the real CLI."""
    root = tmp_path_factory.mktemp("new-plugin")
    out = run([hpcprep_cmd(), "new-plugin", NAME, "--dir", root], timeout=120)
    project = root / f"hpcprep-{NAME}"
    assert f"created {project}" in out.stdout
    site = root / "site"
    install(project, site)
    return project, site


def test_scaffold_writes_a_complete_project(demo):
    project, site = demo
    files = sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file())
    for expected in [
        "pyproject.toml",
        "README.md",
        "example.toml",
        ".gitignore",
        f"hpcprep_{NAME}/__init__.py",
        f"hpcprep_{NAME}/plugin.py",
        f"hpcprep_{NAME}/stages.py",
        f"hpcprep_{NAME}/kernels.py",
        "tests/test_plugin.py",
    ]:
        assert expected in files
    assert len([f for f in files if f.startswith("data/")]) >= 3
    for f in files:
        text = (project / f).read_text()
        assert "{{" not in text, f"unfilled placeholder in {f}"
    pyproject = (project / "pyproject.toml").read_text()
    assert f'{NAME} = "hpcprep_{NAME}.plugin"' in pyproject
    stages = (project / f"hpcprep_{NAME}" / "kernels.py").read_text()
    assert "@njit(cache=True, nogil=True)" in stages
    assert (site / f"hpcprep_{NAME}" / "plugin.py").exists()


def test_scaffold_refuses_bad_names_and_existing_folders(demo, tmp_path):
    project, _ = demo
    again = subprocess.run(
        [hpcprep_cmd(), "new-plugin", NAME, "--dir", str(project.parent)], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    for bad in ["Demo", "my-plugin", "1st", "class", "hpcprep", "a__b", "x_", "ünï"]:
        with pytest.raises(ScaffoldError):
            create_plugin(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    assert create_plugin("cryo_em2", tmp_path) == tmp_path / "hpcprep-cryo_em2"


def test_generated_tests_pass_with_the_kit(demo):
    project, site = demo
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env_with(site))
    assert " passed" in out.stdout and "failed" not in out.stdout and "skipped" not in out.stdout


def test_generated_tests_still_pass_once_the_plugin_grows_a_stage(demo, tmp_path):
    """The project's README says to grow it by adding stages: its own tests must not pin the stage list."""
    project, _ = demo
    grown = tmp_path / project.name
    shutil.copytree(project, grown, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    package = grown / f"hpcprep_{NAME}"
    with open(package / "stages.py", "a") as fh:
        fh.write(
            "\n\nclass ByteHistogramAgain(ByteHistogram):\n"
            '    """The same histogram under a second name."""\n\n'
            f'    name = "{NAME}.byte_histogram_again"\n'
        )
    plugin = (package / "plugin.py").read_text()
    plugin = plugin.replace(
        "from .stages import ByteHistogram\n", "from .stages import ByteHistogram, ByteHistogramAgain\n"
    )
    plugin = plugin.replace("register(ByteHistogram)\n", "register(ByteHistogram)\n    register(ByteHistogramAgain)\n")
    assert "register(ByteHistogramAgain)" in plugin
    (package / "plugin.py").write_text(plugin)
    site = tmp_path / "site"
    install(grown, site)
    listed = run([hpcprep_cmd(), "plugins", "--json"], env=env_with(site), timeout=120)
    stages = {p["name"]: p for p in json.loads(listed.stdout)}[NAME]["stages"]
    assert sorted(stages) == [f"{NAME}.byte_histogram", f"{NAME}.byte_histogram_again"]
    out = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=grown, env=env_with(site))
    assert " passed" in out.stdout and "failed" not in out.stdout


def test_hpcprep_plugins_lists_it(demo):
    _, site = demo
    out = run([hpcprep_cmd(), "plugins", "--json"], env=env_with(site), timeout=120)
    plugins = {p["name"]: p for p in json.loads(out.stdout)}
    assert NAME in plugins, sorted(plugins)
    info = plugins[NAME]
    assert info["status"] == "ok", info["error"]
    assert info["distribution"] == f"hpcprep-{NAME}"
    assert info["stages"] == [f"{NAME}.byte_histogram"]
    assert info["hooks"] == ["hpcprep_register_encoders"]


def test_example_spec_runs_as_generated(demo):
    project, site = demo
    out = run([hpcprep_cmd(), "run", "example.toml"], cwd=project, env=env_with(site), timeout=400)
    assert "inputs 3 = outputs 3 + errors 0" in out.stdout

    data = sorted((project / "data").iterdir())
    table = pq.read_table(project / "out" / "example" / "histograms")
    assert sorted(table["source"].to_pylist()) == [str(p) for p in data]  # one row per file
    by_name = {
        Path(s).name: np.asarray(v, dtype=np.float32)
        for s, v in zip(table["source"].to_pylist(), table["vector"].to_pylist())
    }
    for path in data:
        vector = by_name[path.name]
        assert vector.shape == (256,)
        assert vector.sum() == pytest.approx(1.0, abs=1e-5)
        raw = np.frombuffer(path.read_bytes(), dtype=np.uint8)
        expected = np.bincount(raw, minlength=256) / raw.size
        np.testing.assert_allclose(vector, expected, rtol=1e-6)

    manifest = json.loads((project / "out" / "example" / "manifest.json").read_text())
    c = manifest["counts"]
    assert (c["inputs"], c["outputs"], c["errors"], c["balanced"]) == (len(data), len(data), 0, True)
    assert manifest["status"] == "complete"


# -- the other kinds ------------------------------------------------------------------

KIND_STAGES = {"reader": ("csv_rows", "hpcprep_register_readers"), "sink": ("jsonl", "hpcprep_register_sinks")}


@pytest.fixture(scope="module", params=sorted(KIND_STAGES))
def kind_project(request, tmp_path_factory):
    """(kind, plugin name, project folder, site folder) of a reader or sink plugin scaffolded by the CLI."""
    kind = request.param
    name = f"demo_{kind}"
    root = tmp_path_factory.mktemp(f"new-{kind}-plugin")
    out = run([hpcprep_cmd(), "new-plugin", name, "--kind", kind, "--dir", root], timeout=120)
    project = root / f"hpcprep-{name}"
    assert f"created {project}" in out.stdout
    site = root / "site"
    install(project, site)
    return kind, name, project, site


def test_a_reader_or_sink_plugin_installs_lists_and_passes_its_own_tests(kind_project):
    kind, name, project, site = kind_project
    for f in project.rglob("*"):
        assert not f.is_file() or "{{" not in f.read_text(errors="replace"), f"unfilled placeholder in {f}"
    assert not (project / f"hpcprep_{name}" / "kernels.py").exists()  # the encoder's files stay out
    out = run([hpcprep_cmd(), "plugins", "--json"], env=env_with(site), timeout=120)
    info = {p["name"]: p for p in json.loads(out.stdout)}[name]
    stage, hook = KIND_STAGES[kind]
    assert (info["status"], info["stages"], info["hooks"]) == ("ok", [f"{name}.{stage}"], [hook])
    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env_with(site))
    assert " passed" in tests.stdout and "failed" not in tests.stdout and "skipped" not in tests.stdout


def test_a_reader_or_sink_plugin_runs_its_example_spec(kind_project):
    kind, _, project, site = kind_project
    out = run([hpcprep_cmd(), "run", "example.toml"], cwd=project, env=env_with(site), timeout=400)
    data = sorted((project / "data").iterdir())
    manifest = json.loads((project / "out" / "example" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["balanced"]
    if kind == "reader":
        # every data row of the two CSV files, numbers as Python's csv module reads them
        expected = {}
        for path in (p for p in data if p.suffix == ".csv"):
            lines = path.read_text().splitlines()
            for n, line in enumerate(lines[1:], start=2):
                expected[(str(path), n)] = ([float(x) for x in line.split(",")], lines[0])
        assert f"inputs {len(expected)} = outputs {len(expected)} + errors 0" in out.stdout
        rows = pq.read_table(project / "out" / "example" / "rows").to_pylist()
        got = {(r["source"], r["line"]): (r["values"], r["columns"]) for r in rows}
        assert got == expected
    else:
        assert f"inputs {len(data)} = outputs {len(data)} + errors 0" in out.stdout
        folder = project / "out" / "example" / "records"
        records = [json.loads(line) for f in folder.glob("*.jsonl") for line in f.read_text().splitlines()]
        assert sorted((r["source"], r["size"]) for r in records) == [(str(p), p.stat().st_size) for p in data]
        assert all(set(r) == {"source", "record_id", "size"} for r in records)
