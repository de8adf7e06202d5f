"""The driver killed outright (kill -9) at 60 % of a run: no Ray process of the run lives
on, and ``--resume`` redoes at most the commit group that was under way (automatic
groups hold about ``run.commit_seconds`` of work), ending with every record once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
from hpcprep.reaper import alive, descendants

ITEMS, ROWS = 40, 2_000
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import hpcprep
from core import sample_plugin
out = {out!r}
spec = {{
    "run": {{"output": out, "commit_seconds": 3.0, "num_cpus": 2}},
    "reader": {{"stage": "test.numbers", "items": {items}, "rows": {rows}, "batch_rows": 500}},
    "encoders": [{{"stage": "test.slow", "seconds": 0.25}}],
    "sinks": [{{"stage": "parquet", "path": out + "/table"}}],
}}
hpcprep.run(spec, plugins=[sample_plugin], resume="--resume" in sys.argv, progress=False)
"""


def test_driver_killed_at_60_percent_then_resumed(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parents[1]), out=str(out), items=ITEMS, rows=ROWS))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    driver = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True)
    commits = out / "_state" / "commits.jsonl"
    done, ray_procs = 0, set()
    deadline = time.time() + 240
    while done < 0.6 * ITEMS:
        assert driver.poll() is None, "the run ended before 60 % of it was committed"
        assert time.time() < deadline, "no progress"
        ray_procs |= descendants(driver.pid)
        if commits.exists():
            done = max((json.loads(x)["inputs"][1] for x in commits.read_text().splitlines() if x), default=0)
        time.sleep(0.2)
    running = json.loads((out / "_state" / "running.json").read_text())
    ray_procs |= descendants(driver.pid)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()

    assert len(ray_procs) >= 3  # gcs_server, raylet, workers...
    deadline = time.time() + 20
    while any(alive(p) for p in ray_procs) and time.time() < deadline:
        time.sleep(0.5)
    left = [p for p in ray_procs if alive(p)]
    assert not left, f"Ray processes of the killed run still alive: {left}"

    # what the kill cost: the group under way, a few seconds of work (1 s per input on 2 CPUs)
    start, end = running["inputs"]
    assert start == done and end - start <= 12

    subprocess.run([sys.executable, str(script), "--resume"], env=env, check=True, timeout=300)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["balanced"]
    assert manifest["counts"]["outputs"] == ITEMS * ROWS
    lines = [json.loads(x) for x in commits.read_text().splitlines() if x]
    assert [rec["inputs"] for rec in lines] == sorted(rec["inputs"] for rec in lines)
    assert lines[0]["inputs"][0] == 0 and all(a["inputs"][1] == b["inputs"][0] for a, b in zip(lines, lines[1:]))
    resumed = [rec for rec in lines if rec["attempt"] != lines[0]["attempt"]]
    assert resumed[0]["inputs"][0] == done
    table = pq.read_table(out / "table").sort_by("x")
    assert table["x"].to_pylist() == list(range(ITEMS * ROWS))
    assert table["y"].to_pylist() == list(range(1, ITEMS * ROWS + 1))
