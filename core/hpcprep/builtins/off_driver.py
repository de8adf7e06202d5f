"""Work a sink does once at the end of a run over everything it wrote (compacting a table,
building an index, loading a feature store) goes to a Ray task, not the driver: the driver
is a login node on a cluster and should not hold a whole table."""

from __future__ import annotations


def run_off_driver(fn, *args):
    """``fn(*args)`` in a Ray task of no CPU when Ray is up (the run's workers are done by
    then), else here."""
    import ray

    if not ray.is_initialized():
        return fn(*args)
    return ray.get(ray.remote(num_cpus=0)(fn).remote(*args))
