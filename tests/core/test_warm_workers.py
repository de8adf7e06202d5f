"""The warm-up of a run's first worker (``hpcprep.warm_workers``): the run's first task
runs in the process that imported the stages' modules, not in a second one started
beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]


def test_the_first_task_runs_in_the_warmed_worker_with_the_plugin_imported(tmp_path):
    # A fresh Ray of its own: in the session's Ray, idle workers of earlier tests could
    # take the task.
    script = tmp_path / "warm.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, os, sys
            import ray
            from hpcprep import warm_workers

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            pid = warm_workers.wait(warm_workers.start(["hpcprep_genomics.encoders", "no_such_module"]))

            @ray.remote(num_cpus=1)
            def first_task():
                loaded = all(m in sys.modules for m in ("hpcprep_genomics.encoders", "hpcprep_genomics.kernels.kmers"))
                return os.getpid(), loaded, "ray.data" in sys.modules

            task_pid, plugin, ray_data = ray.get(first_task.remote())
            print(json.dumps({"warm": pid, "task": task_pid, "plugin": plugin, "ray_data": ray_data}))
            ray.shutdown()
            """
        )
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["warm"] is not None
    assert got["task"] == got["warm"]
    # the stage module and the kernels it names for first use (hpcprep.lazy); a module that is not there is left to
    # the run to report
    assert got["plugin"] and got["ray_data"]


@pytest.mark.parametrize("actor_pools", [False, True])
def test_ray_data_finds_the_actors_started_before_its_first_execution(tmp_path, actor_pools):
    # A fresh Ray of its own: the session's Ray has these actors from earlier tests.
    script = tmp_path / "actors.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json
            import ray, ray.data
            from hpcprep import warm_workers

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            started = warm_workers.start_ray_data_actors(actor_pools={actor_pools})
            ray.get([a.__ray_ready__.remote() for a in started])
            before = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True))

            class AddOne:
                def __call__(self, batch):
                    return {{"id": batch["id"] + 1}}

            def add_one(batch):
                return {{"id": batch["id"] + 1}}

            ds = ray.data.range(100, override_num_blocks=4)
            if {actor_pools}:
                ds = ds.map_batches(AddOne, concurrency=1, num_cpus=1)
            else:
                ds = ds.map_batches(add_one)
            total = sum(row["id"] for row in ds.iter_rows())
            after = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True))
            print(json.dumps({{"started": len(started), "before": before, "after": after, "total": total}}))
            ray.shutdown()
            """
        )
    )
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["total"] == sum(range(1, 101))
    # Ray Data's internals still answer to the names hpcprep starts them under: the
    # execution started none of its own beside them, and none was started that it does
    # not use (the actors' tracker serves actor pools only).
    assert got["started"] == (3 if actor_pools else 2)
    assert got["after"] == got["before"] and len(got["before"]) == got["started"], got


@pytest.mark.parametrize("compute", ["tasks", "actors"])
def test_a_run_warms_a_worker_only_for_a_read_that_runs_as_tasks(tmp_path, compute):
    """With a first pool of CPU actors Ray Data runs the read inside the actors (no task in
    its plan), and the run starts no warm-up; with tasks it warms one worker."""
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            sys.path.insert(0, {str(TESTS)!r})
            import hpcprep
            from hpcprep import warm_workers
            from core import sample_plugin

            warmed = []
            real = warm_workers.start
            warm_workers.start = lambda *a, **k: warmed.append(a) or real(*a, **k)
            spec = {{
                "run": {{"output": {str(out)!r}}},
                "reader": {{"stage": "test.numbers", "items": 4, "rows": 50, "batch_rows": 50}},
                "encoders": [{{"stage": "test.odd", "every": 7, "placement": {{"compute": {compute!r}}}}}],
                "sinks": [{{"stage": "parquet", "path": {str(out / "table")!r}}}],
            }}
            result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
            log = open({str(out / "_logs" / "ray.log")!r}).read().splitlines()
            plans = [line.split("Execution plan", 1)[1] for line in log if "Execution plan" in line]
            print(json.dumps({{"warmed": len(warmed), "plans": plans, "outputs": result.manifest["counts"]["outputs"]}}))
            """
        )
    )
    res = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"},
    )
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["outputs"] + len(range(0, 200, 7)) == 200
    assert got["plans"] and all("Readtest.numbers" in plan for plan in got["plans"])
    if compute == "actors":
        assert got["warmed"] == 0
        assert not any("TaskPoolMapOperator" in plan for plan in got["plans"]), got["plans"]
    else:
        assert got["warmed"] == 1
        assert all("TaskPoolMapOperator[Readtest.numbers" in plan for plan in got["plans"]), got["plans"]
