"""Parquet to and from an S3 endpoint on loopback (moto's server, started by the test)."""

from __future__ import annotations

import json

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.storage import S3Options, filesystem_for

from tests.conftest import S3_KEY, S3_SECRET, require_module, s3_bucket

from . import sample_plugin

KEY, SECRET = S3_KEY, S3_SECRET


@pytest.fixture(scope="module")
def s3_endpoint(s3_server):
    s3_bucket(s3_server, "hpcprep-test")
    return s3_server


def test_parquet_round_trip_on_s3(tmp_path, s3_endpoint, ray_local):
    data = tmp_path / "data"
    data.mkdir()
    for i in range(5):
        (data / f"{i}.txt").write_text("s3 " * (i + 1))
    creds = {"endpoint_url": s3_endpoint, "access_key": KEY, "secret_key": SECRET, "region": "us-east-1"}
    spec = {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.count", "k": 2}],
        "sinks": [{"stage": "parquet", "path": "s3://hpcprep-test/runs/one", **creds}],
    }
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    assert result.counts["outputs"] == 5

    fs, path = filesystem_for("s3://hpcprep-test/runs/one", S3Options(s3_endpoint, KEY, SECRET, "us-east-1"))
    table = pq.read_table(path, filesystem=fs)
    assert sorted(table.column("n").to_pylist()) == [6, 12, 18, 24, 30]

    manifest_text = (tmp_path / "out" / "manifest.json").read_text()
    assert SECRET not in manifest_text and KEY not in manifest_text
    assert json.loads(manifest_text)["spec"]["sinks"][0]["endpoint_url"] == s3_endpoint

    # Read it back from S3 with the core parquet reader: same records, same ids.
    back = {
        "run": {"output": str(tmp_path / "back")},
        "reader": {"stage": "parquet", "paths": ["s3://hpcprep-test/runs/one"], **creds},
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "back" / "t")}],
    }
    hpcprep.run(back, progress=False)
    again = pq.read_table(tmp_path / "back" / "t")
    key = lambda t: sorted(zip(t["record_id"].to_pylist(), t["n"].to_pylist()))
    assert key(again) == key(table)


def test_files_over_100_mb_go_to_and_from_s3_in_parts(tmp_path, s3_endpoint, ray_local):
    """A 110 MB object read by the ``files`` reader from S3 and written back by the Parquet
    sink as one file of more than 100 MB: both ways in multipart transfers, bytes intact."""
    import hashlib

    import numpy as np

    boto3 = require_module("boto3")
    from boto3.s3.transfer import TransferConfig

    client = boto3.client(
        "s3", endpoint_url=s3_endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(5).bytes(110 << 20))  # random: Parquet cannot shrink it
    # upload in 8 MB parts, as any S3 client sends a large file
    client.upload_file(str(big), "hpcprep-test", "in/big.bin", Config=TransferConfig(multipart_chunksize=8 << 20))
    head = client.head_object(Bucket="hpcprep-test", Key="in/big.bin")
    assert head["ContentLength"] == 110 << 20 and "-" in head["ETag"]  # a multipart object's ETag ends in -N
    creds = {"endpoint_url": s3_endpoint, "access_key": KEY, "secret_key": SECRET, "region": "us-east-1"}
    spec = {
        "run": {"output": str(tmp_path / "out")},
        "reader": {"stage": "files", "paths": ["s3://hpcprep-test/in/big.bin"], **creds},
        "sinks": [{"stage": "parquet", "path": "s3://hpcprep-test/runs/big", **creds}],
    }
    result = hpcprep.run(spec, progress=False)
    assert result.counts == {"inputs": 1, "outputs": 1, "errors": 0, "balanced": True}
    listed = client.list_objects_v2(Bucket="hpcprep-test", Prefix="runs/big/")["Contents"]
    (written,) = [o for o in listed if o["Key"].endswith(".parquet")]
    assert written["Size"] > 100 << 20 and "-" in written["ETag"]  # the sink's upload came in parts too
    fs, path = filesystem_for("s3://hpcprep-test/runs/big", S3Options(s3_endpoint, KEY, SECRET, "us-east-1"))
    table = pq.read_table(path, filesystem=fs)
    data = table.column("bytes")[0].as_py()
    assert hashlib.sha256(data).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert table.column("source").to_pylist() == ["s3://hpcprep-test/in/big.bin"]


def test_s3_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    fs, path = filesystem_for("s3://bucket/prefix/x.parquet")
    assert path == "bucket/prefix/x.parquet"
    assert fs.region == "eu-west-1"
    # The spec wins over the environment.
    fs, _ = filesystem_for("s3://bucket/x", S3Options(region="us-west-2"))
    assert fs.region == "us-west-2"
