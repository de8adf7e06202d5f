"""The warm-up of a run's first worker (``hpcprep.warm_workers``): the run's first task
runs in the process that imported the stages' modules, not in a second one started
beside it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap


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
                return os.getpid(), "hpcprep_genomics.encoders" in sys.modules, "ray.data" in sys.modules

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
    assert got["plugin"] and got["ray_data"]  # a module that is not there is left to the run to report
