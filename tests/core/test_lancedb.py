"""The ``lancedb`` sink and ``hpcprep search``: create / append / overwrite, resume,
ANN index with its recall against exact search, and the search CLI.

One module because these tests share one expensive fixture (an indexed table built by a
real run) and the helpers that write inputs and read the table back; the search tests
read the table the sink tests made."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import hpcprep
import lancedb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hpcprep.builtins.lancedb_sink import WRITE_COLUMN, LanceDBSinkParams, conform, stored_columns, to_lance_table
from hpcprep.runner import RunError
from hpcprep.search import SearchError, nearest, read_query_vector, search_table
from hpcprep.testing import interrupted_run
from pydantic import Field

from tests.conftest import S3_KEY, S3_SECRET, s3_bucket

DIM = 32
CLUSTERS = 16
CENTERS = np.random.default_rng(7).standard_normal((CLUSTERS, DIM)).astype(np.float32) * 3


def embed(record_id: str, noise: float = 0.35) -> tuple[int, np.ndarray]:
    """The cluster and vector of a record: seeded by its id, so runs agree."""
    seed = int.from_bytes(hashlib.blake2b(record_id.encode(), digest_size=8).digest(), "little")
    rng = np.random.default_rng(seed)
    cluster = int(rng.integers(CLUSTERS))
    return cluster, CENTERS[cluster] + noise * rng.standard_normal(DIM).astype(np.float32)


class EmbedParams(hpcprep.Params):
    noise: float = Field(0.35, ge=0, description="spread of each cluster around its centre")


class ClusterEmbed(hpcprep.Encoder):
    """A vector near one of 16 cluster centres, drawn from an RNG seeded by the record id."""

    name = "lancetest.embed"
    Params = EmbedParams
    batch_size = 512
    outputs = (
        hpcprep.Column("vector", f"fixed_size_list<float32>[{DIM}]", "clustered random vector"),
        hpcprep.Column("cluster", "int64", "the cluster the vector was drawn around"),
    )

    def encode(self, batch):
        pairs = [embed(str(r), self.params.noise) for r in batch["record_id"]]
        if not pairs:
            return {"vector": np.zeros((0, DIM), np.float32), "cluster": np.zeros(0, np.int64)}
        return {
            "vector": np.stack([v for _, v in pairs]).astype(np.float32),  # a Ray tensor column
            "cluster": np.array([c for c, _ in pairs], dtype=np.int64),
        }


@hpcprep.hookimpl
def hpcprep_register_encoders(register):
    register(ClusterEmbed)


PLUGIN = sys.modules[__name__]
TABLE = "vecs"


def write_inputs(folder: Path, files: int, rows: int) -> list[str]:
    """Parquet inputs; the parquet reader derives record ids from path and row."""
    folder.mkdir(parents=True)
    paths = []
    for f in range(files):
        path = folder / f"part{f}.parquet"
        pq.write_table(pa.table({"n": np.arange(rows) + f * rows, "label": [f"f{f}r{i}" for i in range(rows)]}), path)
        paths.append(str(path))
    return paths


def expected_ids(paths: list[str], rows: int) -> set[str]:
    return {hpcprep.record_id(p, i) for p in paths for i in range(rows)}


def spec(inputs: Path, out: Path, uri, commit_every: int = 1, **sink) -> dict:
    return {
        "run": {"output": str(out), "commit_every": commit_every},
        "reader": {"stage": "parquet", "paths": [str(inputs)]},
        "encoders": [{"stage": "lancetest.embed"}],
        "sinks": [{"stage": "lancedb", "uri": str(uri), "table": TABLE, **sink}],
    }


def run(spec_dict: dict, **kwargs):
    return hpcprep.run(spec_dict, plugins=[PLUGIN], progress=False, **kwargs)


def open_table(uri: Path):
    return lancedb.connect(str(uri)).open_table(TABLE)


def commits(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "_state" / "commits.jsonl").read_text().splitlines()]


def search_cli(*args: str):
    from hpcprep.cli import cli
    from hpcprep.plugins import PluginRegistry

    return CliRunner().invoke(cli, ["search", *args], obj={"registry": PluginRegistry()})


# -- create, append, overwrite -----------------------------------------------------------


def test_create_refuse_append_overwrite(tmp_path, ray_local):
    small = 40
    paths = write_inputs(tmp_path / "in", 2, small)
    ids = expected_ids(paths, small)
    uri = tmp_path / "db"

    # create: two commit groups, every record once, vectors as the encoder made them.
    r1 = run(spec(tmp_path / "in", tmp_path / "run1", uri, mode="create"))
    tbl = open_table(uri)
    assert tbl.count_rows() == 2 * small
    assert tbl.schema.field("vector").type == pa.list_(pa.float32(), DIM)
    got = tbl.to_arrow()
    assert set(got["record_id"].to_pylist()) == ids
    rid = sorted(ids)[3]
    row = got.filter(pa.compute.equal(got["record_id"], rid))
    cluster, vec = embed(rid)
    np.testing.assert_allclose(row["vector"][0].values.to_numpy(), vec, rtol=1e-6)
    assert row["cluster"][0].as_py() == cluster
    assert r1.counts["balanced"] and r1.counts["outputs"] == 2 * small
    report = r1.manifest["sinks"]["sinks[0]"]
    assert report["rows"] == 2 * small and report["table"] == TABLE and report["dimension"] == DIM
    assert sorted(c["sinks"]["sinks[0]"]["rows"] for c in commits(tmp_path / "run1")) == [small, small]

    # create again into the existing table: a clear error, and the table is untouched.
    with pytest.raises(
        RunError, match=r"sinks\[0\] \(lancedb\): .*table 'vecs' in .* already exists.*overwrite.*append"
    ):
        run(spec(tmp_path / "in", tmp_path / "run2", uri, mode="create"))
    assert open_table(uri).count_rows() == 2 * small

    # append: every record twice, from two runs.
    r3 = run(spec(tmp_path / "in", tmp_path / "run3", uri, mode="append"))
    assert r3.manifest["sinks"]["sinks[0]"]["rows"] == 4 * small
    assert r3.manifest["sinks"]["sinks[0]"]["rows_written"] == 2 * small
    got = open_table(uri).to_arrow()
    assert got.num_rows == 4 * small
    rids = got["record_id"].to_pylist()
    assert set(rids) == ids and all(rids.count(i) == 2 for i in ids)
    runs = {w.split(":")[0] for w in got[WRITE_COLUMN].to_pylist()}
    assert len(runs) == 2

    # overwrite: back to one copy of each record.
    r4 = run(spec(tmp_path / "in", tmp_path / "run4", uri, mode="overwrite"))
    got = open_table(uri).to_arrow()
    assert got.num_rows == 2 * small and sorted(got["record_id"].to_pylist()) == sorted(ids)
    assert r4.manifest["sinks"]["sinks[0]"]["mode"] == "overwrite"

    # --overwrite of the run that created the table replaces it, even in create mode.
    run(spec(tmp_path / "in", tmp_path / "run4", uri, mode="create"), overwrite=True)
    assert open_table(uri).count_rows() == 2 * small


def test_resume_removes_rows_of_interrupted_attempts_only(tmp_path, ray_local):
    small = 30
    paths = write_inputs(tmp_path / "in", 2, small)
    uri, out = tmp_path / "db", tmp_path / "run"
    s = spec(tmp_path / "in", out, uri)
    interrupted_run(s, groups=1, plugins=[PLUGIN], progress=False)
    tbl = open_table(uri)
    assert tbl.count_rows() == small
    run_id = json.loads(next((out / "_state").glob("lancedb-*.json")).read_text())["run_id"]

    # What an interrupted attempt leaves behind: rows of group 1 (and late ones of the
    # committed group 0) from another attempt of this run; plus rows of another run.
    template = tbl.to_arrow().slice(0, 3)

    def tagged(tag):
        return template.set_column(template.schema.get_field_index(WRITE_COLUMN), WRITE_COLUMN, pa.array([tag] * 3))

    tbl.add(tagged(f"{run_id}:g00001:deadattempt:t1"))
    tbl.add(tagged(f"{run_id}:g00000:deadattempt:t2"))
    tbl.add(tagged("someotherrun:g00001:x:t3"))
    assert tbl.count_rows() == small + 9

    result = run(s, resume=True)
    got = open_table(uri).to_arrow()
    writes = got[WRITE_COLUMN].to_pylist()
    assert not any("deadattempt" in w for w in writes)
    assert sum(w.startswith("someotherrun:") for w in writes) == 3
    ours = [r for r, w in zip(got["record_id"].to_pylist(), writes) if w.startswith(run_id)]
    assert sorted(ours) == sorted(expected_ids(paths, small))
    report = result.manifest["sinks"]["sinks[0]"]
    assert report["rows"] == 2 * small + 3 and report["rows_written"] == 2 * small


# -- index, recall, search ---------------------------------------------------------------

N_FILES, N_ROWS = 4, 600  # 2400 vectors


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, ray_local):
    base = tmp_path_factory.mktemp("lance_index")
    paths = write_inputs(base / "in", N_FILES, N_ROWS)
    uri = base / "db"
    result = run(
        spec(
            base / "in",
            base / "run",
            uri,
            commit_every=0,  # one group of 4 inputs: write tasks append concurrently
            index="IVF_PQ",
            metric="l2",
            num_partitions=32,
            sample_rate=64,  # LanceDB trains at most rows / sample_rate partitions
            num_sub_vectors=8,
            report_recall=40,
        )
    )
    return {"uri": uri, "result": result, "ids": sorted(expected_ids(paths, N_ROWS)), "base": base}


def test_index_is_built_with_its_parameters(indexed):
    tbl = open_table(indexed["uri"])
    assert tbl.count_rows() == N_FILES * N_ROWS
    assert sorted(tbl.to_arrow()["record_id"].to_pylist()) == indexed["ids"]
    (commit,) = commits(indexed["base"] / "run")
    # one Lance commit for the group, of the fragments its write tasks wrote (small input
    # files share read, and so write, tasks)
    assert 1 <= commit["sinks"]["sinks[0]"]["fragments"] <= N_FILES
    (idx,) = [i for i in tbl.list_indices() if list(i.columns) == ["vector"]]
    stats = tbl.index_stats(idx.name)
    assert stats.index_type == "IVF_PQ" and stats.distance_type == "l2"
    assert stats.num_indexed_rows == N_FILES * N_ROWS and stats.num_unindexed_rows == 0
    assert idx.index_details["compression"]["num_sub_vectors"] == 8

    report = indexed["result"].manifest["sinks"]["sinks[0]"]
    assert report["index"]["type"] == "IVF_PQ"
    assert report["index"]["num_partitions"] == 32 and report["index"]["num_sub_vectors"] == 8
    assert "note" not in report["index"], report["index"]
    assert report["index"]["indexed_rows"] == N_FILES * N_ROWS
    assert report["recall"]["queries"] == 40 and report["recall"]["k"] == 10
    assert report["recall"]["recall"] >= 0.8, report["recall"]

    # The ANN path really goes through the compressed index: without re-ranking, PQ
    # distances are approximations of the exact ones.
    q = embed(indexed["ids"][0])[1]
    rough = search_table(tbl, q, "vector", 5, refine_factor=0)["_distance"].to_numpy()
    exact = search_table(tbl, q, "vector", 5, exact=True)["_distance"].to_numpy()
    assert exact[0] == pytest.approx(0, abs=1e-4)
    assert not np.allclose(rough, exact, rtol=1e-4)


def test_recall_at_10_against_exact_search(indexed):
    uri = str(indexed["uri"])
    rng = np.random.default_rng(1)
    queries = rng.choice(indexed["ids"], size=60, replace=False)
    hits = 0
    for rid in queries:
        ann = nearest(uri, TABLE, record_id=rid, k=10)
        exact = nearest(uri, TABLE, record_id=rid, k=10, exact=True)
        assert [r["_distance"] for r in exact] == sorted(r["_distance"] for r in exact)
        hits += len({r["record_id"] for r in ann} & {r["record_id"] for r in exact})
    recall = hits / (10 * len(queries))
    # For scale: probing a single one of the 32 partitions.
    one = (
        sum(
            len(
                {r["record_id"] for r in nearest(uri, TABLE, record_id=rid, k=10, nprobes=1)}
                & {r["record_id"] for r in nearest(uri, TABLE, record_id=rid, k=10, exact=True)}
            )
            for rid in queries[:20]
        )
        / 200
    )
    print(
        f"\nIVF_PQ (32 partitions, 8 sub-vectors) recall@10 on {N_FILES * N_ROWS} vectors, 60 queries: "
        f"{recall:.3f} (default nprobes), {one:.3f} (nprobes=1, 20 queries); "
        f"sink report: {indexed['result'].manifest['sinks']['sinks[0]']['recall']['recall']}"
    )
    assert recall >= 0.8


def test_search_cli_by_id_and_by_vector_file(indexed, tmp_path):
    uri = str(indexed["uri"])
    rid = indexed["ids"][17]
    cluster, vec = embed(rid)

    res = search_cli(uri, "--table", TABLE, "--id", rid, "-k", "5", "--json")
    assert res.exit_code == 0, res.output
    rows = json.loads(res.output)
    assert len(rows) == 5
    assert rows[0]["record_id"] == rid and rows[0]["_distance"] == pytest.approx(0, abs=1e-4)
    assert [r["_distance"] for r in rows] == sorted(r["_distance"] for r in rows)
    assert all(r["cluster"] == cluster for r in rows)  # clusters are far apart
    assert {"source", "label", "n"} <= set(rows[0]) and "vector" not in rows[0] and WRITE_COLUMN not in rows[0]

    npy = tmp_path / "q.npy"
    np.save(npy, vec)
    txt = tmp_path / "q.txt"
    txt.write_text(
        "[" + ", ".join(f"{x:.9g}" for x in vec[:10]) + ",\n" + " ".join(f"{x:.9g}" for x in vec[10:]) + "]\n"
    )
    for f in (npy, txt):
        res = search_cli(uri, "--table", TABLE, "--vector-file", str(f), "-k", "3")
        assert res.exit_code == 0, res.output
        header, *lines = res.output.strip().splitlines()
        assert header == "distance\trecord_id\tsource" and len(lines) == 3
        dist, first_id, source = lines[0].split("\t")
        assert first_id == rid and float(dist) == pytest.approx(0, abs=1e-4) and source.endswith(".parquet")

    # Errors a person can act on.
    res = search_cli(uri, "--table", "nope", "--id", rid)
    assert res.exit_code == 2 and "no table 'nope'" in res.output and TABLE in res.output
    res = search_cli(uri, "--table", TABLE, "--id", "no-such-id")
    assert res.exit_code == 2 and "no-such-id" in res.output
    assert "name a record by a record_id (a hash of the source and the position, e.g. '" in res.output
    res = search_cli(str(tmp_path / "missing"), "--table", TABLE, "--id", rid)
    assert res.exit_code == 2 and "does not exist" in res.output
    short = tmp_path / "short.txt"
    short.write_text("1 2 3")
    res = search_cli(uri, "--table", TABLE, "--vector-file", str(short))
    assert res.exit_code == 2 and "3 values" in res.output and f"dimension {DIM}" in res.output
    with pytest.raises(SearchError, match="exactly one"):
        nearest(uri, TABLE, vector=vec, record_id=rid)


# -- pieces without Ray ------------------------------------------------------------------


def test_equal_distances_come_in_the_order_of_their_sources(tmp_path):
    # a file and its copies have the same vector: the result is the same whatever order the table holds them
    vectors = np.array([[1, 0], [0, 1], [1, 0], [1, 0]], dtype=np.float32)
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):
        table = pa.table(
            {
                "record_id": [f"id{i}" for i in order],
                "source": [["GPL-3", "MIT", "GPL", "GPL-2"][i] for i in order],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors[order].reshape(-1)), 2),
            }
        )
        db = tmp_path / f"db{order[0]}"
        lancedb.connect(str(db)).create_table("t", table)
        rows = nearest(str(db), "t", vector=[1.0, 0.0], k=4, exact=True)
        assert [r["source"] for r in rows] == ["GPL", "GPL-2", "GPL-3", "MIT"]


def test_a_record_can_be_named_by_its_name_and_offset(tmp_path):
    # Genomics windows: record ids hash the file path, so a person names a window as chr3:8001000.
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    table = pa.table(
        {
            "record_id": ["a1b2c3d4e5f6:0", "a1b2c3d4e5f6:1", "a1b2c3d4e5f6:2", "0f0f0f0f0f0f:0"],
            "source": ["genome.fa"] * 3 + ["other.fa"],
            "name": ["chr3", "chr3", "chr3", "chrM"],
            "offset": [8_000_000, 8_001_000, 8_002_000, 0],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), 8),
        }
    )
    lancedb.connect(str(tmp_path / "db")).create_table("w", table)
    uri = str(tmp_path / "db")
    rows = nearest(uri, "w", record_id="chr3:8001000", k=1)
    assert rows[0]["record_id"] == "a1b2c3d4e5f6:1" and rows[0]["_distance"] == pytest.approx(0, abs=1e-6)
    assert nearest(uri, "w", record_id="chrM", k=1)[0]["record_id"] == "0f0f0f0f0f0f:0"  # one window: no offset
    with pytest.raises(SearchError, match=r"3 records of table 'w' have name 'chr3': add the offset"):
        nearest(uri, "w", record_id="chr3", k=1)
    with pytest.raises(SearchError, match=r"no record 'chr3:5'.*e\.g\. 'a1b2c3d4e5f6:0'.*NAME:OFFSET"):
        nearest(uri, "w", record_id="chr3:5", k=1)
    res = search_cli(uri, "--table", "w", "--id", "chr3:8002000", "-k", "2")
    header, first, _ = res.output.strip().splitlines()
    assert header == "distance\trecord_id\tsource\tname\toffset"
    assert first.split("\t")[1:] == ["a1b2c3d4e5f6:2", "genome.fa", "chr3", "8002000"]


def test_the_table_keeps_the_vector_ids_and_scalars_unless_told_otherwise():
    schema = pa.schema(
        [
            ("onehot", pa.list_(pa.uint8())),
            ("n", pa.int64()),
            ("source", pa.string()),
            ("bytes", pa.binary()),
            ("label", pa.dictionary(pa.int32(), pa.string())),
            ("record_id", pa.string()),
            ("other", pa.list_(pa.float32(), 4)),
            ("vector", pa.list_(pa.float32(), 4)),
            ("when", pa.timestamp("s")),
        ]
    )

    def params(**kw):
        return LanceDBSinkParams(uri="db", table="t", **kw)

    assert stored_columns(schema, params()) == ["vector", "record_id", "source", "n", "label", "when"]
    assert stored_columns(schema, params(columns=["onehot", "n"])) == ["vector", "onehot", "n"]
    with pytest.raises(KeyError, match=r"columns \['nope'\] are not in the records"):
        stored_columns(schema, params(columns=["nope"]))
    with pytest.raises(KeyError, match="set vector_column"):
        stored_columns(schema, params(vector_column="embedding"))


def test_read_query_vector(tmp_path):
    f = tmp_path / "v.txt"
    f.write_text("0.5, 1\n-2e-1;3 \n")
    np.testing.assert_allclose(read_query_vector(f), [0.5, 1, -0.2, 3])
    assert read_query_vector(f).dtype == np.float32
    npy = tmp_path / "v.npy"
    np.save(npy, np.arange(4.0)[None, :])
    np.testing.assert_allclose(read_query_vector(npy), [0, 1, 2, 3])

    f.write_text("1 2\n3 x4\n")
    with pytest.raises(SearchError, match=r"line 2: 'x4' is not a number"):
        read_query_vector(f)
    f.write_text("\n , \n")
    with pytest.raises(SearchError, match="no numbers"):
        read_query_vector(f)
    f.write_text("1 nan")
    with pytest.raises(SearchError, match="NaN"):
        read_query_vector(f)
    np.save(npy, np.zeros((2, 3)))
    with pytest.raises(SearchError, match=r"shape \(2, 3\)"):
        read_query_vector(npy)
    with pytest.raises(SearchError, match="does not exist"):
        read_query_vector(tmp_path / "none.npy")


def test_blocks_become_lance_tables():
    from ray.data.block import BlockAccessor

    block = BlockAccessor.batch_to_block(
        {
            "record_id": np.array(["a", "b", "c"], dtype=object),
            "vector": np.arange(12, dtype=np.float64).reshape(3, 4),
            "image": np.arange(12, dtype=np.int16).reshape(3, 2, 2),
        }
    )
    assert isinstance(block.schema.field("vector").type, pa.ExtensionType)  # Ray's tensor type
    out = to_lance_table(block, "vector")
    assert out.schema.field("vector").type == pa.list_(pa.float32(), 4)
    assert out["vector"][2].as_py() == [8, 9, 10, 11]
    assert out.schema.field("image").type == pa.list_(pa.list_(pa.int16(), 2), 2)
    assert out["image"][1].as_py() == [[4, 5], [6, 7]]

    # Plain lists of one length become vectors too; ragged ones, 2-D ones or ints do not.
    lists = pa.table({"vector": pa.array([[1.0, 2.0], [3.0, 4.0]], pa.list_(pa.float64()))})
    assert to_lance_table(lists, "vector").schema.field("vector").type == pa.list_(pa.float32(), 2)
    with pytest.raises(ValueError, match="different lengths"):
        to_lance_table(pa.table({"vector": pa.array([[1.0, 2.0], [3.0]])}), "vector")
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        to_lance_table(block, "image")
    with pytest.raises(ValueError, match="not floats"):
        to_lance_table(pa.table({"vector": pa.array([[1, 2]], pa.list_(pa.int64(), 2))}), "vector")
    with pytest.raises(KeyError, match="no column 'embedding'.*record_id"):
        to_lance_table(block, "embedding")

    # A block that does not fit the table says which column and why.
    from hpcprep.builtins.lancedb_sink import LanceDBSinkParams

    params = LanceDBSinkParams(uri="db", table="t")
    schema = pa.schema([("record_id", pa.string()), ("vector", pa.list_(pa.float32(), 8))])
    with pytest.raises(ValueError, match="dimension 4, but table 't' holds dimension 8"):
        conform(out.select(["record_id", "vector"]), schema, params)
    with pytest.raises(ValueError, match=r"column\(s\) \['image'\] are not in table 't'"):
        conform(out, schema, params)


def test_spec_problems_are_reported_before_running(tmp_path):
    from hpcprep.plugins import PluginRegistry
    from hpcprep.spec import SpecError, resolve

    paths = write_inputs(tmp_path / "in", 1, 3)
    bad = spec(
        tmp_path / "in",
        tmp_path / "run",
        tmp_path / "db",
        table="bad name",
        index="IVF_FLAT",
        num_sub_vectors=8,
        secret_key="s3cr3t-value",
    )
    with pytest.raises(SpecError) as err:
        resolve(bad, PluginRegistry(extra_plugins=[PLUGIN]))
    text = str(err.value)
    assert "not a valid LanceDB table name" in text and "num_sub_vectors applies to" in text
    assert "s3cr3t-value" not in text
    assert paths


def test_only_fragments_of_finished_write_tasks_are_committed_once_per_group(tmp_path):
    from hpcprep.builtins.lancedb_sink import LanceDBSink
    from hpcprep.stages import SinkContext
    from ray.data.block import BlockAccessor

    sink = LanceDBSink({"uri": str(tmp_path / "db"), "table": TABLE})
    ctx = SinkContext(run_dir=str(tmp_path / "run"), run_name="t", group=0, attempt="a1")
    sink.prepare(ctx)
    block = BlockAccessor.batch_to_block(
        {"record_id": np.array(["x", "y"], dtype=object), "vector": np.ones((2, 4), np.float32)}
    )
    kept, lost = sink.open_writer(ctx), sink.open_writer(ctx)
    kept.write(block)
    lost.write(block)
    result = kept.close()
    lost.close()  # wrote its fragment, then its task "died": its result never reaches the driver
    assert sink._open() is None  # fragments alone are not rows of a table
    report = sink.commit(ctx, [result])
    assert report["rows"] == 2 and report["fragments"] == 1
    table = open_table(tmp_path / "db")
    assert table.count_rows() == 2 and len(table.list_versions()) == 1

    # the next group appends in one more version; a count that does not match is an error
    ctx.group = 1
    writer = sink.open_writer(ctx)
    writer.write(block)
    with pytest.raises(RuntimeError, match="holds 2 rows written for commit group 1, but its write tasks reported 3"):
        sink.commit(ctx, [{**writer.close(), "rows": 3}])
    assert len(open_table(tmp_path / "db").list_versions()) == 2
    report = sink.finish(ctx)
    assert report["rows"] == 4 and report["dimension"] == 4 and "index" not in report


def _table_of_vectors(tmp_path, name: str, vectors: np.ndarray, **params):
    """A table filled through the sink's driver side, as a run does; returns (sink, finish report)."""
    from hpcprep.builtins.lancedb_sink import LanceDBSink
    from hpcprep.stages import SinkContext
    from ray.data.block import BlockAccessor

    sink = LanceDBSink({"uri": str(tmp_path / "db"), "table": name, **params})
    ctx = SinkContext(run_dir=str(tmp_path / name), run_name=name, group=0, attempt="a1")
    sink.prepare(ctx)
    writer = sink.open_writer(ctx)
    ids = np.array([f"r{i}" for i in range(len(vectors))], dtype=object)
    writer.write(BlockAccessor.batch_to_block({"record_id": ids, "vector": vectors}))
    sink.commit(ctx, [writer.close()])
    return sink, sink.finish(ctx)


