"""One table through every store: the measurements listed in the package docstring, as one dict per store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .measure import exact_top_k, latencies, recall_at_k, seconds
from .stores import ID, vector_array

LOOKUP_BATCHES = (1, 100, 10_000)
#: On S3 only single-row lookups: the S3 endpoint here (moto) copies the whole object for every ranged read, so
#: reading hundreds of scattered rows measures that copying, not S3.
S3_LOOKUP_BATCHES = (1,)
#: Intrinsic dimension of the synthetic embeddings (see ``embeddings_table``).
LATENT_DIM = 32
#: Rows per row group of the tuned Parquet store (pyarrow's default is one group of up to 1 Mi rows).
TUNED_ROW_GROUP = 16_384
#: Rows drawn at a time by ``embeddings_table`` (tables up to this size are the same as drawn in one go).
DRAW_CHUNK = 131_072
FILTER = ("category", 10)
"""The metadata predicate of the filtered search: ``category < 10``, a tenth of the rows."""


def embeddings_table(
    n: int, dim: int, seed: int = 0, clusters: int = 256, latent: int = LATENT_DIM
) -> tuple[pa.Table, np.ndarray]:
    """``n`` rows of ``record_id``, ``source``, ``category`` (0-99), ``score`` and a float32 ``vector`` of
    ``dim`` values, in id order as a run writes them; and 100 query vectors drawn the same way (not rows of the
    table). Vectors are points around ``clusters`` centres in a ``latent``-dimensional space, mapped linearly to
    ``dim`` dimensions with a little noise: real embeddings have a low intrinsic dimension, and without one the
    distances from a query to its whole cluster are nearly equal, so its ten nearest are decided by noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, latent))
    mapping = rng.standard_normal((latent, dim)) / np.sqrt(latent)

    def draw(m):
        points = centres[rng.integers(clusters, size=m)] + 0.5 * rng.standard_normal((m, latent))
        return (points @ mapping + 0.05 * rng.standard_normal((m, dim))).astype(np.float32)

    # Drawn DRAW_CHUNK rows at a time: the float64 intermediates of a million 768-dim rows would be 12 GB.
    vectors = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, DRAW_CHUNK):
        vectors[start : start + DRAW_CHUNK] = draw(min(DRAW_CHUNK, n - start))
    table = pa.table(
        {
            ID: pa.array([f"rec-{i:09d}" for i in range(n)]),
            "source": pa.array([f"shard-{i // 10_000:04d}.fa" for i in range(n)]),
            "category": pa.array(rng.integers(0, 100, size=n).astype(np.int32)),
            "score": pa.array(rng.random(n)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim),
        }
    )
    return table, draw(100)


def vector_column(table: pa.Table, name: str | None = None) -> str | None:
    """``name``, or the table's first column of fixed-size float vectors (None if it has none)."""
    if name:
        if name not in table.column_names:
            raise ValueError(f"no column {name!r} in the table (columns: {table.column_names})")
        return name
    for f in table.schema:
        if pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type):
            return f.name
    return None


def table_from_source(source: str | Path) -> pa.Table:
    """The table of a Parquet file or folder, or of a spec's ``parquet`` sink (the output of an earlier run)."""
    import pyarrow.parquet as pq

    path = Path(source)
    if path.suffix == ".toml":
        from ..spec import load_spec_dict

        spec, _ = load_spec_dict(path)
        sinks = [s for s in spec.get("sinks", []) if s.get("stage") == "parquet"]
        if not sinks:
            raise ValueError(f"{path}: the spec has no parquet sink whose output could be measured")
        path = Path(sinks[0]["path"])
        if not path.is_absolute():
            path = Path(source).parent / path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such Parquet file or folder (run the spec first?)")
    table = pq.read_table(path)
    if ID not in table.column_names:
        raise ValueError(f"{path}: the table has no {ID} column to look rows up by")
    return table


def _mb(table: pa.Table) -> float:
    return table.nbytes / 1e6


