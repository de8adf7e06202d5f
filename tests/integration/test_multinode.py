"""hpcprep on a three-node Ray (real processes, token authentication on): the run
spreads over every node, the manifest has per-node figures, a worker node killed mid-run
costs nothing (Parquet and LanceDB outputs alike), and a cluster whose nodes cannot see the run directory or lack the
plugins' versions is refused before anything runs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .ray_nodes import RayNodes

ITEMS, ROWS = 30, 2_000
DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import hpcprep
from core import sample_plugin
out = {out!r}
spec = {{
    "run": {{"output": out}},
    "reader": {{"stage": "test.numbers", "items": {items}, "rows": {rows}, "batch_rows": 500}},
    "encoders": [{{"stage": "test.slow", "seconds": 0.25}}],
    "sinks": [
        {{"stage": "parquet", "path": out + "/table"}},
        {{"stage": "lancedb", "uri": out + "/lance", "table": "numbers"}},
    ],
}}
hpcprep.run(spec, plugins=[sample_plugin], address=sys.argv[1], progress=True)
"""


@pytest.fixture
def nodes():
    cluster = RayNodes()
    try:
        yield cluster
    finally:
        cluster.stop()


def test_a_worker_node_killed_mid_run_costs_nothing(tmp_path, nodes):
    nodes.start_head()
    workers = [nodes.add_worker(), nodes.add_worker()]
    nodes.wait_for(3)

    spec = tmp_path / "plan.toml"
    spec.write_text(
        f'[run]\noutput = "{tmp_path}/p"\n[reader]\nstage = "files"\npaths = ["{spec}"]\n[[sinks]]\nstage = "parquet"\npath = "{tmp_path}/p/t"\n'
    )
    hpcprep = str(Path(sys.executable).with_name("hpcprep"))
    plan = subprocess.run(
        [hpcprep, "plan", str(spec), "--address", nodes.address], env=nodes.env, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "3 CPU, 0 GPU, 3 node(s)" in plan.stdout
    assert plan.stdout.count(": 1 CPU, 0 GPU") == 3  # one line per node

    out = tmp_path / "run"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(tests=str(Path(__file__).parents[1]), out=str(out), items=ITEMS, rows=ROWS))
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, str(script), nodes.address], env=nodes.env, stdout=log, stderr=log)
    commits = out / "_state" / "commits.jsonl"
    deadline = time.time() + 180
    while not (commits.exists() and commits.read_text().strip()):
        assert driver.poll() is None, (tmp_path / "driver.log").read_text()[-3000:]
        assert time.time() < deadline, "no commit group finished"
        time.sleep(0.2)
    time.sleep(2)  # into the next group, with tasks on every node
    killed = nodes.kill_node(workers[0])
    assert len(killed) >= 2
    assert driver.wait(timeout=300) == 0, (tmp_path / "driver.log").read_text()[-3000:]

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["counts"]["balanced"]
    assert manifest["counts"]["outputs"] == ITEMS * ROWS
    table = pq.read_table(out / "table").sort_by("x")
    assert table["x"].to_pylist() == list(range(ITEMS * ROWS))  # every record once
    assert table["y"].to_pylist() == list(range(1, ITEMS * ROWS + 1))

    import lancedb

    lance = lancedb.connect(str(out / "lance")).open_table("numbers").to_arrow().sort_by("x")
    assert lance["x"].to_pylist() == list(range(ITEMS * ROWS))

    rows = manifest["nodes"]
    assert len(rows) == 3 and all(r["cpus"] == 1 for r in rows)
    assert sum(r["rows_read"] for r in rows) == ITEMS * ROWS
    assert sum(r["rows_written"] for r in rows) == ITEMS * ROWS
    busy = [r for r in rows if r["rows_written"] > 0]
    assert len(busy) >= 2, rows  # the work spread over the nodes


def test_a_cluster_that_cannot_run_the_spec_is_refused(tmp_path, nodes):
    """One worker node sees an empty file system where the run directory is (its own
    tmpfs, as a node-local /scratch would be) and has another hpcprep-genomics."""
    shared = tmp_path / "shared"
    shared.mkdir()
    fake = tmp_path / "fake-site"
    dist = fake / "hpcprep_genomics-9.9.9.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hpcprep-genomics\nVersion: 9.9.9\n")
    nodes.start_head()
    unshare = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount -t tmpfs none "{shared}" && exec "$0" "$@"',
    ]
    nodes.add_worker(prefix=unshare, extra_env={"PYTHONPATH": str(fake)})
    nodes.wait_for(2)

    fasta = tmp_path / "a.fa"
    fasta.write_text(">a\nACGTACGTAC\n")
    spec = tmp_path / "spec.toml"
    out = shared / "run"
    hpcprep = str(Path(sys.executable).with_name("hpcprep"))
    spec.write_text(
        f'[run]\noutput = "{out}"\n[reader]\nstage = "genomics.fasta"\npaths = ["{fasta}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{out}/table"\n'
    )
    t = time.time()
    res = subprocess.run(
        [hpcprep, "run", str(spec), "--address", nodes.address],
        env=nodes.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 1, res.stderr[-3000:]
    assert "the cluster cannot run this spec" in res.stderr
    assert f"run.output {out} is not shared with node" in res.stderr
    assert "has hpcprep-genomics 9.9.9, the driver has" in res.stderr
    assert not (out / "table").exists() and not (out / "manifest.json").exists()
    assert time.time() - t < 120
