"""Runs through Ray Data: bad records to the errors table, the books balance, manifests, outputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep.runner import RunError

from . import sample_plugin


def make_files(folder, n, poisoned=()):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = f"record {i}\n" + ("x" * i) + ("\nPOISON" if i in poisoned else "") + "\n"
        (folder / f"f{i:03d}.txt").write_text(body)
    return folder


def spec_for(tmp_path, data, encoders, **sink):
    out = tmp_path / "out"
    return {
        "run": {"output": str(out), "name": "t"},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": encoders,
        "sinks": [{"stage": "parquet", "path": str(out / "table"), **sink}],
    }


def test_poisoned_batch_goes_to_errors_and_counts_reconcile(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 20, poisoned={3, 7, 8})
    big = data / "huge.bin"
    big.write_bytes(b"\0" * 5000)  # over max_bytes: the reader reports it
    spec = spec_for(tmp_path, data, [{"stage": "test.count", "k": 3}])
    spec["reader"]["max_bytes"] = 4096
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)

    errors = result.errors().to_pylist()
    bad_sources = sorted(e["source"].rsplit("/", 1)[1] for e in errors)
    assert bad_sources == ["f003.txt", "f007.txt", "f008.txt", "huge.bin"]
    by_source = {e["source"].rsplit("/", 1)[1]: e for e in errors}
    assert by_source["f007.txt"]["stage"] == "encoders[0]:test.count"
    assert by_source["f007.txt"]["error_type"] == "RecordError"
    assert "contains 'POISON'" in by_source["f007.txt"]["message"]
    assert by_source["f007.txt"]["record_id"] == hpcprep.record_id(str(data / "f007.txt"))
    assert by_source["huge.bin"]["stage"] == "reader:files"
    assert "max_bytes=4096" in by_source["huge.bin"]["message"]

    table = pq.read_table(tmp_path / "out" / "table")
    assert table.num_rows == 17
    for n, raw in zip(table["n"].to_pylist(), table["bytes"].to_pylist()):
        assert n == 3 * len(raw)
    c = result.counts
    assert (c["inputs"], c["outputs"], c["errors"], c["balanced"]) == (21, 17, 4, True)
    stages = {s["where"]: s for s in result.manifest["stages"]}
    assert stages["reader"]["inputs"] == 21 and stages["reader"]["rows_out"] == 20
    assert stages["reader"]["errors"] == 1
    assert stages["encoders[0]"]["rows_in"] == 20 and stages["encoders[0]"]["errors"] == 3
    assert stages["sinks[0]"]["rows_in"] == 17


def test_manifest_contents(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 5)
    spec = spec_for(tmp_path, data, [{"stage": "test.count"}, {"stage": "test.embed"}], secret_key="hunter2")
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    path = tmp_path / "out" / "manifest.json"
    text = path.read_text()
    m = json.loads(text)
    assert m == result.manifest or m["counts"] == result.manifest["counts"]
    for key in ("spec", "plugins", "counts", "stages", "cluster", "started", "finished", "inputs"):
        assert key in m, key
    assert "hunter2" not in text, "secrets never reach the manifest"
    assert m["notes"] == ["encoders[1] (test.embed): toy weights, not trained"]
    assert m["spec"]["sinks"][0]["secret_key"] == "***"
    assert m["spec"]["encoders"][0] == {"stage": "test.count", "poison": "POISON", "k": 1, "sleep": 0.0}
    assert m["plugins"]["hpcprep"] == hpcprep.__version__
    assert m["counts"] == {"inputs": 5, "outputs": 5, "errors": 0, "balanced": True}
    assert m["cluster"]["cpus"] == 2
    assert m["status"] == "complete" and m["finished"] >= m["started"]
    assert len(m["inputs"]) == 5
    for i in m["inputs"]:  # hashed by the read tasks that read them (manifest.input_sha256)
        assert i["sha256"] == hashlib.sha256(Path(i["source"]).read_bytes()).hexdigest()
    embed = [s for s in m["stages"] if s["stage"] == "test.embed"][0]
    assert embed["placement"]["compute"] == "actors" and "needs setup" in embed["placement"]["reason"]
    assert all(s["seconds"] >= 0 for s in m["stages"])
    vec = pq.read_table(tmp_path / "out" / "table").column("vector")
    assert len(vec) == 5


def test_only_whole_local_files_up_to_the_limit_are_hashed(tmp_path, monkeypatch):
    from hpcprep import manifest
    from hpcprep.stages import InputItem

    f = tmp_path / "a.txt"
    f.write_bytes(b"x" * 1000)
    whole = InputItem(source=str(f), index=0, size=1000)
    assert manifest.input_sha256(whole) == hashlib.sha256(b"x" * 1000).hexdigest()
    assert manifest.input_sha256(InputItem(source=str(f), index=0, size=1000, offset=0, length=500)) is None
    assert manifest.input_sha256(InputItem(source=str(f), index=0, size=1000, offset=500)) is None
    assert manifest.input_sha256(InputItem(source="s3://bucket/a.txt", index=0, size=1000)) is None
    assert manifest.input_sha256(InputItem(source=str(tmp_path / "gone.txt"), index=0, size=1000)) is None
    monkeypatch.setattr(manifest, "HASH_LIMIT", 999)
    assert manifest.input_sha256(whole) is None


def test_fanout_stage_balances_stage_by_stage(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 4, poisoned={2})  # files of 2 or 3 lines
    spec = spec_for(tmp_path, data, [{"stage": "test.lines"}])
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    lines = pq.read_table(tmp_path / "out" / "table").column("line").to_pylist()
    assert len(lines) == 2 + 2 + 3 + 2
    assert result.counts["balanced"] and result.counts["outputs"] == 9
    assert "fan-out" in result.counts["note"]


def test_record_ids_are_deterministic_across_runs(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 6)
    spec = spec_for(tmp_path, data, [{"stage": "test.lines"}])
    hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    first = sorted(pq.read_table(tmp_path / "out" / "table").column("record_id").to_pylist())
    hpcprep.run(spec, plugins=[sample_plugin], progress=False, overwrite=True)
    second = sorted(pq.read_table(tmp_path / "out" / "table").column("record_id").to_pylist())
    assert first == second and len(set(first)) == len(first)


def test_second_run_needs_overwrite_or_resume(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 2)
    spec = spec_for(tmp_path, data, [])
    hpcprep.run(spec, progress=False)
    with pytest.raises(RunError, match="not empty: pass --overwrite .* or --resume"):
        hpcprep.run(spec, progress=False)
    other = tmp_path / "notarun"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    spec2 = spec_for(tmp_path, data, [])
    spec2["run"]["output"] = str(other)
    with pytest.raises(RunError, match="refusing to delete"):
        hpcprep.run(spec2, progress=False, overwrite=True)
    assert (other / "precious.txt").read_text() == "keep me"


def test_inputs_that_cannot_be_listed_stop_the_run_before_its_output(tmp_path, ray_local):
    # the reader lists its inputs while Ray starts; a failure there is still the spec's error
    empty = tmp_path / "empty"
    empty.mkdir()
    for paths, message in (([str(tmp_path / "missing")], "missing"), ([str(empty)], "nothing matches")):
        spec = spec_for(tmp_path, empty, [])
        spec["reader"]["paths"] = paths
        with pytest.raises(hpcprep.SpecError, match=f"reader \\(files\\): .*{message}"):
            hpcprep.run(spec, progress=False)
        assert not (tmp_path / "out").exists()


def test_parquet_round_trip_with_partitions(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 6)
    spec = spec_for(tmp_path, data, [{"stage": "test.count"}], partition_cols=["size"], row_group_size=2)
    hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    parts = sorted(p.name for p in (tmp_path / "out" / "table").iterdir() if p.is_dir())
    assert parts == sorted({f"size={len((data / f'f{i:03d}.txt').read_bytes())}" for i in range(6)})
    written = pq.read_table(tmp_path / "out" / "table")
    # Read the written table back through the core parquet reader: same records, same ids.
    back = {
        "run": {"output": str(tmp_path / "back")},
        "reader": {"stage": "parquet", "paths": [str(tmp_path / "out" / "table")]},
        "sinks": [{"stage": "parquet", "path": str(tmp_path / "back" / "table")}],
    }
    result = hpcprep.run(back, progress=False)
    again = pq.read_table(tmp_path / "back" / "table")
    key = lambda t: sorted(zip(t["record_id"].to_pylist(), t["n"].to_pylist(), t["source"].to_pylist()))
    assert key(again) == key(written) and len(key(again)) == 6
    assert result.counts["inputs"] == 6


def test_gpu_stage_uses_cpu_variant_without_gpus(tmp_path, ray_local):
    data = make_files(tmp_path / "data", 3)
    spec = spec_for(tmp_path, data, [{"stage": "test.variant"}])
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    assert set(pq.read_table(tmp_path / "out" / "table").column("variant").to_pylist()) == {"cpu"}
    reason = result.manifest["stages"][1]["placement"]["reason"]
    assert "no GPU" in reason


def test_several_actor_stages_fit_a_small_cluster(tmp_path, ray_local):
    """Three stages that each want one actor per CPU, on 2 CPUs: fused into one pool, the
    run finishes (unfused they would ask for 6 CPUs and wait forever) and every stage
    still keeps its own statistics and errors."""
    data = make_files(tmp_path / "data", 12, poisoned={5})
    encoders = [
        {"stage": "test.embed"},
        {"stage": "test.count", "k": 2},
        {"stage": "test.embed", "placement": {"batch_size": 4}},
    ]
    result = hpcprep.run(spec_for(tmp_path, data, encoders), plugins=[sample_plugin], progress=False)
    c = result.counts
    assert (c["inputs"], c["outputs"], c["errors"], c["balanced"]) == (12, 11, 1, True)
    stages = {s["where"]: s for s in result.manifest["stages"]}
    assert stages["encoders[0]"]["rows_in"] == 12 and stages["encoders[0]"]["errors"] == 0
    assert stages["encoders[1]"]["rows_in"] == 12 and stages["encoders[1]"]["errors"] == 1
    assert stages["encoders[2]"]["rows_in"] == 11
    assert result.errors().to_pylist()[0]["stage"] == "encoders[1]:test.count"


def test_local_ray_keeps_idle_workers(monkeypatch):
    """A Ray hpcprep starts itself keeps idle workers alive (write tasks would otherwise start
    a new Python process per block); a cluster joined by address is left as it is."""
    import ray
    from hpcprep.ray_connection import start_ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    assert start_ray(None, 3)[0] is True
    assert start_ray("ray://head:10001", None) == (True, None, False)
    local, joined = calls
    assert local["num_cpus"] == 3 and local["include_dashboard"] is False
    assert local["_system_config"]["idle_worker_killing_time_threshold_ms"] >= 60_000
    assert "_system_config" not in joined and joined["address"] == "ray://head:10001"
