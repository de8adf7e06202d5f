"""`hpcprep cluster-template`: the configurations it writes hold what they must, and pass the tools' own checks.

ParallelCluster's schema and validators run in `.venv-pcluster` (its pins clash with
`.venv`; `make test` builds it); Ray's validator ships with Ray. Both run against AWS
simulated by moto where they would call AWS, so no account or network is needed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.cluster_templates import default_packages, install_script

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
CHECKS = Path(__file__).resolve().parent / "cluster-checks"
SUBNET = "subnet-0123456789abcdef0"
SCRIPT_URL = "s3://hpcprep-test-bucket/bootstrap/install-hpcprep.sh"
AMI = "ami-0123456789abcdef0"


def missing(what: str) -> None:
    """Skip on a user's machine, fail in CI (where `make test` provides it)."""
    __tracebackhide__ = True
    unavailable(f"{what} is missing")


def pcluster_python() -> str:
    python = os.environ.get("HPCPREP_PCLUSTER_PYTHON") or str(ROOT / ".venv-pcluster" / "bin" / "python")
    if not Path(python).exists():
        missing(f"ParallelCluster's validator environment ({python}; `make pcluster-env`)")
    return python


def template(tmp_path: Path, kind: str, *args: str) -> tuple[dict, Path]:
    out = tmp_path / f"{kind}.yaml"
    result = CliRunner().invoke(cli, ["cluster-template", kind, "--region", "us-east-1", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return yaml.safe_load(out.read_text()), out


def pcluster(tmp_path: Path, *args: str) -> tuple[dict, Path]:
    return template(tmp_path, "pcluster", "--subnet-id", SUBNET, "--install-script-url", SCRIPT_URL, *args)


def ray_aws(tmp_path: Path, *args: str) -> tuple[dict, Path]:
    return template(tmp_path, "ray-aws", "--image-id", AMI, *args)


def expected_pins() -> list[str]:
    pins = {"hpcprep": metadata.version("hpcprep")}
    for ep in metadata.entry_points(group="hpcprep"):
        pins[ep.dist.metadata["Name"]] = ep.dist.version
    return [f"{name}=={version}" for name, version in pins.items()]


def check_pcluster(config_path: Path, *extra: str) -> tuple[int, dict]:
    proc = subprocess.run(
        [pcluster_python(), str(CHECKS / "check_pcluster.py"), str(config_path), *extra],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.strip(), proc.stderr[-3000:]
    return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- what every node installs


def test_default_packages_pin_hpcprep_its_plugins_and_ray_at_installed_versions():
    pins = default_packages()
    assert pins[0] == f"hpcprep=={metadata.version('hpcprep')}"
    for pin in expected_pins():
        assert pin in pins
    assert f"ray[data,default]=={metadata.version('ray')}" in pins
    assert any(p.startswith("hpcprep-genomics==") for p in pins), "the installed plugins are in the list"
    assert all("==" in p for p in pins), "every package pinned, so every node gets the same"


# ---------------------------------------------------------------- ParallelCluster


def test_pcluster_template_content(tmp_path):
    config, out = pcluster(tmp_path, "--key-name", "my-key", "--max-cpu-nodes", "6", "--name", "genomes")
    assert config["Region"] == "us-east-1"
    assert config["Image"] == {"Os": "alinux2023"}
    head = config["HeadNode"]
    assert head["Networking"]["SubnetId"] == SUBNET
    assert head["Ssh"] == {"KeyName": "my-key"}
    assert config["Scheduling"]["Scheduler"] == "slurm"
    queues = config["Scheduling"]["SlurmQueues"]
    assert [q["Name"] for q in queues] == ["cpu"], "no GPU queue unless asked for"
    (cpu,) = queues[0]["ComputeResources"]
    assert (cpu["InstanceType"], cpu["MinCount"], cpu["MaxCount"]) == ("c6i.4xlarge", 0, 6)
    (storage,) = config["SharedStorage"]
    assert storage["MountDir"] == "/fsx" and storage["StorageType"] == "FsxLustre"
    assert storage["FsxLustreSettings"]["StorageCapacity"] == 1200
    assert {"Key": "hpcprep:cluster", "Value": "genomes"} in config["Tags"]

    # The head node installs the pinned packages into a venv on the FSx; compute nodes wait for it.
    head_action = head["CustomActions"]["OnNodeConfigured"]
    assert head_action["Script"] == SCRIPT_URL
    assert head_action["Args"][:2] == ["/fsx/hpcprep/venv", "install"]
    for pin in expected_pins():
        assert pin in head_action["Args"]
        assert pin in queues[0]["CustomActions"]["OnNodeConfigured"]["Args"]
    assert queues[0]["CustomActions"]["OnNodeConfigured"]["Args"][:2] == ["/fsx/hpcprep/venv", "wait"]
    for node in (head, queues[0]):
        assert node["Iam"]["S3Access"] == [{"BucketName": "hpcprep-test-bucket"}], "nodes may read the script"

    script = out.with_name("install-hpcprep.sh")
    assert script.read_text() == install_script()
    assert script.stat().st_mode & stat.S_IXUSR
    assert "&id" not in out.read_text(), "no YAML aliases: each node's settings written out in full"


def test_pcluster_gpu_queue_only_when_asked(tmp_path):
    config, _ = pcluster(tmp_path, "--gpu-instance-type", "g5.2xlarge", "--max-gpu-nodes", "3")
    queues = {q["Name"]: q for q in config["Scheduling"]["SlurmQueues"]}
    assert set(queues) == {"cpu", "gpu"}
    (gpu,) = queues["gpu"]["ComputeResources"]
    assert (gpu["InstanceType"], gpu["MinCount"], gpu["MaxCount"]) == ("g5.2xlarge", 0, 3)
    assert queues["gpu"]["CustomActions"] == queues["cpu"]["CustomActions"], "same packages on GPU nodes"


def test_pcluster_packages_shared_dir_venv_and_existing_fsx(tmp_path):
    config, _ = pcluster(
        tmp_path,
        *("--shared-dir", "/scratch", "--venv-dir", "/opt/hpcprep"),
        *("--package", "hpcprep==0.1.0", "--package", "hpcprep-cfd[cuda]==0.1.0"),
        *("--find-links", "s3://wheel-bucket/wheels/", "--fsx-id", "fs-0123456789abcdef0"),
    )
    (storage,) = config["SharedStorage"]
    assert storage["MountDir"] == "/scratch"
    assert storage["FsxLustreSettings"] == {"FileSystemId": "fs-0123456789abcdef0"}
    args = [q["CustomActions"]["OnNodeConfigured"]["Args"] for q in config["Scheduling"]["SlurmQueues"]]
    expected_tail = ["--find-links", "s3://wheel-bucket/wheels/", "hpcprep==0.1.0", "hpcprep-cfd[cuda]==0.1.0"]
    # A venv outside the shared directory is per node: every node installs it.
    assert args == [["/opt/hpcprep", "install", *expected_tail]]
    assert config["HeadNode"]["CustomActions"]["OnNodeConfigured"]["Args"] == args[0]
    buckets = {b["BucketName"] for b in config["HeadNode"]["Iam"]["S3Access"]}
    assert buckets == {"hpcprep-test-bucket", "wheel-bucket"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subnet-id", SUBNET], "--install-script-url"),
        (["--install-script-url", SCRIPT_URL], "--subnet-id"),
        (["--subnet-id", SUBNET, "--install-script-url", SCRIPT_URL, "--fsx-size-gib", "1000"], "2400"),
        (["--subnet-id", SUBNET, "--install-script-url", SCRIPT_URL, "--max-gpu-nodes", "2"], "--gpu-instance-type"),
        (["--subnet-id", SUBNET, "--install-script-url", SCRIPT_URL, "--os", "ubuntu2204"], "3.11"),
        (["--subnet-id", SUBNET, "--install-script-url", "/local/file.sh"], "s3://"),
    ],
)
def test_pcluster_refuses_options_that_cannot_work(args, message):
    result = CliRunner().invoke(cli, ["cluster-template", "pcluster", "--region", "us-east-1", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_pcluster_template_passes_parallelcluster_schema_and_validators(tmp_path):
    _, out = pcluster(tmp_path, "--key-name", "my-key", "--gpu-instance-type", "g5.xlarge", "--max-gpu-nodes", "2")
    rc, result = check_pcluster(out, "--script", str(out.with_name("install-hpcprep.sh")))
    assert result["schema"] == "ok"
    assert result["validators"] == []
    assert rc == 0


def test_pcluster_template_with_existing_fsx_passes_parallelcluster_schema(tmp_path):
    # An existing file system cannot be looked up in moto's empty account, so the schema only.
    _, out = pcluster(tmp_path, "--fsx-id", "fs-0123456789abcdef0", "--os", "ubuntu2404")
    rc, result = check_pcluster(out, "--schema-only")
    assert (rc, result["schema"]) == (0, "ok")


def test_parallelcluster_rejects_broken_templates(tmp_path):
    config, out = pcluster(tmp_path)
    no_scheduling = copy.deepcopy(config)
    del no_scheduling["Scheduling"]
    path = tmp_path / "no-scheduling.yaml"
    path.write_text(yaml.safe_dump(no_scheduling))
    rc, result = check_pcluster(path, "--schema-only")
    assert rc == 1
    assert "Scheduling" in result["schema"]

    # Past the schema, ParallelCluster's validators catch what only AWS's rules forbid.
    bad_size = copy.deepcopy(config)
    bad_size["SharedStorage"][0]["FsxLustreSettings"]["StorageCapacity"] = 1000
    bad_queue = copy.deepcopy(config)
    bad_queue["Scheduling"]["SlurmQueues"][0]["Name"] = "CPU_Queue"
    for name, broken, validator in (
        ("size", bad_size, "FsxStorageCapacityValidator"),
        ("queue", bad_queue, "NameValidator"),
    ):
        path = tmp_path / f"bad-{name}.yaml"
        path.write_text(yaml.safe_dump(broken))
        rc, result = check_pcluster(path)
        assert rc == 1
        assert result["schema"] == "ok"
        assert [f["type"] for f in result["validators"]] == [validator]


# ---------------------------------------------------------------- Ray cluster launcher


def test_ray_aws_template_content(tmp_path):
    config, _ = ray_aws(tmp_path, "--max-cpu-nodes", "8", "--name", "proteins")
    assert config["cluster_name"] == "proteins"
    assert config["provider"]["type"] == "aws" and config["provider"]["region"] == "us-east-1"
    assert config["auth"]["ssh_user"] == "ubuntu"
    types = config["available_node_types"]
    assert set(types) == {"ray.head", "ray.worker.cpu"}, "no GPU workers unless asked for"
    assert types["ray.worker.cpu"]["node_config"] == {"InstanceType": "c6i.4xlarge", "ImageId": AMI}
    assert (types["ray.worker.cpu"]["min_workers"], types["ray.worker.cpu"]["max_workers"]) == (0, 8)
    assert config["head_node_type"] == "ray.head" and config["max_workers"] == 8

    (pip,) = [c for c in config["setup_commands"] if " pip install " in c]
    for pin in expected_pins():
        assert pin in pip
    assert f"'ray[data,default]=={metadata.version('ray')}'" in pip
    assert not any("lustre" in c for c in config["setup_commands"]), "no FSx mount unless one is given"
    head_start = " ".join(config["head_start_ray_commands"])
    worker_start = " ".join(config["worker_start_ray_commands"])
    assert "ray start --head --port=6379" in head_start and "--dashboard-host=127.0.0.1" in head_start
    assert "ray start --address=$RAY_HEAD_IP:6379" in worker_start
    assert "RAY_AUTH_MODE=token" in head_start and "RAY_AUTH_MODE=token" in worker_start
    assert config["file_mounts"] == {"~/.ray/auth_token": "~/.ray/auth_token"}, "one token on every node"


def test_ray_aws_gpu_workers_fsx_mount_and_wheels(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    config, _ = ray_aws(
        tmp_path,
        *("--gpu-instance-type", "g5.xlarge", "--max-gpu-nodes", "2", "--shared-dir", "/data"),
        *("--fsx-id", "fs-0123456789abcdef0", "--fsx-mount-name", "abcdefgh", "--find-links", str(wheels)),
    )
    gpu = config["available_node_types"]["ray.worker.gpu"]
    assert gpu["node_config"]["InstanceType"] == "g5.xlarge" and gpu["max_workers"] == 2
    assert config["max_workers"] == 4 + 2
    mount = [c for c in config["setup_commands"] if "mount -t lustre" in c]
    assert mount and "fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com@tcp:/abcdefgh /data" in mount[0]
    assert config["file_mounts"]["~/hpcprep-wheels"] == str(wheels)
    assert any("--find-links ~/hpcprep-wheels" in c for c in config["setup_commands"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--image-id"),
        (["--image-id", AMI, "--fsx-size-gib", "1200"], "cannot create an FSx"),
        (["--image-id", AMI, "--fsx-id", "fs-0123456789abcdef0"], "--fsx-mount-name"),
        (["--image-id", AMI, "--key-name", "k"], "--ssh-private-key"),
    ],
)
def test_ray_aws_refuses_options_that_cannot_work(args, message):
    result = CliRunner().invoke(cli, ["cluster-template", "ray-aws", "--region", "us-east-1", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_ray_aws_template_passes_ray_validator(tmp_path):
    from jsonschema import ValidationError
    from ray.autoscaler._private.util import prepare_config, validate_config

    config, _ = ray_aws(tmp_path, "--gpu-instance-type", "g5.xlarge", "--subnet-id", SUBNET)
    validate_config(prepare_config(copy.deepcopy(config)))

    unknown_key = {**copy.deepcopy(config), "min_wrokers": 1}
    with pytest.raises(ValidationError, match="min_wrokers"):
        validate_config(prepare_config(unknown_key))
    no_node_config = copy.deepcopy(config)
    del no_node_config["available_node_types"]["ray.worker.cpu"]["node_config"]
    with pytest.raises(ValidationError, match="node_config"):
        validate_config(prepare_config(no_node_config))


def test_ray_aws_template_bootstraps_like_ray_up_against_simulated_aws(tmp_path):
    """`ray up`'s own configuration steps (schema, resources, IAM, key, subnet, security group) on moto."""
    try:
        import moto  # noqa: F401
    except ImportError:
        missing("moto (the project's test extra)")
    key = tmp_path / "my-key.pem"
    key.write_text("not a real key\n")
    _, out = ray_aws(
        tmp_path,
        *("--gpu-instance-type", "g5.xlarge", "--subnet-id", SUBNET),
        *("--key-name", "my-key", "--ssh-private-key", str(key)),
    )

    def run(path: Path) -> tuple[int, dict]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"HOME": str(tmp_path)}
        proc = subprocess.run(
            [sys.executable, str(CHECKS / "check_ray_aws.py"), str(path)],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        assert proc.stdout.strip(), proc.stderr[-3000:]
        return proc.returncode, json.loads(proc.stdout.strip().splitlines()[-1])

    rc, result = run(out)
    assert (rc, result["ok"]) == (0, True), result
    types = result["node_types"]
    # Ray filled each node type's resources in from EC2's data for the instance types we named.
    assert types["ray.worker.cpu"]["resources"]["CPU"] == 16  # c6i.4xlarge
    assert types["ray.worker.gpu"]["resources"]["GPU"] == 1  # g5.xlarge: one A10G
    assert all(t["node_config"]["KeyName"] == "my-key" for t in types.values())
    assert all(t["node_config"]["SecurityGroupIds"] for t in types.values())
    assert any(" pip install " in c for c in result["worker_setup_commands"])

    broken = yaml.safe_load(out.read_text())
    broken["max_workers"] = "many"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    rc, result = run(path)
    assert (rc, result["ok"]) == (1, False)
    assert "max_workers" in result["error"]


# ---------------------------------------------------------------- the node install script


def test_install_script_installs_pinned_packages_and_compute_nodes_wait_for_them(tmp_path):
    """Runs install-hpcprep.sh as ParallelCluster would, with a stand-in hpcprep wheel and no index."""
    bash = shutil.which("bash")
    if not bash:
        missing("bash")
    ok = "import sys, ensurepip; sys.exit(sys.version_info < (3, 11))"
    if not any(
        shutil.which(p) and subprocess.run([p, "-c", ok], capture_output=True).returncode == 0
        for p in ("python3.13", "python3.12", "python3.11", "python3")
    ):
        missing("a Python >= 3.11 with venv on PATH (the script would install one)")
    project = tmp_path / "fake-hpcprep"
    (project / "hpcprep").mkdir(parents=True)
    (project / "hpcprep" / "__init__.py").write_text("STAND_IN = True\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "hpcprep"\nversion = "9.9.9"\n'
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(project),
        ],
        check=True,
        timeout=300,
    )
    script = tmp_path / "install-hpcprep.sh"
    script.write_text(install_script())
    venv = tmp_path / "fsx" / "hpcprep" / "venv"
    profile = tmp_path / "profile.sh"
    env = os.environ | {"PIP_NO_INDEX": "1", "HPCPREP_PROFILE": str(profile), "HPCPREP_WAIT_SECONDS": "0"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([bash, str(script), *args], capture_output=True, text=True, env=env, timeout=600)

    head = run(str(venv), "install", "--find-links", str(wheels), "hpcprep==9.9.9")
    assert head.returncode == 0, head.stderr
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import hpcprep; print(hpcprep.STAND_IN)"], capture_output=True, text=True
    )
    assert check.stdout.strip() == "True"
    assert (venv / ".hpcprep-requirements").read_text() == "hpcprep==9.9.9\n"
    assert f'export PATH="{venv}/bin:$PATH"' in profile.read_text()

    compute = run(str(venv), "wait", "--find-links", str(wheels), "hpcprep==9.9.9")
    assert compute.returncode == 0, compute.stderr
    other = run(str(venv), "wait", "hpcprep==9.9.8")
    assert other.returncode == 1
    assert "does not hold the requested packages" in other.stderr
