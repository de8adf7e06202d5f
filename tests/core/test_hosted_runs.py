"""Runs that the keeper of a kept local Ray drives for the commands that ask (``hpcprep.hosted_runs``):
same outputs and exit codes as a command's own run, workers that outlive commands, new code
picked up, Ctrl-C honoured with nothing lost, and the command's own run wherever the keeper
cannot stand in for it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hpcprep.reaper import descendants
from hpcprep.run_log import LOG_FILE

from tests.core.test_local_ray import contents, keeper, project, titled, wait_gone

HPCPREP = str(Path(sys.executable).with_name("hpcprep"))
HOSTED = "run by the keeper of the local Ray"
NATIVE_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [IWEF] \d+ \d+\] ", re.M)

PLUGIN = '''
import time
import numpy as np
import hpcprep

TAG = "{tag}"

class Tag(hpcprep.Encoder):
    """The plugin's TAG on every record."""
    name = "tagged.tag"
    outputs = (hpcprep.Column("tag", "string", "TAG"),)
    def encode(self, batch):
        return {{"tag": np.array([TAG] * len(batch["size"]), dtype=object)}}

class Lazy(hpcprep.Encoder):
    """hpx_tag_value's TAG on every record, imported where the records are encoded."""
    name = "tagged.lazy"
    outputs = (hpcprep.Column("tag", "string", "TAG"),)
    def encode(self, batch):
        from hpx_tag_value import TAG
        return {{"tag": np.array([TAG] * len(batch["size"]), dtype=object)}}

class Slow(hpcprep.Encoder):
    """Copies the size column, a quarter of a second per batch."""
    name = "tagged.slow"
    outputs = (hpcprep.Column("slow", "int64", "copy of size"),)
    def encode(self, batch):
        time.sleep(0.25)
        return {{"slow": batch["size"].copy()}}

@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(Tag)
    register(Lazy)
    register(Slow)
