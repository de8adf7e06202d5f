"""Shared fixtures: one local Ray with two CPUs for the whole session."""

from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# `hpcprep run` commands the tests start stop their Ray when they end, as before; the
# tests of the kept local Ray (test_local_ray.py) ask for it.
os.environ["HPCPREP_KEEP_RAY"] = "0"


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 CPUs (≥ 2 workers), shared by every test that runs a pipeline."""
    import ray
    from hpcprep.local_ray import start_local_ray

    watcher = None if ray.is_initialized() else start_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()
    if watcher is not None:
        watcher.terminate()


def require_tool(name: str) -> str:
    """Path of an external tool; skip without it on a user's machine, fail in CI."""
    path = shutil.which(name)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(f"{name} is not installed; `make test` installs it")
    pytest.skip(f"{name} is not installed")
