"""Parquet to and from an S3 endpoint on loopback (moto's server, started by the test)."""

from __future__ import annotations

import json
import socket

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.storage import S3Options, filesystem_for

from tests.conftest import require_module

from . import sample_plugin

KEY, SECRET = "testing-key", "testing-secret-value"


@pytest.fixture(scope="module")
def s3_endpoint():
    boto3 = require_module("boto3")
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    )
    client.create_bucket(Bucket="hpcprep-test")
    yield endpoint
    server.stop()


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
