"""The storage benchmark's measurements (``hpcprep bench storage``, ``benchmarks/storage.py``): recall against
exact search on a planted case, each store doing what it is timed doing, and the document made from results."""

from __future__ import annotations

import json

import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.storebench import bench_table, embeddings_table
from hpcprep.storebench.document import recommendations, write_document
from hpcprep.storebench.measure import exact_top_k, recall_at_k
from hpcprep.storebench.results import add_tables
from hpcprep.storebench.stores import LanceStore, ParquetStore, Place

from tests.conftest import require_module

from . import sample_plugin


def planted(n=3000, dim=8, seed=1):
    """A query at the origin, ten rows planted at distances 1..10 from it, every other row farther than 50."""
    rng = np.random.default_rng(seed)
    far = rng.standard_normal((n, dim))
    far = far / np.linalg.norm(far, axis=1, keepdims=True) * rng.uniform(50, 100, (n, 1))
    near_rows = rng.choice(n, size=10, replace=False)
    for rank, row in enumerate(near_rows):
        direction = rng.standard_normal(dim)
        far[row] = direction / np.linalg.norm(direction) * (rank + 1)
    category = np.where(np.arange(n) % 2 == 0, 5, 50).astype(np.int32)  # even rows pass `category < 10`
    table = pa.table(
        {
            "record_id": [f"r{i:05d}" for i in range(n)],
            "category": category,
            "score": np.zeros(n),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(far.astype(np.float32).ravel()), dim),
        }
    )
    return table, far, near_rows


def test_exact_search_and_recall_on_a_planted_case():
    table, vectors, near_rows = planted()
    q = np.zeros((1, vectors.shape[1]))
    top = exact_top_k(vectors, q, 10)[0]
    assert top.tolist() == near_rows.tolist()  # nearest first
    even = exact_top_k(vectors, q, 10, mask=np.arange(len(vectors)) % 2 == 0)[0]
    assert all(r % 2 == 0 for r in even) and set(near_rows[near_rows % 2 == 0]) <= set(even)
    truth = [[f"r{i:05d}" for i in top]]
    assert recall_at_k(truth, truth) == 1.0
    assert recall_at_k([truth[0][:5] + ["x1", "x2", "x3", "x4", "x5"]], truth) == 0.5
    assert recall_at_k([list(reversed(truth[0]))], truth) == 1.0  # order within the top 10 does not count
    assert recall_at_k([[]], truth) == 0.0
    rng = np.random.default_rng(3)
    v, qs = rng.standard_normal((500, 6)), rng.standard_normal((4, 6))
    brute = np.argsort(((v[None, :, :] - qs[:, None, :]) ** 2).sum(-1), axis=1, kind="stable")[:, :10]
    assert (exact_top_k(v, qs, 10) == brute).all()


def test_exact_search_in_chunks_equals_one_brute_force(monkeypatch):
    """The reference search compares a chunk of rows at a time (so a million 768-dim rows fit in memory): chunk
    borders, a mask and more queries than rows per chunk must not change its answer."""
    from hpcprep.storebench import measure

    rng = np.random.default_rng(5)
    v, qs = rng.standard_normal((1000, 6)).astype(np.float32), rng.standard_normal((7, 6))
    d = ((v[None, :, :].astype(np.float64) - qs[:, None, :]) ** 2).sum(-1)
    brute = np.argsort(d, axis=1, kind="stable")[:, :10]
    mask = rng.random(1000) < 0.3
    masked = np.flatnonzero(mask)[np.argsort(d[:, mask], axis=1, kind="stable")[:, :10]]
    monkeypatch.setattr(measure, "TOP_K_CHUNK", 37)
    assert (exact_top_k(v, qs, 10) == brute).all()
    assert (exact_top_k(v, qs, 10, mask) == masked).all()
    top = measure.TopK(qs, 10)
    for start in range(0, 1000, 250):  # rows streamed as a scan yields them
        top.add(v[start : start + 250], np.arange(start, min(start + 250, 1000)))
    assert (top.result() == brute).all()


