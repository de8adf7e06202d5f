"""Check a ParallelCluster 3 configuration with ParallelCluster's own code; run with .venv-pcluster's Python.

    python check_pcluster.py CONFIG.yaml [--script FILE] [--schema-only]

Prints one JSON object on one line: ``schema`` (``"ok"`` or the schema's error messages) and, unless
``--schema-only``, ``validators``: the WARNING and ERROR findings of ParallelCluster's
configuration validators, run against AWS simulated by moto (no account, no network).
Exit status 0 when the configuration passes, 1 when it does not.

The schema load (``ClusterSchema().load``) needs no AWS at all: it checks keys, types,
required fields and allowed values. For the validators the moto account is set up the way
a user's would be before ``pcluster create-cluster``: a VPC with a subnet (whose id replaces
the configuration's subnet ids, since moto picks ids itself), the key pair named in the
configuration, and the S3 bucket holding the bootstrap script. Two things moto lacks are
stood in for or left out, and only these:

- the official ParallelCluster AMI lookup (moto has no ``amazon``-owned ParallelCluster
  images), answered with one of moto's images;
- the validators that moto cannot serve: the two launch-template dry runs (moto's
  ``RunInstances`` rejects ParallelCluster's block-device mappings: "The request must
  contain the parameter ebs") and the key-pair type check (moto returns no ``KeyType``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import yaml

MOTO_GAPS = {"HeadNodeLaunchTemplateValidator", "ComputeResourceLaunchTemplateValidator", "KeyPairValidator"}


def schema_errors(config: dict):
    from marshmallow import ValidationError
    from pcluster.schemas.cluster_schema import ClusterSchema

    try:
        return None, ClusterSchema(cluster_name="hpcprep-check").load(config)
    except ValidationError as exc:
        return exc.messages, None


def validator_findings(config: dict, script: bytes) -> list[dict]:
    import boto3
    from moto import mock_aws
    from pcluster.aws.aws_api import AWSApi

    AWSApi.reset()  # clients made before moto started would reach the real AWS
    region = config.get("Region", os.environ["AWS_DEFAULT_REGION"])
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24", AvailabilityZone=f"{region}a")["Subnet"]
        config["HeadNode"]["Networking"]["SubnetId"] = subnet["SubnetId"]
        for queue in config.get("Scheduling", {}).get("SlurmQueues", []):
            queue["Networking"]["SubnetIds"] = [subnet["SubnetId"]]
        key_name = config["HeadNode"].get("Ssh", {}).get("KeyName")
        if key_name:
            ec2.create_key_pair(KeyName=key_name)
        s3 = boto3.client("s3", region_name=region)
        for url in _script_urls(config):
            if url.startswith("s3://"):
                bucket, key = url[len("s3://") :].split("/", 1)
                if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
                    s3.create_bucket(Bucket=bucket)
                s3.put_object(Bucket=bucket, Key=key, Body=script)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

        from pcluster.aws.common import AWSClientError
        from pcluster.config.common import TypeMatchValidatorsSuppressor
        from pcluster.validators.common import FailureLevel, ValidatorContext

        AWSApi.instance().ec2.get_official_image_id = lambda *args, **kwargs: image
        errors, cluster = schema_errors(config)
        if errors:
            return [{"level": "ERROR", "type": "schema", "message": json.dumps(errors)}]
        try:
            failures = cluster.validate(
                suppressors=[TypeMatchValidatorsSuppressor(MOTO_GAPS)], context=ValidatorContext()
            )
        except AWSClientError as exc:  # e.g. an instance type that does not exist; pcluster's CLI stops here too
            return [{"level": "ERROR", "type": type(exc).__name__, "message": str(exc)}]
        return [
            {"level": f.level.name, "type": f.validator_type, "message": f.message}
            for f in failures
            if f.level.value >= FailureLevel.WARNING.value
        ]


def _script_urls(config: dict) -> set[str]:
    urls = set()
    nodes = [config.get("HeadNode", {})] + list(config.get("Scheduling", {}).get("SlurmQueues", []))
    for node in nodes:
        for action in (node.get("CustomActions") or {}).values():
            steps = action.get("Sequence", [action])
            urls.update(step["Script"] for step in steps if "Script" in step)
    return urls


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--script", help="the bootstrap script to put at the configuration's script URLs")
    ap.add_argument("--schema-only", action="store_true")
    args = ap.parse_args()
    with open(args.config) as f:
        config = yaml.safe_load(f)
    # ParallelCluster reads the region from the environment while loading (as its CLI sets it).
    os.environ["AWS_DEFAULT_REGION"] = str((config or {}).get("Region") or "us-east-1")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[var] = "testing"  # moto's; never a real credential
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

    errors, _ = schema_errors(config)
    result = {"schema": errors or "ok"}
    ok = not errors
    if ok and not args.schema_only:
        script = open(args.script, "rb").read() if args.script else b"#!/bin/bash\n"
        result["validators"] = validator_findings(config, script)
        ok = not result["validators"]
    print(json.dumps(result, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
