"""Starting and stopping a local Ray in this process, the way hpcprep does.

Used by a command's own Ray (``ray_connection``) and by the keeper of a kept one
(``local_ray``): what Ray is started with, which of its head services are left out, and a
shutdown that does not wait on a monitor the GCS can no longer hear.
"""

from __future__ import annotations

import contextlib
import os

# Ray keeps about one idle worker process per CPU and kills the rest after one idle
# second. Write tasks take no CPU slot, so their workers sit above that limit: between
# two blocks the worker was killed and the next block paid for a new Python process
# (about a CPU-second of imports each, a tenth of a 2-core machine's time on the runner
# benchmark). On a Ray we start, idle workers live for a minute instead.
LOCAL_RAY_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": 60_000}


def start_local_ray(num_cpus: int | None = None, runtime_env: dict | None = None):
    """Start a local Ray in this process the way hpcprep does: ``num_cpus`` (default: all),
    no dashboard, worker logs kept out of the terminal, this job's ``runtime_env``. Returns the watcher that stops
    Ray's processes should this process die without ``ray.shutdown()`` (see ``reaper``);
    terminate it after shutting Ray down."""
    import ray

    from . import reaper

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    before = reaper.children_of(os.getpid())
    with _head_without_unused_services():
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            log_to_driver=False,
            _system_config=LOCAL_RAY_SYSTEM_CONFIG,
            runtime_env=runtime_env,
        )
    return reaper.start(reaper.children_of(os.getpid()) - before)


#: The head services a local Ray of hpcprep never uses: the API server that ``ray.init``
#: starts even without a dashboard (then serving only usage statistics, which are off)
#: and waits for, the autoscaler's monitor (one machine has nothing to scale), and the
#: log monitor (worker output is not sent to the driver).
UNUSED_HEAD_SERVICES = ("dashboard", "monitor", "log_monitor")


@contextlib.contextmanager
def _head_without_unused_services():
    """While ``ray.init`` starts a head node, leave out ``UNUSED_HEAD_SERVICES``. Each is a
    Python process importing Ray, and ``ray.init`` starts them before the raylet, the API
    server's before the raylet and waiting for it: on 2 cores they made ``ray.init``
    1-2 s longer, and ``ray.shutdown`` gave each a second to exit. Ray offers no
    option for it, so its node class is swapped for one that skips them for as long as
    ``ray.init`` runs; where a Ray version lacks what is changed, Ray starts as it would."""
    from ray._private import node as ray_node

    base = getattr(ray_node, "Node", None)
    if base is None or not hasattr(base, "start_api_server"):
        yield
        return

    class HeadWithoutUnusedServices(base):
        def __init__(self, ray_params, *args, head=False, **kwargs):
            if head:
                ray_params.no_monitor = True
                ray_params.include_log_monitor = False
            super().__init__(ray_params, *args, head=head, **kwargs)

        def start_api_server(self, *_args, **_kwargs):
            pass

    ray_node.Node = HeadWithoutUnusedServices
    try:
        yield
    finally:
        ray_node.Node = base


def shutdown_ray() -> None:
    """``ray.shutdown()``, a second sooner where this process started a Ray with its autoscaler
    monitor (``start_local_ray`` leaves it out; a Ray version it cannot change, or Ray's own
    ``ray.init``, starts it). Ray stops its processes one after another, each given a second
    to exit after SIGTERM; by the time the monitor is told, the GCS is gone, and the monitor
    spends that whole second trying to report its own end there (1.0 of the 1.4 s a shutdown
    took on 2 cores). A local Ray has nothing to scale, so the monitor is killed outright first."""
    import ray
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    for info in getattr(node, "all_processes", {}).get(ray_constants.PROCESS_TYPE_MONITOR, []):
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait(timeout=5)
    ray.shutdown()