def stores(tmp_path, redis=None):
    made = [
        lambda: ParquetStore(Place(str(tmp_path / "pd")), "vector", None, "parquet (default)"),
        lambda: ParquetStore(Place(str(tmp_path / "pt")), "vector", 512, "parquet (tuned)"),
        lambda: LanceStore(Place(str(tmp_path / "lance")), "vector", index_types=("IVF_HNSW_SQ",)),
    ]
    if redis:
        from hpcprep.storebench.feast_store import FeastStore

        made.append(lambda: FeastStore(tmp_path / "feast", redis, "vector"))
    return made


def test_every_store_answers_what_it_is_timed_answering(tmp_path, redis_server):
    require_module("feast")
    import redis

    host, port = redis_server.split(":")
    client = redis.Redis(host=host, port=int(port))
    client.set("someone-else", "theirs")  # the benchmark's Redis may hold other data
    table, vectors, near_rows = planted(n=2000)
    ids = table.column("record_id").to_pylist()
    want = [ids[i] for i in near_rows]
    for make in stores(tmp_path, redis_server):
        store = make()
        store.ingest(table)
        asked = [ids[7], ids[1500], ids[42]]
        got = store.lookup(asked)
        if isinstance(got, dict):  # Feast's online answer: one list per feature
            assert got["record_id"] == asked and got["category"] == [
                table["category"][i].as_py() for i in (7, 1500, 42)
            ]
        else:
            assert sorted(got.column("record_id").to_pylist()) == sorted(asked)
        if store.settings():
            store.use(store.settings()[0])  # exact
            assert store.search(np.zeros(8, np.float32), 10) == want, store.name
            filtered = store.search(np.zeros(8, np.float32), 10, ("category", 10))
            assert all(int(r[1:]) % 2 == 0 for r in filtered) and len(filtered) == 10
        changed = table.take(pa.array([7, 42]))
        changed = changed.set_column(2, "score", pa.array([-1.0, -1.0]))
        store.update(changed, "score")
        extra = table.slice(0, 5).set_column(0, "record_id", pa.array([f"new{i}" for i in range(5)]))
        store.append(extra)
        got = store.lookup([ids[7], ids[8], "new3"])
        if isinstance(got, dict):
            assert got["score"] == [-1.0, 0.0, 0.0]
        else:
            scores = dict(zip(got.column("record_id").to_pylist(), got.column("score").to_pylist(), strict=True))
            assert scores == {ids[7]: -1.0, ids[8]: 0.0, "new3": 0.0}, store.name
            assert store.scan().num_rows == 2005
        if hasattr(store, "close"):
            assert client.dbsize() > 2000
            store.close()
            assert [k for k in client.scan_iter() if k != b"someone-else"] == []  # its rows, and only those, gone
    assert client.get("someone-else") == b"theirs"


def test_bench_table_reports_every_measurement_and_exact_search_finds_the_planted_rows(tmp_path):
    table, _, _ = planted(n=3000)
    results = bench_table(table, stores(tmp_path), "vector", queries=np.zeros((3, 8), np.float32), log=lambda m: None)
    assert [r["store"] for r in results] == ["parquet (default)", "parquet (tuned)", "lancedb"]
    for r in results:
        assert r["ingest"]["rows_per_s"] > 0 and r["size_bytes"] > 0 and r["scan"]["mb_per_s"] > 0
        assert set(r["lookup"]) == {"1", "100"}  # 10 000 ids is more than the table has
        exact = [s for s in r["search"] if s["setting"].startswith("exact")]
        assert exact and all(s["recall_at_10"] == 1.0 for s in exact)
        assert all(s["recall_at_10"] == 1.0 for s in r["filtered_search"] if s["setting"].startswith("exact"))
        assert r["append"]["rows"] == 30 and r["update"] == {
            "rows": 1000,
            "column": "score",
            "seconds": r["update"]["seconds"],
        }
    tuned = pq.ParquetFile(tmp_path / "pt" / "part-00000.parquet")
    assert tuned.metadata.num_row_groups == 6  # 3000 rows (rewritten by the update) in groups of 512
    hnsw = [s for s in results[2]["search"] if s["setting"].startswith("IVF_HNSW_SQ")]
    assert hnsw and hnsw[0]["index_seconds"] > 0 and 0.0 <= hnsw[0]["recall_at_10"] <= 1.0


