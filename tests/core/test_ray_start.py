"""How hpcprep starts and stops a local Ray in its own process (``hpcprep.ray_start``);
each test in a Python process of its own, with a Ray of its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from hpcprep import ray_start

from tests.core.test_local_ray import wait_gone


def script_output(script: str, cwd: Path) -> dict:
    """Run ``script`` in a Python process of its own (a Ray of its own); the JSON it prints last."""
    res = subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


LEAN_HEAD_SCRIPT = """
import json, os
import ray
import ray.data
from ray._private import worker
from hpcprep import ray_start, reaper

watcher = ray_start.start_local_ray(2)
started = sorted(worker._global_node.all_processes)
pids = reaper.descendants(os.getpid()) - {watcher.pid}
cmdlines = [open(f"/proc/{p}/cmdline", "rb").read().replace(b"\\0", b" ").decode() for p in pids]
squares = ray.data.range(100, override_num_blocks=4).map_batches(lambda b: {"id": b["id"] ** 2}).sum("id")
ray_start.shutdown_ray()
watcher.terminate()
print(json.dumps({"started": started, "cmdlines": cmdlines, "squares": int(squares), "pids": sorted(pids)}))
"""


def test_the_local_ray_runs_without_the_head_services_it_never_uses(tmp_path):
    """No API server, autoscaler monitor or log monitor on hpcprep's local Ray (each a
    Python process importing Ray that held back ``ray.init`` on 2 cores); Ray Data runs
    without them, and shutting down leaves no process behind."""
    out = script_output(LEAN_HEAD_SCRIPT, tmp_path)
    assert {"gcs_server", "raylet"} <= set(out["started"])
    assert not set(ray_start.UNUSED_HEAD_SERVICES) & set(out["started"])
    scripts = {Path(word).name for line in out["cmdlines"] for word in line.split()}
    assert not scripts & {"dashboard.py", "monitor.py", "log_monitor.py"}, out["cmdlines"]
    assert out["squares"] == sum(i * i for i in range(100))
    assert not wait_gone(out["pids"], 30), "Ray's processes outlived shutdown_ray()"


SHUTDOWN_SCRIPT = """
import json, os
import ray
from ray._private import worker
from hpcprep import ray_start, reaper

before = reaper.descendants(os.getpid())
ray.init(num_cpus=2, include_dashboard=False)  # Ray's own start, with its monitor
monitor = worker._global_node.all_processes["monitor"][0].process
pids = reaper.descendants(os.getpid()) - before
seen = {}
real = ray.shutdown
def shutdown(*args, **kwargs):
    seen["monitor_alive"] = monitor.poll() is None
    real(*args, **kwargs)
ray.shutdown = shutdown
ray_start.shutdown_ray()
print(json.dumps({"monitor_alive": seen["monitor_alive"], "monitor_code": monitor.returncode, "pids": sorted(pids)}))
"""


def test_shutdown_kills_the_autoscaler_monitor_before_ray_stops_the_rest(tmp_path):
    """Where a Ray started in this process has its autoscaler monitor (Ray's own start),
    Ray stops its processes one by one with a second each; the monitor would use that
    whole second trying to reach the GCS already stopped. shutdown_ray kills it first."""
    out = script_output(SHUTDOWN_SCRIPT, tmp_path)
    assert out["monitor_alive"] is False and out["monitor_code"] == -signal.SIGKILL
    assert len(out["pids"]) >= 4  # gcs_server, raylet, monitor, log monitor, agents...
    assert not wait_gone(out["pids"], 30), "Ray's processes outlived shutdown_ray()"