def _exact_cosine(vectors: np.ndarray, q: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    return 1 - v @ q / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))


def test_the_metric_travels_with_the_table_to_a_plain_lancedb_search(tmp_path, monkeypatch):
    """index = auto (the default): a plain ``table.search()`` by any LanceDB client, which
    knows nothing of hpcprep, ranks by the spec's metric: exactly below AUTO_ANN_ROWS (one
    partition, searched whole), through an IVF_SQ index from there, whose recall@10 is in
    the manifest."""
    from hpcprep.builtins import lancedb_sink

    rng = np.random.default_rng(3)
    # clustered directions with norms from 0.1 to 100: cosine and l2 rank them differently
    dirs = CENTERS[rng.integers(0, CLUSTERS, 600)] + rng.standard_normal((600, DIM)).astype(np.float32)
    vectors = (dirs * rng.uniform(0.1, 100, (600, 1))).astype(np.float32)
    q = vectors[5] * 0.01
    exact = _exact_cosine(vectors, q)
    l2_top = np.argsort(((vectors - q) ** 2).sum(1))[:10]
    assert set(l2_top) != set(np.argsort(exact)[:10])  # the metrics disagree on these data

    _, report = _table_of_vectors(tmp_path, "small", vectors, metric="cosine")
    assert report["index"]["exact"] and report["index"]["metric"] == "cosine" and "recall" not in report
    got = lancedb.connect(str(tmp_path / "db")).open_table("small").search(q).limit(10).to_arrow()
    rows = [int(r[1:]) for r in got["record_id"].to_pylist()]
    assert rows == list(np.argsort(exact)[:10])
    assert np.allclose(got["_distance"].to_numpy(), exact[rows], atol=1e-5)

    monkeypatch.setattr(lancedb_sink, "AUTO_ANN_ROWS", 500)
    _, report = _table_of_vectors(tmp_path, "large", vectors, metric="cosine")
    assert report["index"]["type"] == "IVF_SQ" and "exact" not in report["index"]
    assert report["recall"]["queries"] == 100 and 0.8 <= report["recall"]["recall"] <= 1.0
    table = lancedb.connect(str(tmp_path / "db")).open_table("large")
    (idx,) = table.list_indices()
    assert idx.index_details["metric_type"] == "COSINE"
    got = table.search(q).limit(10).to_arrow()
    rows = [int(r[1:]) for r in got["record_id"].to_pylist()]
    cosine_top, l2_hits = set(np.argsort(exact)[:10]), len(set(rows) & set(l2_top))
    assert len(set(rows) & cosine_top) >= 8 > l2_hits  # ranked by cosine (to SQ's 8 bits), not l2

    # l2 is what LanceDB uses without an index: a small table needs none to be searched exactly
    _, report = _table_of_vectors(tmp_path, "plain", vectors[:100], metric="l2")
    assert "index" not in report
    _, report = _table_of_vectors(tmp_path, "off", vectors[:100], metric="cosine", index="none")
    assert "index" not in report