def test_the_document_comes_from_the_results(tmp_path):
    table, queries = embeddings_table(3000, 16, seed=2)
    figures = bench_table(table, stores(tmp_path), "vector", queries=queries, n_queries=5, log=lambda m: None)
    results = {
        "date": "2026-12-05T00:00:00+00:00",
        "seconds": 1.0,
        "machine": {"cpus": 2, "processor": "x", "memory_gib": 1, "pyarrow": "a", "lancedb": "b", "feast": "c"}
        | {"redis_server": "d", "s3": "none"},
        "parameters": {"rows": [3000], "dims": [16], "queries": 5, "k": 10},
        "tables": [{"name": "t", "rows": 3000, "dim": 16, "arrow_bytes": table.nbytes, "stores": figures}],
        "dna": [],
    }
    doc = tmp_path / "docs" / "storage.md"
    write_document(results, doc)
    text = doc.read_text()
    best_scan = max(figures, key=lambda s: s["scan"]["mb_per_s"])
    assert f"**Training scans**: {best_scan['store']} (local), {best_scan['scan']['mb_per_s']:,.0f} MB/s" in text
    assert all(line in text for line in recommendations(results))
    for s in figures:
        assert f"| {s['store']} (local) | {s['ingest']['rows_per_s']:,} " in text
    for png in ("storage_search.png", "storage_ingest.png", "storage_size.png", "storage_lookup.png"):
        assert (doc.parent / "img" / png).stat().st_size > 1000 and f"(img/{png})" in text


def test_a_later_run_adds_its_tables_and_the_document_says_which_run_measured_them(tmp_path):
    small, queries = embeddings_table(2000, 8, seed=3)
    large, _ = embeddings_table(4000, 8, seed=4)
    machine = {"cpus": 2, "processor": "x", "memory_gib": 1, "pyarrow": "a", "lancedb": "b", "feast": "c"}

    def figures(table, sub):
        return bench_table(table, stores(tmp_path / sub), "vector", queries=queries, n_queries=3, log=lambda m: None)

    def entry(name, table, sub):
        return {
            "name": name,
            "rows": table.num_rows,
            "dim": 8,
            "arrow_bytes": table.nbytes,
            "stores": figures(table, sub),
        }

    first = entry("emb-2000-d8", small, "a")
    results = {
        "date": "2026-12-05T00:00:00+00:00",
        "seconds": 1.0,
        "machine": machine | {"redis_server": "d", "s3": "none"},
        "parameters": {"rows": [2000], "dims": [8], "queries": 3, "k": 10},
        "tables": [first, entry("emb-9-d8", small, "b")],
        "dna": [
            {"form": "text", "store": "parquet", "place": "local", "size_bytes": 1, "bits_per_base": 8.0}
            | {"ingest_seconds": 0.1, "scan_mbases_per_s": 1.0}
        ],
    }
    later = {"date": "2026-12-06T00:00:00+00:00", "seconds": 2.0, "s3": False, "feast": False, "queries": 3}
    replaced = entry("emb-9-d8", large, "c") | {"left_out": ["not on S3 (--no-s3)", "no Feast (--no-feast)"]}
    added = add_tables(results, [replaced, entry("emb-4000-d8", large, "d")], later | {"machine": machine})
    assert [t["name"] for t in added["tables"]] == ["emb-2000-d8", "emb-4000-d8", "emb-9-d8"]
    assert added["tables"][0] is first and added["tables"][2] is replaced  # the other table kept, the named one new
    assert added["parameters"]["rows"] == [2000, 4000] and len(added["dna"]) == 1
    assert added["added"] == [later | {"machine": machine, "tables": ["emb-4000-d8", "emb-9-d8"]}]

    doc = tmp_path / "storage.md"
    write_document(added, doc)
    text = doc.read_text()
    assert (
        "(2026-12-06T00:00:00+00:00, 2 s, 2 CPUs, 1 GiB): emb-4000-d8, emb-9-d8, measured on local disk only (no S3), "
        "no Feast; 3 queries." in text
    )
    assert "## emb-4000-d8: 4,000 rows" in text and "## DNA windows" in text
    section = text[text.index("## emb-9-d8") :]
    assert section.split("\n")[2] == "Left out: not on S3 (--no-s3); no Feast (--no-feast)."
    assert "Left out" not in text[: text.index("## emb-9-d8")]


