"""The local Ray that ``hpcprep run`` keeps between commands (``hpcprep.local_ray``):
joined by the next command when it is the Ray that command would start, replaced when
it is not, stopped when idle, on ``hpcprep local-ray stop``, and with its keeper."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hpcprep import local_ray
from hpcprep.reaper import alive, descendants

HPCPREP = str(Path(sys.executable).with_name("hpcprep"))

SPEC = """
[run]
output = "out"

[reader]
stage = "files"
paths = ["data"]

[[sinks]]
stage = "parquet"
path = "out/table"
"""


@pytest.fixture
def runtime(tmp_path):
    """A runtime directory of the test's own, and every keeper started in it stopped after."""
    d = tmp_path / "rt"
    yield d
    state = d / "local-ray.json"
    if state.exists():
        pid = json.loads(state.read_text())["pid"]
        os.kill(pid, signal.SIGKILL)


def project(root: Path, files: dict[str, str]) -> Path:
    """A directory with a spec whose paths are relative to it (they resolve in the workers)."""
    root.mkdir(parents=True)
    (root / "data").mkdir()
    for name, text in files.items():
        (root / "data" / name).write_text(text)
    (root / "spec.toml").write_text(SPEC)
    return root


def hpcprep_run(where: Path, runtime: Path, keep: float, **env) -> str:
    res = subprocess.run(
        [HPCPREP, "run", "spec.toml", "--overwrite", "--keep-ray", str(keep)],
        cwd=where,
        env={**os.environ, "HPCPREP_RUNTIME_DIR": str(runtime), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stderr


def contents(where: Path) -> dict[str, bytes]:
    table = pq.read_table(where / "out" / "table")
    return {Path(p).name: bytes(d) for p, d in zip(table["path"].to_pylist(), table["bytes"].to_pylist())}


def keeper(runtime: Path) -> int:
    return json.loads((runtime / "local-ray.json").read_text())["pid"]


def titled(pids, prefix: str) -> set[int]:
    """The processes among ``pids`` whose title starts with ``prefix``."""
    out = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode().startswith(prefix):
                out.add(pid)
        except OSError:
            continue
    return out


def wait_gone(pids, seconds=30.0, still=None) -> list[int]:
    """The processes among ``pids`` still alive (or for which ``still`` holds) after up to ``seconds``."""
    still = still or alive
    deadline = time.time() + seconds
    while any(still(p) for p in pids) and time.time() < deadline:
        time.sleep(0.2)
    return [p for p in pids if still(p)]


def test_the_next_command_joins_the_kept_ray_and_stop_ends_it(tmp_path, runtime):
    a = project(tmp_path / "a", {"x.txt": "first", "y.txt": "second"})
    first = hpcprep_run(a, runtime, 120)
    assert "started a local Ray; kept 120 s after the run" in first
    pid = keeper(runtime)
    ray_procs = descendants(pid)
    assert len(ray_procs) >= 3  # gcs_server, raylet, agents...
    assert contents(a) == {"x.txt": b"first", "y.txt": b"second"}
    books = titled(descendants(pid), "ray::RunStats")
    assert len(books) == 1  # the run's books actor stays for the next command

    (a / "data" / "z.txt").write_text("third")
    second = hpcprep_run(a, runtime, 120)
    # (the keeper runs it where it is ready: tests/core/test_hosted_runs.py)
    assert "joined the local Ray kept by an earlier command" in second or "run by the keeper" in second
    assert keeper(runtime) == pid
    assert titled(descendants(pid), "ray::RunStats") == books  # reused, not started again
    assert contents(a) == {"x.txt": b"first", "y.txt": b"second", "z.txt": b"third"}
    manifest = json.loads((a / "out" / "manifest.json").read_text())
    assert manifest["counts"]["balanced"] and manifest["counts"]["outputs"] == 3

    status = subprocess.run(
        [HPCPREP, "local-ray", "status", "--json"],
        env={**os.environ, "HPCPREP_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(status.stdout)
    assert info["pid"] == pid and info["in_use"] is False and "token" not in info
    stop = subprocess.run(
        [HPCPREP, "local-ray", "stop"],
        env={**os.environ, "HPCPREP_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"process {pid}" in stop.stdout
    assert not wait_gone({pid} | ray_procs), "the kept Ray's processes outlived 'hpcprep local-ray stop'"
    assert not (runtime / "local-ray.json").exists()


def test_another_directory_or_environment_gets_a_ray_of_its_own(tmp_path, runtime):
    """Workers take their working directory and environment from whoever started Ray, so
    a command from another directory must not join: its relative paths would resolve
    against the first one's (here they name different files)."""
    a = project(tmp_path / "a", {"x.txt": "from a"})
    b = project(tmp_path / "b", {"x.txt": "from b"})
    hpcprep_run(a, runtime, 120)
    first = keeper(runtime)
    out = hpcprep_run(b, runtime, 120)
    assert "replacing it" in out
    assert not wait_gone({first}), "the replaced keeper is still alive"
    assert keeper(runtime) != first
    assert contents(b) == {"x.txt": b"from b"}

    second = keeper(runtime)
    out = hpcprep_run(b, runtime, 120, HPCPREP_TEST_SETTING="changed")
    assert "replacing it" in out and keeper(runtime) != second


def test_a_busy_kept_ray_that_differs_is_left_alone(tmp_path, runtime, monkeypatch):
    """A run holds the kept Ray (its shared lock): a command that differs starts its own
    Ray instead of stopping the busy one."""
    a = project(tmp_path / "a", {"x.txt": "a"})
    hpcprep_run(a, runtime, 120)
    pid = keeper(runtime)
    fd = os.open(runtime / "local-ray.use", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_SH)  # as a run in progress does
    try:
        monkeypatch.setenv("HPCPREP_RUNTIME_DIR", str(runtime))
        monkeypatch.setenv("HPCPREP_TEST_SETTING", "another")
        said = []
        assert local_ray.join(2, 60, said.append) is None
        assert "busy" in said[0]
        assert keeper(runtime) == pid and alive(pid)
    finally:
        os.close(fd)


def test_an_idle_kept_ray_stops_by_itself(tmp_path, runtime):
    a = project(tmp_path / "a", {"x.txt": "a"})
    hpcprep_run(a, runtime, 2)
    pid = keeper(runtime)
    procs = {pid} | descendants(pid)
    assert not wait_gone(procs, 40), "the kept Ray did not stop after 2 idle seconds"
    assert not (runtime / "local-ray.json").exists()


def test_a_killed_keeper_takes_its_ray_along(tmp_path, runtime):
    a = project(tmp_path / "a", {"x.txt": "a"})
    hpcprep_run(a, runtime, 120)
    pid = keeper(runtime)
    procs = descendants(pid)
    os.kill(pid, signal.SIGKILL)
    assert not wait_gone(procs, 30), "Ray's processes outlived their killed keeper"
    out = hpcprep_run(a, runtime, 120)
    assert "started a local Ray" in out and keeper(runtime) != pid


def test_keep_seconds_reads_the_option_then_the_environment(monkeypatch):
    monkeypatch.delenv("HPCPREP_KEEP_RAY", raising=False)
    assert local_ray.keep_seconds(None) == local_ray.DEFAULT_KEEP_SECONDS
    assert local_ray.keep_seconds(0) == 0
    monkeypatch.setenv("HPCPREP_KEEP_RAY", "45")
    assert local_ray.keep_seconds(None) == 45 and local_ray.keep_seconds(10) == 10
    monkeypatch.setenv("HPCPREP_KEEP_RAY", "soon")
    with pytest.raises(ValueError, match="HPCPREP_KEEP_RAY"):
        local_ray.keep_seconds(None)


KILLED_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import hpcprep
from core import sample_plugin
out = {out!r}
spec = {{
    "run": {{"output": out, "commit_seconds": 2.0}},
    "reader": {{"stage": "test.numbers", "items": 24, "rows": 500, "batch_rows": 500}},
    "encoders": [{{"stage": "test.slow", "seconds": 0.25}}],
    "sinks": [{{"stage": "parquet", "path": out + "/table"}}],
}}
hpcprep.run(spec, plugins=[sample_plugin], resume="--resume" in sys.argv, keep_ray=120, progress=False)
"""

# Ray Data's detached actors, which outlive any job (the job that first needs one creates it).
DETACHED = ("ray::_StatsActor", "ray::_AutoscalingCoordinator", "ray::ActorLocationTracker")
# Those, Ray's own processes on a node and the RunStats actor the commands on a kept Ray share.
NOT_OF_A_JOB = ("ray::DashboardAgent", "ray::RuntimeEnvAgent", *DETACHED, "ray::IDLE", "ray::RunStats")


def title(pid: int) -> str:
    """A process's command line, as ``ps`` shows it (Ray names its workers ``ray::...``)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"{pid} (gone)"


def workers(pids) -> set[int]:
    """Processes among ``pids`` that run a job's tasks or actors."""
    return {pid for pid in pids if (t := title(pid)).startswith("ray::") and not t.startswith(NOT_OF_A_JOB)}


def test_a_run_killed_on_a_kept_ray_leaves_no_worker_and_resumes_there(tmp_path, runtime):
    out = tmp_path / "run"
    script = tmp_path / "run.py"
    script.write_text(KILLED_SCRIPT.format(tests=str(Path(__file__).parents[1]), out=str(out)))
    env = {**os.environ, "HPCPREP_RUNTIME_DIR": str(runtime)}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    commits = out / "_state" / "commits.jsonl"
    deadline = time.time() + 240
    seen = set()
    while not (commits.exists() and commits.read_text().strip()):
        assert driver.poll() is None, "the run ended before its first commit"
        assert time.time() < deadline, "no commit"
        if (runtime / "local-ray.json").exists():
            seen |= workers(descendants(keeper(runtime)))
        time.sleep(0.2)
    pid = keeper(runtime)
    seen |= workers(descendants(pid))
    assert seen, "no worker of the run was seen under the keeper"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    # Ray reaps a dead driver's workers within seconds; on a loaded machine (the suite's other worker
    # busy on both cores) one of them once took longer than 30 s, so the limit is a minute. A worker the
    # run used may since host one of Ray Data's detached actors, which the run's driver created: that one
    # is meant to stay.
    left = wait_gone(seen, 60, still=lambda p: alive(p) and not title(p).startswith(DETACHED))
    assert not left, f"workers of the killed run outlived it: {[title(p) for p in left]}"
    assert alive(pid) and keeper(runtime) == pid

    subprocess.run([sys.executable, str(script), "--resume"], env=env, check=True, timeout=300)
    assert keeper(runtime) == pid  # resumed on the same kept Ray
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["balanced"]
    table = pq.read_table(out / "table").sort_by("x")
    assert table["x"].to_pylist() == list(range(24 * 500))
    assert table["y"].to_pylist() == list(range(1, 24 * 500 + 1))


def test_a_kept_ray_that_lost_its_raylet_is_not_joined(tmp_path, runtime):
    a = project(tmp_path / "a", {"x.txt": "a"})
    hpcprep_run(a, runtime, 120)
    pid = keeper(runtime)
    raylet = [p for p in descendants(pid) if b"raylet/raylet" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(raylet) == 1
    os.kill(raylet[0], signal.SIGKILL)
    assert not wait_gone({pid}, 30), "the keeper of a Ray without its raylet did not stop"
    out = hpcprep_run(a, runtime, 120)
    assert "started a local Ray" in out and keeper(runtime) != pid
    assert contents(a) == {"x.txt": b"a"}