def bench_table(
    table: pa.Table,
    stores: list[Callable[[], object]],
    vector: str | None,
    *,
    queries: np.ndarray | None = None,
    n_queries: int = 50,
    k: int = 10,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> list[dict]:
    """Measure each store (a callable that makes it empty) on ``table``; one dict of figures per store. A store
    whose every search reads the whole table (a Parquet scan) or goes over the network row by row (LanceDB on S3)
    says how many queries it takes in ``max_queries``."""
    rng = np.random.default_rng(seed)
    n = table.num_rows
    ids = table.column(ID).to_pylist()
    small = [c for c in table.column_names if c != vector and not pa.types.is_nested(table.schema.field(c).type)]
    if vector:
        vecs = vector_array(table, vector)
        if queries is None:
            queries = vecs[rng.choice(n, size=min(n_queries, n), replace=False)]
        queries = np.asarray(queries, dtype=np.float32)[:n_queries]
        truth = [[ids[i] for i in row] for row in exact_top_k(vecs, queries, k)]
        mask = None
        if FILTER[0] in table.column_names:
            mask = pc.less(table.column(FILTER[0]), FILTER[1]).to_numpy(zero_copy_only=False)
            truth_f = [[ids[i] for i in row] for row in exact_top_k(vecs, queries, k, mask)]
    extra = max(1, n // 100)
    appended = table.slice(0, extra)
    appended = appended.set_column(0, ID, pa.array([f"{i}-appended" for i in appended.column(ID).to_pylist()]))
    changed_rows = sorted(rng.choice(n, size=min(1000, n), replace=False).tolist())
    changed = table.take(pa.array(changed_rows))
    numeric = [c for c in small if pa.types.is_floating(table.schema.field(c).type)]
    updated = "score" if "score" in numeric else (numeric[0] if numeric else None)
    if updated:
        i = changed.schema.get_field_index(updated)
        changed = changed.set_column(i, updated, pa.array([-1.0] * len(changed), changed.schema.field(i).type))

    results = []
    for make in stores:
        store = make()
        label = f"{store.name} [{store.place.kind}]"
        log(f"{label}: ingest {n} rows")
        row: dict = {"store": store.name, "place": store.place.kind}
        t, _ = seconds(lambda s=store: s.ingest(table))
        row["ingest"] = {"seconds": round(t, 3), "rows_per_s": round(n / t), "mb_per_s": round(_mb(table) / t, 1)}
        if hasattr(store, "index_ids"):
            row["id_index_seconds"] = round(seconds(store.index_ids)[0], 3)
        size = store.size_bytes()
        row["size_bytes"] = size
        row["size_over_arrow"] = round(size / table.nbytes, 3)
        if hasattr(store, "scan"):
            t, got = seconds(store.scan)
            assert got.num_rows == n, f"{label}: scan returned {got.num_rows} rows of {n}"
            row["scan"] = {"seconds": round(t, 3), "mb_per_s": round(_mb(table) / t, 1)}
            t, got = seconds(lambda s=store: s.project(small))
            row["projection"] = {"columns": small, "seconds": round(t, 3), "mb_per_s": round(_mb(got) / t, 1)}
        log(f"{label}: lookups by id")
        row["lookup"] = {}
        remote = store.place.kind == "s3"
        for b in S3_LOOKUP_BATCHES if remote else LOOKUP_BATCHES:
            if b > n:
                continue
            calls = 5 if remote or b >= 10_000 else 20
            batches = [[ids[i] for i in rng.choice(n, size=b, replace=False)] for _ in range(calls)]
            row["lookup"][str(b)] = latencies(store.lookup, batches)
        row["search"], row["filtered_search"] = [], []
        if vector:
            for setting in store.settings():
                log(f"{label}: search, {setting.label}")
                built = store.use(setting)
                m = min(len(queries), store.max_queries or len(queries))
                plain = _searched(store, queries[:m], truth[:m], k, None)
                row["search"].append({"setting": setting.label, "index_seconds": round(built, 3), **plain})
                if mask is not None:
                    filtered = _searched(store, queries[:m], truth_f[:m], k, FILTER)
                    row["filtered_search"].append({"setting": setting.label, **filtered})
        log(f"{label}: append {extra} rows, update {len(changed)} rows")
        row["append"] = {"rows": extra, "seconds": round(seconds(lambda s=store: s.append(appended))[0], 3)}
        if updated:
            t = seconds(lambda s=store: s.update(changed, updated))[0]
            row["update"] = {"rows": len(changed), "column": updated, "seconds": round(t, 3)}
        if hasattr(store, "close"):
            store.close()
        results.append(row)
    return results


def _has_entries(place) -> bool:
    import pyarrow.fs as pafs

    fs, root = place.fs()
    return bool(fs.get_file_info(pafs.FileSelector(root, recursive=False, allow_not_found=True)))


def _searched(store, queries: np.ndarray, truth: list, k: int, where) -> dict:
    """Latency of ``store.search`` over ``queries`` and the recall@k of its answers against ``truth``."""
    found: list = []
    lat = latencies(lambda q: found.append(store.search(q, k, where)), queries)
    return {**lat, "recall_at_10": recall_at_k(found[1:], truth)}  # found[0]: the untimed warm-up call


def bench_source(
    source: str | Path,
    workdir: Path,
    *,
    vector: str | None = None,
    s3_uri: str | None = None,
    redis: str | None = None,
    queries: int = 50,
    log: Callable[[str], None] = print,
) -> dict:
    """``hpcprep bench storage``: the table of ``source`` (a Parquet file or folder, or a spec whose parquet sink
    wrote one) in Parquet and LanceDB under ``workdir``, on ``s3_uri`` too (endpoint and keys from ``AWS_*``) and
    in Feast with the Redis at ``redis``; results as ``benchmarks/storage.py`` writes them (no DNA rows)."""
    from .feast_store import FeastStore
    from .stores import S3_LANCE, LanceStore, ParquetStore, Place

    for place in [Place(str(workdir))] + ([Place(s3_uri)] if s3_uri else []):
        if place.size_bytes() or _has_entries(place):
            raise ValueError(f"{place.uri} is not empty: the benchmark writes its stores into an empty place only")
    table = table_from_source(source)
    vec = vector_column(table, vector)
    local = Place(str(Path(workdir) / "local"))
    stores: list[Callable[[], object]] = [
        lambda: ParquetStore(local.child("pq-default"), vec, None, "parquet (pyarrow default row groups)"),
        lambda: ParquetStore(local.child("pq-tuned"), vec, TUNED_ROW_GROUP, "parquet (16 k-row groups)"),
        lambda: LanceStore(local.child("lance"), vec),
    ]
    if redis:
        stores.append(lambda: FeastStore(Path(workdir) / "feast", redis, vec))
    if s3_uri:
        remote = Place(s3_uri)
        stores += [
            lambda: ParquetStore(remote.child("pq-tuned"), vec, TUNED_ROW_GROUP, "parquet (16 k-row groups)"),
            lambda: LanceStore(remote.child("lance"), vec, **S3_LANCE),
        ]
    figures = bench_table(table, stores, vec, n_queries=queries, log=log)
    name = Path(source).name
    return {
        "benchmark": "storage",
        "source": str(source),
        "parameters": {"rows": [table.num_rows], "queries": queries, "k": 10, "vector": vec},
        "tables": [
            {
                "name": name,
                "rows": table.num_rows,
                "dim": table.schema.field(vec).type.list_size if vec else 0,
                "arrow_bytes": table.nbytes,
                "stores": figures,
            }
        ],
    }
