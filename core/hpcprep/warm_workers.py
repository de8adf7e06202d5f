"""A worker that has imported what the run's tasks need before the first task arrives.

Every command is a new Ray job, and Ray gives each job worker processes of its own: the
first read task of a run waits for a Python process to start and to import Ray Data,
the plugins' modules and the sinks' libraries (about 1.5 s on a 2-core machine, most of
a one-record run). So, where the run's read runs as tasks, one small task does those
imports (with the modules the stages' modules name for first use, ``hpcprep.lazy``) as
soon as the driver is connected, while the driver plans; the driver waits for
it before the first group starts, so that Ray hands the read task to that worker rather
than starting a second one beside it (a task that finds every worker busy gets a new
process). Where a first pool of CPU actors takes the read in (``placement.reads_in_actors``),
there is no warm-up: Ray never hands an actor a worker that has run a task, and the
warm-up's imports would only hold back the actors' own start.

Ray Data's own per-cluster actors are started early too, once the run's placements are
known (``start_ray_data_actors``), so that their start-up is not part of the first
execution's.
"""

from __future__ import annotations

#: The most the driver waits for the warm-up before it starts the run anyway.
WAIT_SECONDS = 10.0


def _import_for_tasks(modules: list[str], hold: float = 0.0) -> int:
    import importlib
    import os
    import sys
    import time

    import hpcprep.execution  # noqa: F401  (Ray Data, Arrow)
    import hpcprep.reading  # noqa: F401

    from .lazy import load_lazy

    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # the run's own tasks report it, with the stage
            pass
    try:
        load_lazy()  # what the stages' modules import on first use (the kernels): the tasks will use it
    except Exception:
        pass
    if hold:
        if "numba" in sys.modules:
            # Numba sets up its compiler on the first call in a process (0.25 s): done here
            # where nobody waits for it
            sys.modules["numba"].njit(lambda: 0)()
        time.sleep(hold)
    return os.getpid()


def start(modules: list[str], hold: float = 0.0):
    """Submit the warm-up importing ``modules`` (the stages' modules); returns its reference.
    With ``hold``, it also readies Numba and then keeps its worker that many seconds, so that
    warm-ups submitted together warm as many workers (the keeper's, ``hosted_runs``)."""
    import ray

    # No CPU slot: it must not wait behind other work, and Ray does not tie a worker
    # process to the resources of the task it ran.
    return ray.remote(num_cpus=0, max_retries=0)(_import_for_tasks).remote(list(modules), hold)


def start_ray_data_actors(actor_pools: bool) -> list:
    """Start the detached actors that Ray Data keeps per cluster now, while the driver
    gets the run ready, and return them: its statistics and its autoscaling coordinator,
    which every execution uses, and with ``actor_pools`` the tracker of its actors'
    locations. Ray Data would start them with its first execution, where their processes
    (each importing Ray Data, about a CPU-second) compete for the CPUs with the
    execution's first workers; it finds them by name. They are Ray Data's internals: a
    version that moves them gets none started here (the test of this says so)."""
    try:
        from ray.data._internal.cluster_autoscaler.default_autoscaling_coordinator import (
            get_or_create_autoscaling_coordinator,
        )
        from ray.data._internal.execution.node_trackers import get_or_create_actor_location_tracker
        from ray.data._internal.stats import get_or_create_stats_actor
    except ImportError:
        return []
    started = [get_or_create_stats_actor(), get_or_create_autoscaling_coordinator()]
    if actor_pools:
        started.append(get_or_create_actor_location_tracker())
    return started


def wait(ref, timeout: float = WAIT_SECONDS) -> int | None:
    """Import the driver's own side of Ray Data (which it needs next, and which takes
    about half a second), then wait for the warm-up; returns the warm worker's process
    id. A failed or slow warm-up is left alone (the run's own tasks report any import
    error with its stage)."""
    import ray
    import ray.data  # noqa: F401

    from . import execution, reading  # noqa: F401

    if ref is None:
        return None
    ready, _ = ray.wait([ref], timeout=timeout)
    if not ready:
        ray.cancel(ref, force=True)
        return None
    try:
        return ray.get(ref)
    except Exception:
        return None