# -- S3 -------------------------------------------------------------------------------

KEY, SECRET = S3_KEY, S3_SECRET


@pytest.fixture(scope="module")
def s3_endpoint(s3_server):
    s3_bucket(s3_server, "hpcprep-lance")
    return s3_server


def test_lancedb_on_s3(tmp_path, s3_endpoint, ray_local, monkeypatch):
    paths = write_inputs(tmp_path / "in", 3, 20)
    creds = {"endpoint_url": s3_endpoint, "access_key": KEY, "secret_key": SECRET, "region": "us-east-1"}
    uri = "s3://hpcprep-lance/dbs/one"
    result = run(spec(tmp_path / "in", tmp_path / "run", uri, commit_every=0, **creds))
    assert result.manifest["sinks"]["sinks[0]"]["rows"] == 60
    manifest_text = (tmp_path / "run" / "manifest.json").read_text()
    assert SECRET not in manifest_text and KEY not in manifest_text

    options = {
        "aws_endpoint": s3_endpoint,
        "allow_http": "true",
        "aws_access_key_id": KEY,
        "aws_secret_access_key": SECRET,
        "aws_region": "us-east-1",
    }
    rid = sorted(expected_ids(paths, 20))[5]
    rows = nearest(uri, TABLE, record_id=rid, k=3, storage_options=options)
    assert rows[0]["record_id"] == rid and rows[0]["_distance"] == pytest.approx(0, abs=1e-4)

    # The CLI takes the endpoint and keys from the environment, as the AWS tools do.
    for name, value in [
        ("AWS_ENDPOINT_URL", s3_endpoint),
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
    ]:
        monkeypatch.setenv(name, value)
    res = search_cli(uri, "--table", TABLE, "--id", rid, "-k", "2", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)[0]["record_id"] == rid
