"""Shared fixtures: one local Ray with two CPUs for the whole session."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from typing import NoReturn

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# `hpcprep run` commands the tests start stop their Ray when they end, as before; the
# tests of the kept local Ray (test_local_ray.py) ask for it.
os.environ["HPCPREP_KEEP_RAY"] = "0"
# The CUDA variants of the kernels run under Numba's CUDA simulator (no GPU needed, so in
# CI too), in this process and in the Ray workers it starts; HPCPREP_TEST_CUDA=device runs
# the same tests on the machine's GPU instead.
CUDA_TARGET = os.environ.get("HPCPREP_TEST_CUDA", "simulator")
if CUDA_TARGET == "simulator":
    os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
    if "numba" in sys.modules:  # numba reads its settings once, when first imported
        from numba.core import config as _numba_config

        _numba_config.reload_config()


# `make test` runs the suite in two pytest-xdist workers, a test file at a time per worker (the scheduler
# below), so module fixtures such as the Slurm cluster or the OpenFOAM cases are built once. These files run
# one after another in one worker: they start and kill keepers, drivers, workers and nodes and wait on idle
# timeouts, so two of them at once would only slow each other past their waits.
SERIAL_FILES = {
    "test_driver_killed.py",
    "test_fault_tolerance.py",
    "test_hosted_runs.py",
    "test_local_ray.py",
    "test_multinode.py",
}


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown, and unused, without it
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        """Work units of whole test files (all of ``SERIAL_FILES`` one unit)."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "serial" if path.rsplit("/", 1)[-1] in SERIAL_FILES else path

    return ByFile(config, log)


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray with 2 CPUs (≥ 2 workers), shared by every test that runs a pipeline."""
    import ray
    from hpcprep.ray_start import shutdown_ray, start_local_ray

    watcher = None if ray.is_initialized() else start_local_ray(num_cpus=2)
    yield ray
    shutdown_ray()
    if watcher is not None:
        watcher.terminate()


def unavailable(message: str) -> NoReturn:
    """Something a test needs is missing: skip on a user's machine, fail in CI, where `make test` provides
    every tool, package and data file the tests use. Works inside a test and at a module's top."""
    __tracebackhide__ = True  # reports name the test's line, not this one
    if os.environ.get("CI"):
        pytest.fail(f"{message}; `make test` provides it", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_tool(name: str) -> str:
    """Path of an external tool (see :func:`unavailable`)."""
    __tracebackhide__ = True
    path = shutil.which(name)
    if path:
        return path
    unavailable(f"{name} is not installed")


def require_module(name: str):
    """An importable module a test needs, such as a reference tool's bindings (see :func:`unavailable`)."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"Python module {name} cannot be imported ({exc})")


def require_cuda():
    """``numba.cuda``, on the simulator or, with HPCPREP_TEST_CUDA=device, on a real GPU
    (skipped where there is none: no CI machine has one)."""
    __tracebackhide__ = True
    cuda = require_module("numba.cuda")
    if CUDA_TARGET == "device" and not cuda.is_available():
        pytest.skip("HPCPREP_TEST_CUDA=device but no CUDA device here")
    return cuda


def encode_on_both_variants(cls, params: dict, batch) -> tuple[dict, dict]:
    """``(cpu columns, cuda columns)`` of a stage's ``encode`` on ``batch``, each variant set up as a
    worker sets it up; both return the same column names."""
    columns = []
    for variant in ("cpu", "cuda"):
        stage = cls(params)
        stage.variant = variant
        stage.setup()
        columns.append(stage.encode(batch))
    assert columns[0].keys() == columns[1].keys()
    return columns[0], columns[1]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: Credentials of the S3 server on loopback (moto accepts any; the tests check they are never logged).
S3_KEY, S3_SECRET = "testing-key", "testing-secret-value"


@pytest.fixture(scope="session")
def s3_server():
    """An S3 endpoint on loopback (moto's server) for the whole session: its URL. Tests make their own buckets
    with :func:`s3_bucket`."""
    require_module("boto3")
    moto_server = require_module("moto.server")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def s3_bucket(endpoint: str, bucket: str) -> dict:
    """Create ``bucket`` on the loopback S3 server; the S3 parameters a spec's stage takes for it."""
    import boto3

    creds = {"endpoint_url": endpoint, "access_key": S3_KEY, "secret_key": S3_SECRET, "region": "us-east-1"}
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY, aws_secret_access_key=S3_SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket=bucket)
    return creds


@pytest.fixture
def redis_server(tmp_path):
    """Debian's redis-server on a free loopback port, in memory only, stopped after the test: ``host:port``."""
    import socket
    import subprocess
    import time

    exe = require_tool("redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)
