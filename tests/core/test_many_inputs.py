"""Many small inputs share read tasks; outputs are sized by rows, not by inputs; fixed-size
vectors reach Parquet as fixed-size lists with their shapes; the manifest splits the time."""

from __future__ import annotations

import json
import math

import hpcprep
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hpcprep import execution
from hpcprep.portable import portable_table, shapes_of
from hpcprep.reading import BLOCK_ROWS, MIN_SHARED, TASK_BYTES, TASK_ITEMS, _BlockBuilder, bundle_items
from hpcprep.stages import InputItem

from . import sample_plugin
from .test_runner import make_files, spec_for


def items(sizes):
    return [InputItem(f"/data/f{i}", i, size=s) for i, s in enumerate(sizes)]


def test_small_items_share_tasks_in_order():
    plan = items([100] * 20_000)
    bundles = bundle_items(plan, cpus=2)
    assert len(bundles) == math.ceil(20_000 / TASK_ITEMS)
    assert all(len(b) <= TASK_ITEMS for b in bundles)
    assert [i.index for b in bundles for i in b] == list(range(20_000))  # nothing lost, order kept


def test_large_items_keep_a_task_each_and_cpus_stay_busy():
    big = items([3 * TASK_BYTES] * 5)
    assert [len(b) for b in bundle_items(big, cpus=2)] == [1] * 5
    # inputs of equal size: at least four tasks per CPU while there are items for them, and
    # tasks that share items share at least MIN_SHARED, so they differ by a quarter at most
    for n in (32, 40, 45, 101):
        bundles = bundle_items(items([TASK_BYTES // 100] * n), cpus=2)
        assert len(bundles) == 8 and min(map(len, bundles)) >= MIN_SHARED
        assert max(map(len, bundles)) - min(map(len, bundles)) <= 1
    # fewer, and each input is a task of its own: 12 inputs in 8 tasks of one or two left
    # one CPU running 7 inputs while the other ran 5
    for n in (9, 12, 31):
        assert [len(b) for b in bundle_items(items([TASK_BYTES // 100] * n), cpus=2)] == [1] * n
    # unknown sizes count as the per-item cost only, and an empty plan has no task
    assert sum(map(len, bundle_items(items([None] * 9), cpus=1))) == 9
    assert bundle_items([], cpus=2) == []


def test_block_builder_joins_small_batches_and_keeps_unjoinable_ones_apart():
    bad = []
    builder = _BlockBuilder(lambda item, batch, exc: bad.append((item, type(exc).__name__)))
    item = InputItem("/data/f", 0)
    out = [builder.add(item, {"x": np.array([i])}) for i in range(BLOCK_ROWS)]
    assert all(o == [] for o in out[:-1])
    (block,) = out[-1]
    assert block.num_rows == BLOCK_ROWS and block["x"].to_pylist() == list(range(BLOCK_ROWS))
    assert builder.take() == []
    for x in ([1], ["text"]):  # int64 and string do not unify: two blocks, as they came
        builder.add(item, pa.table({"x": x}))
    assert [t["x"].to_pylist() for t in builder.take()] == [[1], ["text"]]
    for x in ([1], ["text"]):  # nor as NumPy columns, as objects or not
        builder.add(item, {"x": np.array(x)})
        builder.add(item, {"x": np.array(x, dtype=object)})
    assert [t["x"].to_pylist() for t in builder.take()] == [[1], [1], ["text"], ["text"]]
    # a batch that cannot become Arrow is reported with its item; the others go on
    other = InputItem("/data/g", 1)
    builder.add(item, {"x": np.array([1, 2]), "y": np.array([1, 2])})
    builder.add(other, {"x": np.array([3]), "y": np.array([4, 5])})  # columns of unequal length
    (good,) = builder.take()
    assert good["x"].to_pylist() == [1, 2] and [b[0].source for b in bad] == ["/data/g"]
    # Arrow batches of one row each become one block of one chunk per column
    for i in range(300):
        builder.add(item, pa.table({"x": [i], "s": [f"r{i}"]}))
    (block,) = builder.take()
    assert block["s"].to_pylist() == [f"r{i}" for i in range(300)]
    assert [block[c].num_chunks for c in block.column_names] == [1, 1]


def test_portable_table_flattens_tensors_and_records_shapes():
    grid = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    table = pa.table(
        {
            "grid": execution.to_arrow_column(grid),
            "vec": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(4, dtype=np.uint32)), 2),
            "n": [1, 2],
        }
    )
    out = portable_table(table)
    assert out.schema.field("grid").type == pa.list_(pa.float32(), 12)
    shapes = shapes_of(out.schema)
    assert shapes == {"grid": [3, 4], "vec": [2]}
    back = out["grid"].combine_chunks().flatten().to_numpy().reshape(-1, *shapes["grid"])
    np.testing.assert_array_equal(back, grid)


class GridEncoder(hpcprep.Encoder):
    """A (2, 3) array per record, as an n-d NumPy column."""

    name = "test.grid"
    outputs = (hpcprep.Column("grid", "tensor<int64>[2,3]", "toy grid"),)

    def encode(self, batch):
        sizes = np.array([len(b) for b in batch["bytes"]], dtype=np.int64)
        return {"grid": sizes[:, None, None] * np.arange(6, dtype=np.int64).reshape(1, 2, 3)}


class GridPlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoders(self, register):
        register(GridEncoder)


def test_many_small_files_few_outputs_and_arrays_in_parquet(tmp_path, ray_local):
    n = 1500
    data = make_files(tmp_path / "data", n)
    spec = spec_for(tmp_path, data, [{"stage": "test.embed"}, {"stage": "test.grid"}])
    lance_uri = tmp_path / "out" / "vectors"
    spec["sinks"].append({"stage": "lancedb", "uri": str(lance_uri), "table": "t", "vector_column": "vector"})
    result = hpcprep.run(spec, plugins=[sample_plugin, GridPlugin()], progress=False)
    c = result.counts
    assert (c["inputs"], c["outputs"], c["errors"], c["balanced"]) == (n, n, 0, True)

    files = sorted((tmp_path / "out" / "table").glob("*.parquet"))
    # rows decide the files: far fewer than one file per input (a commit group keeps
    # each of the 2 CPUs busy with up to 4 read tasks, so it may write up to 8 files)
    groups = result.manifest["groups"]["committed"]
    assert groups <= 3
    assert 1 <= len(files) <= math.ceil(n / BLOCK_ROWS) + 8 * groups, len(files)
    table = pq.read_table(files)
    assert table.num_rows == n
    shapes = shapes_of(table.schema)
    assert shapes["vector"] == [4] and shapes["grid"] == [2, 3]
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 4)
    vectors = table["vector"].combine_chunks().flatten().to_numpy().reshape(-1, 4)
    grids = table["grid"].combine_chunks().flatten().to_numpy().reshape(-1, 2, 3)
    lengths = np.array([len(b) for b in table["bytes"].to_pylist()])
    np.testing.assert_array_equal(vectors, lengths[:, None] * np.arange(1, 5, dtype=np.float32))
    np.testing.assert_array_equal(grids, lengths[:, None, None] * np.arange(6).reshape(1, 2, 3))
    # min/max statistics for the flat columns (readers prune row groups by them), none for
    # the values inside vectors
    meta = pq.ParquetFile(files[0]).metadata.row_group(0)
    stats = {meta.column(i).path_in_schema: meta.column(i).is_stats_set for i in range(meta.num_columns)}
    assert stats["record_id"] and stats["source"]
    assert not stats["vector.list.element"] and not stats["grid.list.element"]

    # the LanceDB table: one append per write task, then compacted and pruned to one
    # version, so it takes about its data's size on disk whatever the number of appends
    import lancedb

    lance_table = lancedb.connect(str(lance_uri)).open_table("t")
    assert lance_table.count_rows() == n
    assert len(lance_table.list_versions()) == 1
    on_disk = sum(f.stat().st_size for f in lance_uri.rglob("*") if f.is_file())
    assert on_disk <= 2 * lance_table.to_arrow().nbytes, (on_disk, lance_table.to_arrow().nbytes)
    appends = result.manifest["sinks"]["sinks[1]"]
    assert appends["rows"] == n

    reader = {s["where"]: s for s in result.manifest["stages"]}["reader"]
    assert reader["inputs"] == n and reader["rows_out"] == n

    timings = result.manifest["timings"]
    assert set(timings) == {"startup", "execution", "commit", "finish", "total"}
    assert all(v >= 0 for v in timings.values())
    parts = timings["startup"] + timings["execution"] + timings["commit"] + timings["finish"]
    assert parts <= timings["total"] + 1e-3
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written["timings"] == timings


class ThreadsEncoder(hpcprep.Encoder):
    """Records how many threads a parallel Numba kernel would get in this worker."""

    name = "test.threads"
    needs_setup = True
    outputs = (hpcprep.Column("numba_threads", "int64", "numba.get_num_threads() in the worker"),)

    def encode(self, batch):
        import numba

        return {"numba_threads": np.full(len(batch["record_id"]), numba.get_num_threads(), dtype=np.int64)}


class ThreadsPlugin:
    @hpcprep.hookimpl
    def hpcprep_register_encoders(self, register):
        register(ThreadsEncoder)


def test_parallel_kernels_use_the_cpus_their_worker_holds(tmp_path, ray_local):
    import numba

    assert numba.config.NUMBA_NUM_THREADS >= 2  # a 2-CPU Ray on a machine of at least 2 cores
    data = make_files(tmp_path / "data", 6)
    for placement in ({"compute": "actors"}, {"compute": "tasks"}):
        spec = spec_for(tmp_path / placement["compute"], data, [{"stage": "test.threads", "placement": placement}])
        result = hpcprep.run(spec, plugins=[ThreadsPlugin()], progress=False)
        table = pq.read_table(result.output_dir / "table")
        # one CPU per actor or task (the default placement): one thread each, not one per core
        assert set(table["numba_threads"].to_pylist()) == {1}, placement