def test_the_command_measures_a_run_s_output(tmp_path, ray_local):
    data = tmp_path / "in"
    data.mkdir()
    # test.embed's vector is its record's length times (1, 2, 3, 4): lengths 2^i put no two rows at the same
    # distance from a third, so the exact top 10 has no ties for the stores to break differently.
    for i in range(17):
        (data / f"{i}.txt").write_text("x" * 2**i)
    out = tmp_path / "table"
    spec = {
        "run": {"output": str(tmp_path / "run")},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.embed"}],
        "sinks": [{"stage": "parquet", "path": str(out)}],
    }
    hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        f'[run]\noutput = "{tmp_path / "run"}"\n[reader]\nstage = "files"\npaths = ["{data}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{out}"\n'
    )
    for source in (out, spec_file):
        res = CliRunner().invoke(
            cli, ["bench", "storage", str(source), "--queries", "3", "--out", str(tmp_path / "r.json")]
        )
        assert res.exit_code == 0, res.output
        results = json.loads((tmp_path / "r.json").read_text())
        table = results["tables"][0]
        assert table["rows"] == 17 and table["dim"] == 4 and results["parameters"]["vector"] == "vector"
        assert [s["store"] for s in table["stores"]] == [
            "parquet (pyarrow default row groups)",
            "parquet (16 k-row groups)",
            "lancedb",
        ]
        assert all(
            x["recall_at_10"] == 1.0 for s in table["stores"] for x in s["search"] if x["setting"].startswith("exact")
        )
        assert "| lancedb (local) |" in res.output

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "someone's.txt").write_text("keep me")
    res = CliRunner().invoke(cli, ["bench", "storage", str(out), "--workdir", str(busy)])
    assert res.exit_code == 1 and f"{busy} is not empty" in res.output
    assert (busy / "someone's.txt").read_text() == "keep me" and len(list(busy.iterdir())) == 1

    no_sink = tmp_path / "nosink.toml"
    no_sink.write_text(f'[run]\noutput = "{tmp_path}/x"\n[reader]\nstage = "files"\npaths = ["{data}"]\n')
    res = CliRunner().invoke(cli, ["bench", "storage", str(no_sink)])
    assert res.exit_code == 1 and "the spec has no parquet sink" in res.output


def test_lookups_are_judged_on_the_largest_table_that_has_every_store():
    """A large table measured without Feast must not make the lookup recommendation forget Feast; scans and
    search still come from the largest table, and the IVF_PQ rows are read from it."""

    def store(name, scan, lookup_ms, search=()):
        return {
            "store": name,
            "place": "local",
            "size_over_arrow": 1.0,
            "scan": {"mb_per_s": scan},
            "lookup": {"1": {"p50_ms": lookup_ms}, "100": {"p50_ms": 10 * lookup_ms}},
            "search": [{"setting": s, "recall_at_10": r, "p50_ms": 1.0, "index_seconds": 2.0} for s, r in search],
        }

    pq_rows = [("IVF_PQ nprobes=10", 0.2), ("IVF_PQ nprobes=50", 0.21), ("IVF_PQ nprobes=10 refine=10", 0.6)]
    small = {"name": "small", "rows": 10, "dim": 4, "stores": [store("parquet", 100, 5.0), store("feast", 1, 0.5)]}
    large = {
        "name": "large",
        "rows": 100,
        "dim": 4,
        "stores": [store("parquet", 300, 6.0), store("lancedb", 200, 2.0, pq_rows)],
    }
    small["stores"].append(store("lancedb", 50, 1.0))
    lines = recommendations({"tables": [small, large]})
    assert lines[0].startswith("**Training scans**: parquet (local), 300 MB/s over the whole large table")
    assert (
        lines[1].startswith("**Online lookup by id, 1 id per call**: feast (local), p50 0.50 ms")
        and "; small)" in lines[1]
    )
    pq = next(x for x in lines if x.startswith("**Reading the IVF_PQ rows**"))
    assert "0.200 at nprobes=10 and 0.210 at nprobes=50, 0.600 with refine=10 (large)" in pq
