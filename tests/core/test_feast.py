"""The ``feast`` sink against a real Redis (Debian's redis-server on loopback): one spec fills
Parquet and LanceDB, each locally and on S3 (moto's server on loopback), and a Feast feature
view with exactly the same rows; online lookups by ``record_id`` return the run's values."""

from __future__ import annotations

import hpcprep
import lancedb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hpcprep.builtins.feast_sink import FeastSink, feast_type
from hpcprep.runner import RunError
from hpcprep.storage import S3Options, filesystem_for
from hpcprep.testing import interrupted_run

from tests.conftest import S3_KEY, S3_SECRET, require_module, s3_bucket

from . import sample_plugin

feast = require_module("feast")


def test_arrow_columns_get_the_feast_types_that_hold_them():
    from feast import types as ft

    assert feast_type(pa.int8()) == ft.Int32 and feast_type(pa.uint16()) == ft.Int32
    assert feast_type(pa.int32()) == ft.Int32
    assert feast_type(pa.uint32()) == ft.Int64 and feast_type(pa.int64()) == ft.Int64
    assert feast_type(pa.uint64()) is None  # would not fit Int64
    assert feast_type(pa.float32()) == ft.Float32 and feast_type(pa.float64()) == ft.Float64
    assert feast_type(pa.string()) == ft.String and feast_type(pa.large_binary()) == ft.Bytes
    assert feast_type(pa.bool_()) == ft.Bool
    assert feast_type(pa.list_(pa.float32(), 256)) == ft.Array(ft.Float32)
    assert feast_type(pa.list_(pa.int64())) == ft.Array(ft.Int64)
    assert feast_type(pa.list_(pa.list_(pa.float32(), 4), 3)) is None  # Feast arrays are one level
    assert feast_type(pa.float16()) is None and feast_type(pa.timestamp("us")) is None


def write_texts(folder, n):
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"t{i:03d}.txt").write_text("acgt" * (i + 1) + "\n")
    return folder


def spec(data, out, sinks):
    return {
        "run": {"output": str(out)},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.count", "k": 2}, {"stage": "test.embed"}],
        "sinks": sinks,
    }


def by_id(table: pa.Table, columns) -> dict:
    rows = table.select(["record_id", *columns]).to_pylist()
    return {r["record_id"]: tuple(r[c] for c in columns) for r in rows}


def online(repo, view, ids, features):
    store = feast.FeatureStore(repo_path=str(repo))
    got = store.get_online_features(
        features=[f"{view}:{f}" for f in features], entity_rows=[{"record_id": i} for i in ids]
    ).to_dict()
    return {i: tuple(got[f][k] for f in features) for k, i in enumerate(got["record_id"])}


def test_one_spec_fills_parquet_lancedb_and_feast_with_the_same_rows(tmp_path, s3_server, redis_server, ray_local):
    creds = s3_bucket(s3_server, "hpcprep-stores")
    data = write_texts(tmp_path / "in", 40)
    repo = tmp_path / "feast"
    sinks = [
        {"stage": "parquet", "path": str(tmp_path / "pq")},
        {"stage": "parquet", "path": "s3://hpcprep-stores/pq", **creds},
        {"stage": "lancedb", "uri": str(tmp_path / "lance"), "table": "t"},
        {"stage": "lancedb", "uri": "s3://hpcprep-stores/lance", "table": "t", **creds},
        {"stage": "feast", "repo": str(repo), "feature_view": "texts", "redis": redis_server},
    ]
    result = hpcprep.run(spec(data, tmp_path / "run", sinks), plugins=[sample_plugin], progress=False)
    assert result.counts["outputs"] == 40 and result.counts["errors"] == 0

    cols = ["source", "n", "vector"]
    local = pq.read_table(tmp_path / "pq")
    want = by_id(local, cols)
    assert len(want) == 40
    fs, path = filesystem_for("s3://hpcprep-stores/pq", S3Options(s3_server, S3_KEY, S3_SECRET, "us-east-1"))
    assert by_id(pq.read_table(path, filesystem=fs), cols) == want

    options = {
        "aws_endpoint": s3_server,
        "allow_http": "true",
        "aws_access_key_id": S3_KEY,
        "aws_secret_access_key": S3_SECRET,
        "aws_region": "us-east-1",
    }
    for uri, opts in [(str(tmp_path / "lance"), None), ("s3://hpcprep-stores/lance", options)]:
        table = lancedb.connect(uri, storage_options=opts).open_table("t").to_arrow()
        assert by_id(table, cols) == want, uri

    # Feast: the offline files hold the rows (and the time each was written) ...
    offline = pq.read_table(repo / "data" / "texts")
    assert by_id(offline, cols) == want
    assert offline.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    # ... and the online store answers for every record, with its values.
    report = result.manifest["sinks"]["sinks[4]"]
    assert report["features"] == ["source", "path", "size", "bytes", "n", "vector"] and report["rows"] == 40
    got = online(repo, "texts", sorted(want), cols)
    assert {i: (s, n, list(v)) for i, (s, n, v) in want.items()} == {
        i: (s, n, [float(x) for x in v]) for i, (s, n, v) in got.items()
    }
    assert online(repo, "texts", ["no-such-record"], ["n"]) == {"no-such-record": (None,)}
    # and the historical (offline) retrieval Feast does from the same files
    hist = (
        feast.FeatureStore(repo_path=str(repo))
        .get_historical_features(
            entity_df=offline.select(["record_id", "event_timestamp"]).to_pandas(), features=["texts:n"]
        )
        .to_df()
    )
    assert dict(zip(hist["record_id"], hist["n"], strict=True)) == {i: v[1] for i, v in want.items()}

    manifest_text = (tmp_path / "run" / "manifest.json").read_text()
    assert S3_SECRET not in manifest_text and S3_KEY not in manifest_text