'''


def write_plugin(site: Path, tag: str) -> None:
    (site / "hpx_tagged.py").write_text(textwrap.dedent(PLUGIN.format(tag=tag)))
    info = site / "hpcprep_tagged-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hpcprep-tagged\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[hpcprep]\ntagged = hpx_tagged\n")


@pytest.fixture
def env(tmp_path):
    """A runtime directory and a plugin of the test's own; every keeper started there stopped after."""
    site = tmp_path / "site"
    site.mkdir()
    write_plugin(site, "one")
    runtime = tmp_path / "rt"
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    yield {**os.environ, "HPCPREP_RUNTIME_DIR": str(runtime), "PYTHONPATH": pythonpath, "HPCPREP_KEEP_RAY": "120"}
    state = runtime / "local-ray.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        os.kill(pid, signal.SIGKILL)


def run(where: Path, env: dict, *args: str, check: bool = True, spec: str = "spec.toml") -> subprocess.CompletedProcess:
    res = subprocess.run([HPCPREP, "run", spec, *args], cwd=where, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


def prepared(env: dict, seconds: float = 60.0) -> None:
    """Wait for the keeper to have readied itself after the command that started it."""
    runtime = Path(env["HPCPREP_RUNTIME_DIR"])
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if json.loads((runtime / "local-ray.code.json").read_text())["pid"] == keeper(runtime):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError("the keeper did not ready itself")


def status(env: dict) -> dict:
    res = subprocess.run([HPCPREP, "local-ray", "status", "--json"], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def ray_workers(pid: int) -> set[int]:
    return titled(descendants(pid), "ray::")


def tagged(root: Path, encoder: str = "tagged.tag", **run) -> Path:
    extra = "".join(f"{k} = {v}\n" for k, v in run.items())
    (root / "spec.toml").write_text(
        f'[run]\noutput = "out"\n{extra}[reader]\nstage = "files"\npaths = ["data"]\n'
        f'[[encoders]]\nstage = "{encoder}"\n[[sinks]]\nstage = "parquet"\npath = "out/table"\n'
    )
    return root


def test_the_keeper_runs_the_next_commands_in_workers_that_outlive_them(tmp_path, env):
    a = project(tmp_path / "a", {"x.txt": "first", "y.txt": "second"})
    first = run(a, env, "--overwrite")
    assert "started a local Ray" in first.stderr and HOSTED not in first.stderr
    pid = keeper(Path(env["HPCPREP_RUNTIME_DIR"]))
    prepared(env)

    (a / "data" / "z.txt").write_text("third")
    second = run(a, env, "--overwrite")
    assert HOSTED in second.stderr, second.stderr
    assert "complete: inputs 3 = outputs 3 + errors 0" in second.stdout
    assert contents(a) == {"x.txt": b"first", "y.txt": b"second", "z.txt": b"third"}
    manifest = json.loads((a / "out" / "manifest.json").read_text())
    assert manifest["counts"]["balanced"] and manifest["counts"]["outputs"] == 3
    workers = ray_workers(pid)

    (a / "data" / "w.txt").write_text("fourth")
    third = run(a, env, "--overwrite")
    assert HOSTED in third.stderr
    assert contents(a)["w.txt"] == b"fourth"
    assert ray_workers(pid) == workers, "the keeper's runs started worker processes again"

    # An error of the run reaches the command: its message and exit code, as its own run's would.
    refused = run(a, env, check=False)
    assert refused.returncode == 1 and "--overwrite" in refused.stderr and HOSTED not in refused.stderr
    assert keeper(Path(env["HPCPREP_RUNTIME_DIR"])) == pid

    # and the keeper goes on: an actor pipeline, whose driver-side Ray logs its C++ notice
    # into the run's log, not onto the command's terminal
    from tests.cfd.data import geometry

    (a / "cfd.toml").write_text(
        f'[run]\noutput = "cfd"\n[reader]\nstage = "cfd.mesh"\npaths = ["{geometry("bullet.stl.gz")}"]\n'
        '[[encoders]]\nstage = "cfd.health"\n[[sinks]]\nstage = "parquet"\npath = "cfd/table"\n'
    )
    res = run(a, env, "--overwrite", spec="cfd.toml")
    assert HOSTED in res.stderr
    assert "[hpcprep] done: inputs 1 = outputs 1 + errors 0" in res.stderr
    assert not NATIVE_LINE.search(res.stderr + res.stdout), res.stderr
    assert "has constructor arguments in the object store" in (a / "cfd" / LOG_FILE).read_text()

    # A spec the kept Ray does not fit (another CPU count): the keeper declines, the command runs it.
    (a / "one-cpu.toml").write_text(
        '[run]\noutput = "one-cpu"\nnum_cpus = 1\n[reader]\nstage = "files"\npaths = ["data"]\n'
        '[[encoders]]\nstage = "tagged.tag"\n[[sinks]]\nstage = "parquet"\npath = "one-cpu/table"\n'
    )
    res = run(a, env, "--overwrite", spec="one-cpu.toml")
    assert HOSTED not in res.stderr and "replacing it" in res.stderr
    manifest = json.loads((a / "one-cpu" / "manifest.json").read_text())
    assert manifest["counts"]["balanced"] and manifest["counts"]["outputs"] == 4
    assert set(pq.read_table(a / "one-cpu" / "table")["tag"].to_pylist()) == {"one"}


def test_a_plugin_changed_on_disk_replaces_the_keeper(tmp_path, env):
    a = tagged(project(tmp_path / "a", {"x.txt": "x"}))
    run(a, env, "--overwrite")
    prepared(env)
    run(a, env, "--overwrite")
    assert set(pq.read_table(a / "out" / "table")["tag"].to_pylist()) == {"one"}
    before = keeper(Path(env["HPCPREP_RUNTIME_DIR"]))

    write_plugin(tmp_path / "site", "two")
    changed = run(a, env, "--overwrite")
    assert "hpx_tagged.py changed since the local Ray's keeper or its workers imported it" in changed.stderr
    assert HOSTED not in changed.stderr
    assert set(pq.read_table(a / "out" / "table")["tag"].to_pylist()) == {"two"}
    assert not wait_gone({before}), "the keeper with the old code is still alive"

    prepared(env)
    again = run(a, env, "--overwrite")
    assert HOSTED in again.stderr
    assert set(pq.read_table(a / "out" / "table")["tag"].to_pylist()) == {"two"}

    # A module that only the keeper's workers import (the encoder imports it when it encodes) counts too.
    value = tmp_path / "site" / "hpx_tag_value.py"
    value.write_text('TAG = "three"\n')
    (a / "lazy.toml").write_text(
        (a / "spec.toml").read_text().replace("tagged.tag", "tagged.lazy").replace('"out', '"lazy')
    )
    assert HOSTED in run(a, env, "--overwrite", spec="lazy.toml").stderr
    assert set(pq.read_table(a / "lazy" / "table")["tag"].to_pylist()) == {"three"}
    value.write_text('TAG = "four"\n')
    changed = run(a, env, "--overwrite", spec="lazy.toml")
    assert "hpx_tag_value.py changed since the local Ray's keeper or its workers imported it" in changed.stderr
    assert HOSTED not in changed.stderr
    assert set(pq.read_table(a / "lazy" / "table")["tag"].to_pylist()) == {"four"}


def test_ctrl_c_interrupts_the_run_in_the_keeper_and_resume_completes_it(tmp_path, env):
    files = {f"f{i:02d}.txt": f"record {i}" for i in range(12)}
    a = tagged(project(tmp_path / "a", files), "tagged.slow", commit_every=2)
    run(a, env, "--overwrite")
    prepared(env)
    pid = keeper(Path(env["HPCPREP_RUNTIME_DIR"]))
    assert status(env)["runs_commands"] is True
    proc = subprocess.Popen(
        [HPCPREP, "run", "spec.toml", "--overwrite"],
        cwd=a,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    while "group 2 committed" not in seen:
        line = proc.stderr.readline()
        assert line, f"the run ended before its second group: {seen}"
        seen += line
    assert HOSTED in seen
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "Aborted!" in rest, rest
    manifest = json.loads((a / "out" / "manifest.json").read_text())
    # (the manifest is written just after a group's line: it may hold one group fewer)
    assert manifest["status"] != "complete" and 2 <= manifest["counts"]["outputs"] < 12

    # The keeper drives no more runs after an interrupted one; its Ray is still joined.
    assert status(env)["runs_commands"] is False
    resumed = run(a, env, "--resume")
    assert HOSTED not in resumed.stderr and "joined the local Ray kept by an earlier command" in resumed.stderr
    assert keeper(Path(env["HPCPREP_RUNTIME_DIR"])) == pid
    manifest = json.loads((a / "out" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["balanced"]
    assert len(contents(a)) == 12 and contents(a)["f07.txt"] == b"record 7"
