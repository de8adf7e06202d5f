"""`hpcprep slurm`: the sbatch script it writes, and jobs run on a real Slurm.

The end-to-end tests start munged, slurmctld and slurmd (tests/integration/slurm_cluster.py)
and go through the command line as a person would: `hpcprep slurm SPEC --nodes 1 --submit
--wait` runs a spec to the end, on one node and on two (two slurmd on this machine); a job is cancelled with scancel after
its first commit group, must leave no Ray process behind, and `--resume` then finishes the
run with the same rows as the undisturbed one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.slurm import PORT_RANGE, PORT_SPAN, port_block, stop_leftovers

from tests.conftest import require_tool
from tests.integration.slurm_cluster import SlurmCluster, require_slurm

HPCPREP = str(Path(sys.executable).parent / "hpcprep")
TESTS_CORE = Path(__file__).resolve().parents[1] / "core"  # sample_plugin.py: test.count can sleep
LICENSES = Path("/usr/share/common-licenses")


def write_spec(tmp_path: Path, name: str, encoder: str = "", commit_every: int = 0) -> Path:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(f"""\
[run]
name = "{name}"
output = "{tmp_path}/{name}"
commit_every = {commit_every}

[reader]
stage = "files"
paths = ["{LICENSES}"]
{encoder}
[[sinks]]
stage = "parquet"
path = "{tmp_path}/{name}/table"
""")
    return spec


# -- the script, without Slurm -------------------------------------------------------


def render(tmp_path: Path, *args: str) -> str:
    spec = write_spec(tmp_path, "lic")
    result = CliRunner().invoke(cli, ["slurm", str(spec), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_script_directives_and_settings(tmp_path):
    script = render(
        tmp_path, "--nodes", "3", "--cpus-per-node", "8", "--gpus-per-node", "2", "--partition", "gpu",
        "--time", "01:30:00", "--account", "proj1", "--setup", "module load python/3.12",
        "--set", "run.commit_every=5",
    )  # fmt: skip
    directives = re.findall(r"^#SBATCH (\S+)$", script, re.M)
    assert directives == [
        "--job-name=hpcprep-lic",
        "--nodes=3",
        "--ntasks-per-node=1",
        "--cpus-per-task=8",
        "--gpus-per-node=2",
        "--partition=gpu",
        "--time=01:30:00",
        "--account=proj1",
        f"--chdir={Path.cwd()}",
        f"--output={tmp_path}/lic.slurm/job-%j.log",
        "--signal=B:TERM@60",
    ]
    assert f"SPEC={tmp_path}/lic.toml\n" in script
    assert f"RUN_DIR={tmp_path}/lic " in script
    assert "RUN_ARGS=(--set run.commit_every=5)" in script
    assert "GPUS_PER_NODE=2\n" in script
    # --setup runs before anything of the job's own.
    assert script.index("module load python/3.12") < script.index("scontrol show hostnames")
    # One Ray head on the first node, the other nodes join it, then the driver.
    assert re.search(r'srun --nodes=1 --ntasks=1 .*-w "\$HEAD_NODE" \\\n\s+ray start --head ', script)
    assert 'exec ray start --address="$HEAD_ADDR"' in script
    assert 'hpcprep run "$SPEC" --address "$HEAD_ADDR" $RESUME "${RUN_ARGS[@]}" &' in script
    # Ray on node-local disk, and stopped on every exit path.
    assert "RAY_TMP=${TMPDIR:-/tmp}/hpcprep-ray-$SLURM_JOB_ID" in script
    assert "trap 'stop_ray; exit 143' TERM INT" in script
    assert "trap stop_ray EXIT" in script
    assert 'scancel --signal=TERM "$SLURM_JOB_ID"' in script
    assert "ray stop" not in script.replace("`ray stop`", "")  # it would stop other jobs' Ray too
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_script_passes_shellcheck(tmp_path):
    shellcheck = require_tool("shellcheck")
    for args in (["--nodes", "1"], ["--nodes", "4", "--cpus-per-node", "16", "--setup", "module load x", "--resume"]):
        script = render(tmp_path, *args)
        result = subprocess.run([shellcheck, "-s", "bash", "-S", "warning", "-"], input=script, text=True,
                                capture_output=True)  # fmt: skip
        assert result.returncode == 0, result.stdout


def test_script_keeps_token_auth_on(tmp_path):
    script = render(tmp_path, "--nodes", "1")
    assert "export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$JOB_DIR/ray-token" in script
    assert "unset RAY_AUTH_TOKEN" in script
    assert "secrets.token_hex(32)" in script
    assert "umask 077" in script and 'chmod 700 "$JOB_DIR"' in script
    assert "disabled" not in script.lower().replace("--include-dashboard=false", "")
    # Whole nodes unless CPUs per node are given.
    assert "#SBATCH --exclusive" in script and "--cpus-per-task=" not in "".join(re.findall("^#SBATCH.*", script))
    assert "RESUME=  " in script  # decided by the job: only if the run directory holds an interrupted run
    assert "RESUME=--resume" in render(tmp_path, "--nodes", "1", "--resume")


def test_ports_differ_between_jobs_and_skip_busy_blocks():
    def ports(job_id: int) -> int:
        out = subprocess.run([sys.executable, "-m", "hpcprep.slurm", "ports", str(job_id)], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return int(out.stdout)

    a, b = ports(41001), ports(41002)
    assert a != b
    for base in (a, b):
        assert PORT_RANGE[0] <= base and base + PORT_SPAN <= PORT_RANGE[1]
    # The job's own block is busy (another job's raylet, say): it moves on to a free one.
    with socket.socket() as s:
        s.bind(("", a + 2))
        s.listen()
        moved = ports(41001)
    assert moved != a and not (moved <= a + 2 < moved + PORT_SPAN)
    assert port_block(41001, is_free=lambda p: True) == a


def test_stop_leftovers_ends_only_the_jobs_processes(tmp_path, monkeypatch):
    """The last resort of the script's cleanup: processes with this job's token path in their
    environment end; another job's, and the caller and its ancestors (the script), do not."""
    mine, other = str(tmp_path / "job-1" / "ray-token"), str(tmp_path / "job-2" / "ray-token")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", mine)  # as in the job's script, which calls it
    sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
    procs = [subprocess.Popen(sleep, env={**os.environ, "RAY_AUTH_TOKEN_PATH": p}) for p in (mine, mine, other)]
    try:
        found = stop_leftovers(mine, grace=5)
        assert sorted(found) == sorted(p.pid for p in procs[:2])
        assert [p.wait(timeout=10) for p in procs[:2]] == [-signal.SIGTERM] * 2
        assert procs[2].poll() is None
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_script_in_a_file_and_errors(tmp_path):
    spec = write_spec(tmp_path, "lic")
    out = tmp_path / "job.sh"
    result = CliRunner().invoke(cli, ["slurm", str(spec), "--nodes", "2", "--output-script", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("#!/bin/bash\n") and "--nodes=2" in out.read_text()

    bad = tmp_path / "bad.toml"
    bad.write_text(spec.read_text().replace('stage = "files"', 'stage = "filez"'))
    result = CliRunner().invoke(cli, ["slurm", str(bad), "--nodes", "1"])
    assert result.exit_code == 2 and "filez" in result.output and "#SBATCH" not in result.output

    result = CliRunner(env={"PATH": str(tmp_path)}).invoke(cli, ["slurm", str(spec), "--nodes", "1", "--submit"])
    assert result.exit_code == 2 and "sbatch not found" in result.output


# -- jobs on a real Slurm ------------------------------------------------------------


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    require_slurm()
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def job_env(slurm: SlurmCluster) -> dict:
    """What a user's shell would hand sbatch, plus the test plugin; the session's
    RAY_AUTH_MODE=disabled is there on purpose: the job must switch token auth on anyway."""
    site = Path(slurm.root / "site")
    dist = site / "hpcprep_slurm_sample-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hpcprep-slurm-sample\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[hpcprep]\nsample = sample_plugin\n")
    env = {**slurm.env, "RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": "not-the-job-token"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), str(TESTS_CORE), env.get("PYTHONPATH")) if p)
    return env