def test_a_resumed_run_puts_only_committed_rows_online(tmp_path, redis_server, ray_local):
    data = write_texts(tmp_path / "in", 30)
    repo = tmp_path / "feast"
    s = spec(data, tmp_path / "run", [{"stage": "feast", "repo": str(repo), "redis": redis_server}])
    s["run"]["commit_every"] = 10
    interrupted_run(s, groups=1, plugins=[sample_plugin], progress=False)
    assert not (repo / "registry.db").exists()  # registered and materialised only when the run ends
    first = pq.read_table(repo / "data" / "records")
    assert first.num_rows == 10
    # Another attempt's leftovers of a group: a file the resume must drop, never load.
    stray = first.slice(0, 3).set_column(2, "n", pa.array([-1, -1, -1]))
    name = next((repo / "data" / "records").glob("part-g00000-*.parquet")).name.split("-")
    pq.write_table(stray, repo / "data" / "records" / f"part-g00001-deadattempt-{name[-1]}")

    result = hpcprep.run(s, plugins=[sample_plugin], progress=False, resume=True)
    assert result.counts["outputs"] == 30
    offline = pq.read_table(repo / "data" / "records")
    assert offline.num_rows == 30 and -1 not in offline["n"].to_pylist()
    want = by_id(offline, ["n"])
    assert online(repo, "records", sorted(want), ["n"]) == want


def test_overwrite_replaces_the_repository_and_a_new_run_refuses_it(tmp_path, redis_server, ray_local):
    data = write_texts(tmp_path / "in", 5)
    repo = tmp_path / "feast"
    sinks = [{"stage": "feast", "repo": str(repo), "redis": redis_server, "features": ["n"]}]
    hpcprep.run(spec(data, tmp_path / "run", sinks), plugins=[sample_plugin], progress=False)
    with pytest.raises(RunError, match="holds an earlier run's output; pass --overwrite"):
        hpcprep.run(spec(data, tmp_path / "run2", sinks), plugins=[sample_plugin], progress=False)
    first = pq.read_table(repo / "data" / "records")["record_id"].to_pylist()
    (data / "t004.txt").unlink()
    result = hpcprep.run(spec(data, tmp_path / "run", sinks), plugins=[sample_plugin], progress=False, overwrite=True)
    report = result.manifest["sinks"]["sinks[0]"]
    assert report["features"] == ["n"] and report["offline_only"] == ["bytes", "path", "size", "source", "vector"]
    now = pq.read_table(repo / "data" / "records")["record_id"].to_pylist()
    assert len(now) == 4  # not 9: the first run's files are gone
    (gone,) = set(first) - set(now)
    # nor are its rows still online
    answers = online(repo, "records", [gone, *now], ["n"])
    assert answers[gone] == (None,) and all(answers[i][0] is not None for i in now)


def test_clear_errors_before_the_run_starts(tmp_path):
    closed = FeastSink({"repo": str(tmp_path / "r"), "redis": "127.0.0.1:1"})
    assert any(p.startswith("redis: cannot reach the online store at 127.0.0.1:1") for p in closed.problems())
    bad = FeastSink(
        {"repo": str(tmp_path / "r"), "online": False, "feature_view": "my-view", "features": ["record_id"]}
    )
    problems = bad.problems()
    assert any("feature_view: 'my-view' is not a Feast name" in p for p in problems)
    assert any("features: ['record_id'] are the entity key" in p for p in problems)
    assert FeastSink({"repo": str(tmp_path / "r"), "online": False}).problems() == []
    with pytest.raises(hpcprep.SpecError, match="sinks\\[0\\] \\(feast\\) reads column 'no_such_column'"):
        sinks = [{"stage": "feast", "repo": str(tmp_path / "r"), "online": False, "features": ["no_such_column"]}]
        hpcprep.run(spec(tmp_path, tmp_path / "run", sinks), plugins=[sample_plugin], progress=False)
