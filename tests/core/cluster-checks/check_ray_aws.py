"""Check a Ray cluster-launcher configuration for AWS with Ray's own code, as ``ray up`` would.

    python check_ray_aws.py CONFIG.yaml

Prints one JSON object as the last line of its output (Ray logs before it) and exits 0
when the configuration passes, 1 when it does not. It runs the steps ``ray up`` takes
before it launches anything (``ray.autoscaler._private.commands._bootstrap_config``):
``prepare_config`` (defaults merged), the resources of each node type filled in from
EC2's instance-type data, ``validate_config`` (Ray's ``ray-schema.json`` and its
cross-checks), and ``bootstrap_aws`` (IAM instance profile, key pair, subnets, security
group), against AWS simulated by moto: no account, no network. The moto account holds
what the user would have made before ``ray up``: a VPC with a subnet (its id replaces the
configuration's subnet ids, since moto picks ids itself), the key pair named in
``KeyName``, and the AMI (one of moto's images stands in for the ``ImageId``). The JSON
gives each node type's resources and resolved ``node_config`` so the caller can check them.
"""

from __future__ import annotations

import json
import os
import sys

import yaml


def main() -> int:
    with open(sys.argv[1]) as f:
        config = yaml.safe_load(f)
    region = config.get("provider", {}).get("region", "us-east-1")
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",  # moto's; never a real credential
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=region,
        AWS_EC2_METADATA_DISABLED="true",
        MOTO_IAM_LOAD_MANAGED_POLICIES="true",  # Ray attaches AmazonEC2FullAccess and AmazonS3FullAccess
    )
    os.environ.pop("AWS_PROFILE", None)

    import boto3
    import ray.autoscaler._private.aws.config as aws_config
    from moto import mock_aws
    from ray.autoscaler._private.commands import _bootstrap_config

    class _NoWait:  # Ray waits 15 s for IAM to propagate after creating a role; moto needs no wait
        sleep = staticmethod(lambda seconds: None)
        time = staticmethod(__import__("time").time)

    aws_config.time = _NoWait

    with mock_aws():
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{region}a")["Subnet"]
        ec2.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True})
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        key_names = set()
        for node_type in config.get("available_node_types", {}).values():
            node_config = node_type.get("node_config", {})
            if "ImageId" in node_config:
                node_config["ImageId"] = image
            if "SubnetIds" in node_config:
                node_config["SubnetIds"] = [subnet["SubnetId"]]
            key_names.add(node_config.get("KeyName"))
        for key_name in key_names - {None}:
            ec2.create_key_pair(KeyName=key_name)
        try:
            resolved = _bootstrap_config(config, no_config_cache=True)
        except Exception as exc:  # jsonschema.ValidationError, ValueError, botocore errors, Ray's aborts
            print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"[:4000]}))
            return 1
    out = {
        "ok": True,
        "node_types": {
            name: {"resources": t["resources"], "node_config": t["node_config"]}
            for name, t in resolved["available_node_types"].items()
        },
        "head_setup_commands": resolved["head_setup_commands"],
        "worker_setup_commands": resolved["worker_setup_commands"],
    }
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
