"""Kill a run midway, resume it, and end with the same outputs as an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.runner import RunError
from hpcprep.testing import interrupted_run

from . import sample_plugin

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
sys.path.insert(0, {root!r})
import hpcprep
from tests.core import sample_plugin
hpcprep.run({spec!r}, plugins=[sample_plugin], progress=True)
"""


def spec_for(tmp_path, out):
    data = tmp_path / "data"
    if not data.exists():
        data.mkdir()
        for i in range(12):
            (data / f"f{i:02d}.txt").write_text(f"line {i}\n" * (i + 1) + ("POISON\n" if i == 5 else ""))
    return {
        "run": {"output": str(out), "commit_every": 2},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.count", "sleep": 0.4}],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rows(out: Path):
    t = pq.read_table(out / "table")
    return sorted(zip(t["record_id"].to_pylist(), t["source"].to_pylist(), t["n"].to_pylist()))


def error_rows(out: Path):
    from hpcprep.errors_table import read_errors

    return sorted((e["record_id"], e["stage"], e["message"]) for e in read_errors(str(out)).to_pylist())


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, ray_local):
    killed = tmp_path / "killed"
    spec = spec_for(tmp_path, killed)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(root=str(ROOT), spec=spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    commits = killed / "_state" / "commits.jsonl"
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if commits.exists() and len(commits.read_text().splitlines()) >= 2:
                break
            if proc.poll() is not None:
                pytest.fail("the run ended before it could be interrupted:\n" + proc.stdout.read().decode()[-3000:])
            time.sleep(0.2)
        else:
            pytest.fail("no commit group finished in time")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray it started
        proc.wait()
    committed_before = len(commits.read_text().splitlines())
    assert 2 <= committed_before < 6, "interrupted midway"
    manifest = json.loads((killed / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["finished"] is None
    # Inputs are hashed by the read tasks that read them: the committed groups' inputs have
    # their SHA-256 in the manifest, the rest none yet.
    done = manifest["groups"]["inputs_committed"]
    assert done >= 4
    assert [i["sha256"] for i in manifest["inputs"]] == [sha256(i["source"]) for i in manifest["inputs"][:done]] + [
        None
    ] * (12 - done)

    with pytest.raises(RunError, match="not empty"):
        hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    # groups of another size on resume: commits record the inputs they cover
    bigger = {**spec, "run": {**spec["run"], "commit_every": 3}}
    resumed = hpcprep.run(bigger, plugins=[sample_plugin], progress=False, resume=True)
    assert resumed.manifest["mode"] == "resume" and resumed.manifest["status"] == "complete"
    # the interrupted run's hashes come from its commits, the rest from the resumed run's reads
    assert [i["sha256"] for i in resumed.manifest["inputs"]] == [sha256(i["source"]) for i in manifest["inputs"]]

    clean = tmp_path / "clean"
    whole = hpcprep.run(spec_for(tmp_path, clean), plugins=[sample_plugin], progress=False)

    assert rows(killed) == rows(clean)
    assert len(rows(clean)) == 11
    assert error_rows(killed) == error_rows(clean) and len(error_rows(clean)) == 1
    assert resumed.counts == whole.counts == {"inputs": 12, "outputs": 11, "errors": 1, "balanced": True}
    # Committed groups were not redone: only the rest ran again, in groups of 3.
    lines = [json.loads(x) for x in (killed / "_state" / "commits.jsonl").read_text().splitlines()]
    spans = [r["inputs"] for r in lines]
    assert spans[:committed_before] == [[i, i + 2] for i in range(0, 2 * committed_before, 2)]
    assert spans[committed_before:] == [[i, min(i + 3, 12)] for i in range(2 * committed_before, 12, 3)]
    assert [r["group"] for r in lines] == list(range(len(lines)))


def test_resume_refuses_a_changed_spec(tmp_path, ray_local):
    out = tmp_path / "out"
    spec = spec_for(tmp_path, out)
    spec["encoders"][0]["sleep"] = 0
    interrupted_run(spec, groups=1, plugins=[sample_plugin], progress=False)
    spec["encoders"][0]["k"] = 7
    with pytest.raises(RunError, match="spec or its inputs changed"):
        hpcprep.run(spec, plugins=[sample_plugin], progress=False, resume=True)


def test_group_files_keep_only_what_the_committed_attempt_wrote(tmp_path):
    """The file sinks' resume bookkeeping: a group's files of other attempts go, this attempt's files that no
    writer reported go, everything else (other groups, files hpcprep did not name) stays."""
    import pyarrow.fs as pafs
    from hpcprep.sink_files import GroupFiles
    from hpcprep.stages import SinkContext

    now = SinkContext(run_dir=str(tmp_path), run_name="r", group=3, attempt="a2")
    before = SinkContext(run_dir=str(tmp_path), run_name="r", group=3, attempt="a1")
    other_group = SinkContext(run_dir=str(tmp_path), run_name="r", group=4, attempt="a1")
    names = {
        "old": GroupFiles.name(before, ".jsonl"),
        "kept": GroupFiles.name(now, ".jsonl"),
        "retried": GroupFiles.name(now, ".jsonl"),
        "group4": GroupFiles.name(other_group, ".jsonl"),
        "theirs": "part-g00003-notes.txt",
        "unrelated": "README.md",
    }
    for name in names.values():
        (tmp_path / name).write_text("x")
    files = GroupFiles(pafs.LocalFileSystem(), str(tmp_path))
    assert files.discard_other_attempts(now) == 1
    assert files.keep_only(now, [str(tmp_path / names["kept"])]) == 1
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {names[k] for k in ("kept", "group4", "theirs", "unrelated")}
