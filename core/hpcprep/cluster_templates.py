"""``hpcprep cluster-template``: cluster configurations for AWS that run hpcprep on every node.

From one set of options it builds either an AWS ParallelCluster 3 configuration (Slurm,
a CPU queue, an optional GPU queue, FSx for Lustre where ``run.output`` lives) or a Ray
cluster-launcher configuration for AWS (``ray up``). Both install the same pinned
packages on every node: by default hpcprep, each installed hpcprep plugin and Ray, at
the versions installed here, because a Ray cluster whose nodes differ in any of them
fails in ways that are hard to trace.

ParallelCluster runs bootstrap scripts from a URL only, so the pcluster template runs
``install-hpcprep.sh`` (shipped in ``templates/cluster``) from ``--install-script-url``;
the command writes the script for the user to upload there.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from importlib import metadata, resources

import yaml

KINDS = ("pcluster", "ray-aws")
PCLUSTER_OSES = ("alinux2023", "ubuntu2404", "rhel9", "rocky9")  # those with a Python >= 3.11 package
FSX_SCRATCH2_SIZES = "1200 GiB or a multiple of 2400 GiB"
CLUSTER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,59}$")  # ParallelCluster's rule, also fine for Ray
RAY_PORT = 6379
RAY_VENV = "~/hpcprep-venv"


class ClusterTemplateError(ValueError):
    """The options cannot make a usable template; the message says which and why."""


@dataclass
class ClusterOptions:
    region: str
    name: str = "hpcprep"
    head_instance_type: str = "m6i.xlarge"
    cpu_instance_type: str = "c6i.4xlarge"
    max_cpu_nodes: int = 4
    gpu_instance_type: str | None = None
    max_gpu_nodes: int | None = None
    subnet_id: str | None = None
    key_name: str | None = None
    shared_dir: str = "/fsx"
    fsx_size_gib: int | None = None
    fsx_id: str | None = None
    packages: list[str] = field(default_factory=list)  # empty: default_packages()
    find_links: str | None = None
    # pcluster only
    os: str = "alinux2023"
    install_script_url: str | None = None
    venv_dir: str | None = None  # default: SHARED_DIR/hpcprep/venv
    # ray-aws only
    image_id: str | None = None
    ssh_user: str = "ubuntu"
    ssh_private_key: str | None = None
    fsx_mount_name: str | None = None
    ray_token_file: str = "~/.ray/auth_token"

    def requirements(self) -> list[str]:
        return list(self.packages) or default_packages()


def default_packages() -> list[str]:
    """hpcprep, every installed plugin (entry-point group ``hpcprep``) and Ray, pinned to the versions here."""
    from .plugins import ENTRY_POINT_GROUP

    pins = {"hpcprep": metadata.version("hpcprep")}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.dist is not None:
            pins.setdefault(ep.dist.metadata["Name"], ep.dist.version)
    pins = {name: pins[name] for name in sorted(pins, key=lambda n: (n != "hpcprep", n))}
    reqs = [f"{name}=={ver}" for name, ver in pins.items()]
    reqs.append(f"ray[data,default]=={metadata.version('ray')}")
    return reqs


def install_script() -> str:
    """The node bootstrap script the ParallelCluster template runs (upload it to --install-script-url)."""
    return resources.files("hpcprep").joinpath("templates/cluster/install-hpcprep.sh").read_text()


def build(kind: str, opts: ClusterOptions) -> dict:
    """The configuration for ``kind`` (``pcluster`` or ``ray-aws``) as plain dicts and lists."""
    opts = _checked(opts)
    if kind == "pcluster":
        return _build_pcluster(opts)
    if kind == "ray-aws":
        return _build_ray_aws(opts)
    raise ClusterTemplateError(f"unknown template {kind!r}; choose one of {', '.join(KINDS)}")


def render(config: dict, header: str = "") -> str:
    """YAML text, keys in the order built, with ``header`` as leading comment lines."""
    body = yaml.dump(config, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False, width=1000)
    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    return comment + body


class _PlainDumper(yaml.SafeDumper):
    """Writes a value shared by several nodes out in full each time, never as a YAML alias."""

    def ignore_aliases(self, data):
        return True


def _checked(o: ClusterOptions) -> ClusterOptions:
    """``o`` with the defaults that depend on other options filled in, or ClusterTemplateError."""
    if not CLUSTER_NAME.match(o.name):
        raise ClusterTemplateError(
            f"--name {o.name!r}: start with a letter, then letters, digits and hyphens (at most 60)"
        )
    if o.max_cpu_nodes < 1:
        raise ClusterTemplateError("--max-cpu-nodes must be at least 1")
    if o.max_gpu_nodes is not None and not o.gpu_instance_type:
        raise ClusterTemplateError("--max-gpu-nodes needs --gpu-instance-type")
    if o.gpu_instance_type and o.max_gpu_nodes is None:
        o = replace(o, max_gpu_nodes=1)
    if o.max_gpu_nodes is not None and o.max_gpu_nodes < 1:
        raise ClusterTemplateError("--max-gpu-nodes must be at least 1")
    if not o.shared_dir.startswith("/") or o.shared_dir.rstrip("/") == "":
        raise ClusterTemplateError(f"--shared-dir {o.shared_dir!r} must be an absolute path other than /")
    if o.fsx_id and o.fsx_size_gib is not None:
        raise ClusterTemplateError("give --fsx-id (an existing file system) or --fsx-size-gib (a new one), not both")
    if o.fsx_id and not re.match(r"^fs-[0-9a-z]{17}$", o.fsx_id):
        raise ClusterTemplateError(f"--fsx-id {o.fsx_id!r} is not an FSx file system id (fs- and 17 characters)")
    return o


# ---------------------------------------------------------------- ParallelCluster


def _build_pcluster(o: ClusterOptions) -> dict:
    if not o.subnet_id:
        raise ClusterTemplateError("pcluster needs --subnet-id (the head node and the queues are placed in it)")
    if not o.install_script_url or not o.install_script_url.startswith(("s3://", "https://")):
        raise ClusterTemplateError(
            "pcluster needs --install-script-url s3://BUCKET/KEY (or https://...): ParallelCluster runs "
            "bootstrap scripts only from a URL; upload the script this command writes there"
        )
    if o.os not in PCLUSTER_OSES:
        raise ClusterTemplateError(
            f"--os {o.os!r}: choose one of {', '.join(PCLUSTER_OSES)} (hpcprep needs Python >= 3.11)"
        )
    for flag, value in (("--image-id", o.image_id), ("--fsx-mount-name", o.fsx_mount_name)):
        if value:
            raise ClusterTemplateError(f"{flag} is for ray-aws; pcluster uses --os and creates or attaches FSx itself")
    size = o.fsx_size_gib if o.fsx_size_gib is not None else 1200
    if not o.fsx_id and not (size == 1200 or (size > 0 and size % 2400 == 0)):
        raise ClusterTemplateError(
            f"--fsx-size-gib {size}: an FSx for Lustre SCRATCH_2 file system is {FSX_SCRATCH2_SIZES}"
        )

    shared_dir = o.shared_dir.rstrip("/")
    venv = o.venv_dir or f"{shared_dir}/hpcprep/venv"
    shared_venv = venv.startswith(shared_dir + "/")
    extra = ["--find-links", o.find_links] if o.find_links else []
    reqs = o.requirements()

    def install_action(mode: str) -> dict:
        return {"OnNodeConfigured": {"Script": o.install_script_url, "Args": [venv, mode, *extra, *reqs]}}

    buckets = sorted({_s3_bucket(u) for u in (o.install_script_url, o.find_links) if u and u.startswith("s3://")})
    iam = {"S3Access": [{"BucketName": b} for b in buckets]} if buckets else None

    head = {"InstanceType": o.head_instance_type, "Networking": {"SubnetId": o.subnet_id}}
    if o.key_name:
        head["Ssh"] = {"KeyName": o.key_name}
    head["CustomActions"] = install_action("install")
    if iam:
        head["Iam"] = iam

    def queue(name: str, instance_type: str, max_count: int) -> dict:
        q = {
            "Name": name,
            "ComputeResources": [
                {"Name": f"{name}-nodes", "InstanceType": instance_type, "MinCount": 0, "MaxCount": max_count}
            ],
            "Networking": {"SubnetIds": [o.subnet_id]},
            "CustomActions": install_action("wait" if shared_venv else "install"),
        }
        if iam:
            q["Iam"] = iam
        return q

    queues = [queue("cpu", o.cpu_instance_type, o.max_cpu_nodes)]
    if o.gpu_instance_type:
        queues.append(queue("gpu", o.gpu_instance_type, o.max_gpu_nodes))

    if o.fsx_id:
        fsx = {"FileSystemId": o.fsx_id}
    else:
        # Retain: run.output (results, errors, resume state) outlives `pcluster delete-cluster`.
        fsx = {"StorageCapacity": size, "DeploymentType": "SCRATCH_2", "DeletionPolicy": "Retain"}
    return {
        "Region": o.region,
        "Image": {"Os": o.os},
        "HeadNode": head,
        "Scheduling": {"Scheduler": "slurm", "SlurmQueues": queues},
        "SharedStorage": [
            {"MountDir": shared_dir, "Name": "hpcprep-fsx", "StorageType": "FsxLustre", "FsxLustreSettings": fsx}
        ],
        "Tags": [{"Key": "hpcprep:cluster", "Value": o.name}],
    }


def _s3_bucket(url: str) -> str:
    return url[len("s3://") :].split("/", 1)[0]


# ---------------------------------------------------------------- Ray cluster launcher


def _build_ray_aws(o: ClusterOptions) -> dict:
    if not o.image_id:
        raise ClusterTemplateError(
            "ray-aws needs --image-id: an AMI with Python >= 3.11 for every node (e.g. Ubuntu 24.04); "
            "Ray's default AMI has an older Python"
        )
    if o.fsx_size_gib is not None:
        raise ClusterTemplateError(
            "the Ray cluster launcher cannot create an FSx file system: create one in the subnet's "
            "availability zone and pass --fsx-id and --fsx-mount-name (or use the pcluster template)"
        )
    if bool(o.fsx_id) != bool(o.fsx_mount_name):
        raise ClusterTemplateError(
            "ray-aws mounts an existing FSx file system: give both --fsx-id and --fsx-mount-name"
        )
    if o.key_name and not o.ssh_private_key:
        raise ClusterTemplateError("--key-name needs --ssh-private-key for ray-aws (the launcher logs in with it)")
    if o.install_script_url or o.venv_dir:
        raise ClusterTemplateError(
            "--install-script-url and --venv-dir are for pcluster; ray-aws installs in setup_commands"
        )

    file_mounts = {"~/.ray/auth_token": o.ray_token_file}
    find_links = []
    if o.find_links and o.find_links.startswith(("http://", "https://")):
        find_links = ["--find-links", o.find_links]
    elif o.find_links and o.find_links.startswith(("/", "~")):
        file_mounts["~/hpcprep-wheels"] = o.find_links  # a local directory of wheels, copied to every node
        find_links = ["--find-links", "~/hpcprep-wheels"]
    elif o.find_links:
        raise ClusterTemplateError("--find-links for ray-aws: a local directory (absolute path) or an http(s) URL")

    pip = " ".join(
        [f"{RAY_VENV}/bin/python", "-m", "pip", "install", "--quiet", *find_links]
        + [shlex.quote(r) for r in o.requirements()]
    )
    setup = []
    if o.fsx_id:
        setup += _lustre_mount_commands(o)
    setup += [
        "command -v apt-get > /dev/null && (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive "
        "apt-get install -y -qq python3-venv) || true",
        f"test -x {RAY_VENV}/bin/python || python3 -m venv {RAY_VENV}",
        pip,
        f"{RAY_VENV}/bin/python -c 'import hpcprep'",
        # Ray's command runner uses interactive login shells, so ~/.bashrc reaches every later command.
        "grep -q hpcprep-venv ~/.bashrc || printf '%s\\n' "
        f"'export PATH={RAY_VENV}/bin:$PATH' 'export RAY_AUTH_MODE=token' "
        "'export RAY_idle_worker_killing_time_threshold_ms=60000' >> ~/.bashrc",
    ]
    env = "RAY_AUTH_MODE=token RAY_idle_worker_killing_time_threshold_ms=60000"
    ray = f"{RAY_VENV}/bin/ray"

    def node(instance_type: str, min_workers: int | None = None, max_workers: int | None = None) -> dict:
        node_config = {"InstanceType": instance_type, "ImageId": o.image_id}
        if o.subnet_id:
            node_config["SubnetIds"] = [o.subnet_id]
        if o.key_name:
            node_config["KeyName"] = o.key_name
        t = {"resources": {}, "node_config": node_config}
        if max_workers is not None:
            t["min_workers"] = min_workers
            t["max_workers"] = max_workers
        return t

    node_types = {
        "ray.head": node(o.head_instance_type),
        "ray.worker.cpu": node(o.cpu_instance_type, 0, o.max_cpu_nodes),
    }
    if o.gpu_instance_type:
        node_types["ray.worker.gpu"] = node(o.gpu_instance_type, 0, o.max_gpu_nodes)
    auth = {"ssh_user": o.ssh_user}
    if o.ssh_private_key:
        auth["ssh_private_key"] = o.ssh_private_key
    return {
        "cluster_name": o.name,
        "max_workers": o.max_cpu_nodes + (o.max_gpu_nodes or 0),
        "idle_timeout_minutes": 5,
        "provider": {"type": "aws", "region": o.region, "cache_stopped_nodes": False},
        "auth": auth,
        "available_node_types": node_types,
        "head_node_type": "ray.head",
        "file_mounts": file_mounts,
        "setup_commands": setup,
        # The autoscaler on the head node launches the workers through EC2.
        "head_setup_commands": [f"{RAY_VENV}/bin/python -m pip install --quiet boto3"],
        "head_start_ray_commands": [
            f"{ray} stop",
            f"ulimit -n 65536; {env} {ray} start --head --port={RAY_PORT} --object-manager-port=8076 "
            "--autoscaling-config=~/ray_bootstrap_config.yaml --dashboard-host=127.0.0.1",
        ],
        "worker_start_ray_commands": [
            f"{ray} stop",
            f"ulimit -n 65536; {env} {ray} start --address=$RAY_HEAD_IP:{RAY_PORT} --object-manager-port=8076",
        ],
    }


def _lustre_mount_commands(o: ClusterOptions) -> list[str]:
    """Install the Lustre client from AWS's repository (Ubuntu) and mount the file system at --shared-dir."""
    dns = f"{o.fsx_id}.fsx.{o.region}.amazonaws.com"
    d = o.shared_dir.rstrip("/")
    repo = "https://fsx-lustre-client-repo.s3.amazonaws.com/ubuntu"
    key = "https://fsx-lustre-client-repo-public-keys.s3.amazonaws.com/fsx-ubuntu-public-key.asc"
    keyring = "/usr/share/keyrings/fsx-ubuntu-public-key.gpg"
    return [
        f"mountpoint -q {d} || (wget -qO - {key} | gpg --dearmor | sudo tee {keyring} > /dev/null"
        f' && echo "deb [signed-by={keyring}] {repo} $(. /etc/os-release; echo $VERSION_CODENAME) main"'
        " | sudo tee /etc/apt/sources.list.d/fsxlustreclientrepo.list > /dev/null"
        " && sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
        " lustre-client-modules-$(uname -r))",
        f"mountpoint -q {d} || (sudo mkdir -p {d} && sudo mount -t lustre -o relatime,flock "
        f"{dns}@tcp:/{o.fsx_mount_name} {d} && sudo chown $(id -u):$(id -g) {d})",
    ]