def hpcprep_slurm(slurm, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([HPCPREP, "slurm", *args], capture_output=True, text=True, env=job_env(slurm),
                          timeout=timeout)  # fmt: skip


def job_processes(job_id: str) -> list[str]:
    """Command lines of processes that belong to the job: Slurm's variables in their
    environment (Ray's workers inherit it) or the job's Ray directory on their command line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"SLURM_JOB_ID={job_id}".encode() in environ or f"hpcprep-ray-{job_id}" in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def wait_gone(job_id: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (left := job_processes(job_id)) and time.monotonic() < deadline:
        time.sleep(1)
    return left


def ray_tmp(log: Path) -> Path:
    """The job's node-local Ray directory, as its log names it."""
    return Path(re.search(r"Ray in (\S+)", log.read_text()).group(1))


def table(run_dir: Path):
    return pq.read_table(run_dir / "table").sort_by("record_id")


@pytest.fixture(scope="module")
def undisturbed(slurm, tmp_path_factory):
    """A run that nothing interrupts: the reference for the resumed one."""
    tmp = tmp_path_factory.mktemp("undisturbed")
    spec = write_spec(tmp, "lic")
    result = hpcprep_slurm(slurm, str(spec), "--nodes", "1", "--submit", "--wait")
    return spec, tmp / "lic", result


def test_run_to_the_end(undisturbed):
    spec, run_dir, result = undisturbed
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = result.stdout.split()[0]
    assert "job " + job_id + ": COMPLETED" in result.stderr
    assert "complete: inputs 17 = outputs 17 + errors 0" in result.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["finished"]
    assert manifest["counts"] == {"inputs": 17, "outputs": 17, "errors": 0, "balanced": True}
    assert manifest["cluster"]["nodes"] == 1 and manifest["cluster"]["address"]  # the job's Ray, not a local one
    t = table(run_dir)
    assert t.num_rows == 17
    assert sorted(t.column("source").to_pylist()) == sorted(str(p) for p in LICENSES.iterdir())
    log = run_dir.parent / "lic.slurm" / f"job-{job_id}.log"
    assert "1 Ray node(s) up at" in log.read_text() and "hpcprep slurm: Ray stopped" in log.read_text()
    assert not (run_dir.parent / "lic.slurm" / f"job-{job_id}").exists()  # the token went with the job
    assert not ray_tmp(log).exists()  # and Ray's node-local files
    assert wait_gone(job_id) == []


def test_wait_fails_when_the_run_fails(slurm, undisturbed):
    """A second job into the finished run directory: `hpcprep run` refuses it (no --overwrite
    or --resume), so --wait exits 1, although the manifest there says complete."""
    spec, run_dir, _ = undisturbed
    before = (run_dir / "manifest.json").read_text()
    result = hpcprep_slurm(slurm, str(spec), "--nodes", "1", "--submit", "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    job_id = result.stdout.split()[0]
    assert f"job {job_id} ended FAILED" in result.stderr and "the run did not finish" in result.stderr
    log = (run_dir.parent / "lic.slurm" / f"job-{job_id}.log").read_text()
    assert "is not empty: pass --overwrite" in log and "hpcprep slurm: Ray stopped" in log
    assert (run_dir / "manifest.json").read_text() == before
    assert wait_gone(job_id) == []


def test_two_nodes(slurm, tmp_path):
    """A job over two Slurm nodes: the head on the first, a Ray worker node joining it from
    the second (both nodes are this machine, each with its own slurmd)."""
    spec = write_spec(tmp_path, "pair", commit_every=4)
    result = hpcprep_slurm(slurm, str(spec), "--nodes", "2", "--partition", "pair", "--submit", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    job_id = result.stdout.split()[0]
    log = tmp_path / "pair.slurm" / f"job-{job_id}.log"
    assert "on pair1 pair2 (1 CPUs" in log.read_text() and "2 Ray node(s) up at" in log.read_text()
    manifest = json.loads((tmp_path / "pair" / "manifest.json").read_text())
    assert manifest["cluster"]["nodes"] == 2 and manifest["cluster"]["cpus"] == 2
    assert manifest["counts"] == {"inputs": 17, "outputs": 17, "errors": 0, "balanced": True}
    assert table(tmp_path / "pair").num_rows == 17
    assert wait_gone(job_id) == [] and not ray_tmp(log).exists()


def test_scancel_stops_ray_and_resume_finishes(slurm, undisturbed, tmp_path):
    # One input per commit group, a second of work each: the job is cancelled mid-run.
    encoder = '[[encoders]]\nstage = "test.count"\nsleep = 1.0\n'
    spec = write_spec(tmp_path, "slow", encoder=encoder, commit_every=1)
    run_dir = tmp_path / "slow"
    result = hpcprep_slurm(slurm, str(spec), "--nodes", "1", "--submit")
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    log = tmp_path / "slow.slurm" / f"job-{job_id}.log"

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
        if (manifest.get("groups") or {}).get("committed", 0) >= 1:
            break
        assert slurm.run("squeue", "-h", "-j", job_id).stdout.strip(), f"job ended early:\n{log.read_text()}"
        time.sleep(0.5)
    else:
        pytest.fail(f"no commit group within 120 s:\n{log.read_text() if log.exists() else ''}")

    # While it runs: Ray takes only this job's token, which only its owner can read.
    job_dir = tmp_path / "slow.slurm" / f"job-{job_id}"
    token_file = job_dir / "ray-token"
    assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    address = re.search(r"Ray node\(s\) up at (\S+)", log.read_text()).group(1)
    check = (
        "import sys; from ray._raylet import GcsClient; "
        f"GcsClient(address={address!r}).check_alive([], timeout=5); print('connected')"
    )
    for name, env in [
        ("the job's token", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}),
        ("another token", {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "f" * 64}),
        ("no token", {"RAY_AUTH_MODE": "disabled"}),
    ]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60,
                             env={**base, **env})  # fmt: skip
        connected = "connected" in out.stdout
        assert connected == (name == "the job's token"), f"{name}: {out.stdout}{out.stderr[-2000:]}"

    assert job_processes(job_id), "the job's processes should be visible while it runs"
    slurm.run("scancel", job_id, check=True)
    left = wait_gone(job_id)
    assert left == [], "Ray processes left after scancel:\n" + "\n".join(left)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["finished"] is None and 1 <= manifest["groups"]["committed"] < 17
    assert "hpcprep slurm: Ray stopped" in log.read_text()
    assert not job_dir.exists() and not ray_tmp(log).exists()

    result = hpcprep_slurm(slurm, str(spec), "--nodes", "1", "--resume", "--submit", "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "group 17 committed" in result.stderr
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["mode"] == "resume"
    assert manifest["counts"] == {"inputs": 17, "outputs": 17, "errors": 0, "balanced": True}
    resumed, reference = table(run_dir), table(undisturbed[1])
    assert resumed.num_rows == reference.num_rows == 17
    assert resumed.column("record_id").to_pylist() == reference.column("record_id").to_pylist()
    sizes = {str(p): p.stat().st_size for p in LICENSES.iterdir()}
    assert dict(zip(resumed.column("source").to_pylist(), resumed.column("n").to_pylist())) == sizes
    assert wait_gone(result.stdout.split()[0]) == []
