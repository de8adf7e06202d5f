"""The Ray Data side of a run: blocks as Arrow, encoder functions, writing.

The read tasks live in ``reading``; this module holds what they share with the rest
(Arrow conversion, the group context) and the encoder and writer sides.

Everything here is built on the driver and shipped to workers, so it holds only
plain stage objects and small context values. Each piece reports its row counts
and seconds to a ``RunStats`` actor, and writes its own bad records to the errors
table, so neither data nor errors ever gather on the driver. Reports and error files
are keyed by the work they describe (``work_key``), so a retried attempt replaces
what an earlier one left instead of adding to it.
"""

from __future__ import annotations

import hashlib
import pickle
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import ray
from ray.data.block import BlockAccessor
from ray.data.datasource import Datasink

from . import errors_table
from .columns import column_to_numpy
from .placement import Placement
from .stages import Encoder, Sink, SinkContext

REQUIRED_COLUMNS = ("source", "record_id")


class StageContractError(RuntimeError):
    """A stage broke its own contract (a plugin bug, not bad data): the run stops."""


@dataclass(frozen=True)
class GroupContext:
    run_dir: str
    group: int
    attempt: str  # unique per try of a group: tells a committed attempt's files from strays
    stats: Any  # RunStats actor handle


def work_key(label: str, table: pa.Table) -> str:
    """The identity of one stage's work on one input batch, the same in every attempt:
    Ray hands a retried task or a dead actor's batch the same blocks again, and record
    ids are unique within their source."""
    n = table.num_rows
    ends = [(table["source"][i].as_py(), table["record_id"][i].as_py()) for i in ((0, n - 1) if n else ())]
    return hashlib.blake2b(repr((label, n, ends)).encode(), digest_size=8).hexdigest()


def report(ctx: GroupContext, label: str, key: str, **values) -> None:
    """One unit of work's counts to the group's ``RunStats``, with the node that did it."""
    node = ray.get_runtime_context().get_node_id()
    ray.get(ctx.stats.add.remote(label, key, attempt=ctx.attempt, node=node, **values))


def admitted(ctx: GroupContext, bundle: int) -> bool:
    """Whether read task ``bundle`` belongs to this commit group (see ``run_stats``)."""
    return ray.get(ctx.stats.admit.remote(bundle, ctx.attempt))


def batch_len(batch) -> int:
    if isinstance(batch, pa.Table):
        return batch.num_rows
    for v in batch.values():
        return len(v)
    return 0


def to_arrow_column(values) -> pa.Array | pa.ChunkedArray:
    """One column for an Arrow block: plain Arrow for 1-D data (fast, no per-value
    Python checks), Ray's tensor types for n-d arrays and anything Arrow cannot infer."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    arr = np.asarray(values) if not isinstance(values, np.ndarray) else values
    if arr.ndim == 1:
        try:
            return pa.array(arr)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            pass
    return BlockAccessor.batch_to_block({"c": arr}).column("c")


def to_arrow_table(batch) -> pa.Table:
    if isinstance(batch, pa.Table):
        return batch
    return pa.table({k: to_arrow_column(v) for k, v in batch.items()})


class LazyBatch(Mapping):
    """An Arrow batch seen as ``dict[str, np.ndarray]``; a column becomes NumPy only
    when the stage reads it, so columns it never touches (ids, paths, payloads it
    carries through) cost nothing."""

    def __init__(self, table: pa.Table):
        self.table = table
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name not in self.table.column_names:
                raise KeyError(name)
            self._cache[name] = column_to_numpy(self.table, name)
        return self._cache[name]

    def arrow_column(self, name: str) -> pa.ChunkedArray:
        """The column as Arrow, for readers of its buffers (``columns.ascii_records``)."""
        if name not in self.table.column_names:
            raise KeyError(name)
        return self.table.column(name)

    def __iter__(self):
        return iter(self.table.column_names)

    def __len__(self) -> int:
        return self.table.num_columns

    def __contains__(self, name) -> bool:
        return name in self.table.column_names


# -- encoding ------------------------------------------------------------------------


class EncoderRunner:
    """Runs one encoder over batches, isolating bad records into the errors table."""

    def __init__(self, stage: Encoder, placement: Placement, ctx: GroupContext, label: str):
        self.stage = stage
        self.stage.variant = placement.variant
        self.batch_size = placement.batch_size
        self.ctx = ctx
        self.label = label
        self._ready = False

    def _setup(self):
        if not self._ready:
            self.stage.setup()
            self._ready = True

    def __call__(self, batch: pa.Table) -> pa.Table:
        self._setup()
        table = to_arrow_table(batch)
        start = time.perf_counter()
        errors: list[dict] = []
        size = self.batch_size
        if table.num_rows <= size:
            out = self._run_batch(table, errors)
        else:
            # Ray hands over whole blocks when batches are not coalesced: cut them here, so
            # a stage never sees more than its batch size.
            parts = [self._run_batch(table.slice(i, size), errors) for i in range(0, table.num_rows, size)]
            out = pa.concat_tables(parts, promote_options="permissive")
        key = work_key(self.label, table)
        errors_table.write_errors(self.ctx.run_dir, self.ctx.group, self.ctx.attempt, errors, key)
        # once per block, not per batch: a round trip to the stats actor costs as much as
        # encoding a small batch
        report(
            self.ctx,
            self.label,
            key,
            rows_in=table.num_rows,
            rows_out=out.num_rows,
            errors=len(errors),
            seconds=time.perf_counter() - start,
        )
        return out

    def _run_batch(self, table: pa.Table, errors: list[dict]) -> pa.Table:
        try:
            return self._encode(table)
        except StageContractError:
            raise
        except Exception:  # RecordError or a crash: find the bad records one by one
            return self._row_by_row(table, errors)

    def _encode(self, table: pa.Table) -> pa.Table:
        new = self.stage.encode(LazyBatch(table))
        if not isinstance(new, Mapping):
            raise StageContractError(f"{self.stage.name}.encode returned {type(new).__name__}, not a dict")
        missing = [c.name for c in self.stage.outputs if c.name not in new]
        if missing:
            raise StageContractError(f"{self.stage.name}.encode did not return its declared columns {missing}")
        if self.stage.fanout:
            lacking = [c for c in REQUIRED_COLUMNS if c not in new]
            if lacking:
                raise StageContractError(f"fan-out stage {self.stage.name} must return {lacking}")
            return to_arrow_table(dict(new))
        n = table.num_rows
        for name, values in new.items():
            if len(values) != n:
                raise StageContractError(
                    f"{self.stage.name}.encode returned {len(values)} rows in {name!r} for {n} input rows; "
                    "a stage that changes the number of rows sets fanout = True"
                )
            column = to_arrow_column(values)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, column)
            else:
                table = table.append_column(name, column)
        return table

    def _row_by_row(self, table: pa.Table, errors: list[dict]) -> pa.Table:
        """Re-run a failed batch one record at a time; only the bad ones are lost."""
        good = []
        for i in range(table.num_rows):
            row = table.slice(i, 1)
            try:
                good.append(self._encode(row))
            except StageContractError:
                raise
            except Exception as exc:
                errors.append(
                    errors_table.error_row(row["source"][0].as_py(), row["record_id"][0].as_py(), self.label, exc)
                )
        if good:
            return pa.concat_tables(good, promote_options="permissive")
        return self._encode(table.slice(0, 0))


def limit_kernel_threads(num_cpus: float) -> None:
    """Parallel Numba kernels in this thread use the CPUs the task or actor holds, not
    every core of the node: two actors of one CPU each would otherwise run two threads
    each on a 2-core machine. (Numba's setting is per thread, so it is set per call.)"""
    import numba

    numba.set_num_threads(max(1, min(int(num_cpus), numba.config.NUMBA_NUM_THREADS)))


class EncoderChain:
    """Encoders that run one after another in the same worker (see ``fuse_cpu_runs``);
    each keeps its own label, statistics and errors."""

    def __init__(self, runners: list[EncoderRunner], num_cpus: float = 1.0):
        self.runners = runners
        self.num_cpus = num_cpus

    def __call__(self, batch: pa.Table) -> pa.Table:
        limit_kernel_threads(self.num_cpus)
        table = to_arrow_table(batch)
        for runner in self.runners:
            table = runner(table)
        return table


class EncoderChainActor(EncoderChain):
    """The same chain as a Ray Data actor: every stage's ``setup`` runs once when it starts."""

    def __init__(self, runners: list[EncoderRunner], num_cpus: float = 1.0):
        super().__init__(runners, num_cpus)
        limit_kernel_threads(num_cpus)
        for runner in self.runners:
            runner._setup()


class WritingChainActor(EncoderChainActor):
    """The last actor pool of a pipeline, writing its own output: each block goes from the
    encoders straight to the sinks in the actor, and only the writers' small results
    leave it (one row per block, column ``WRITE_RESULT``). Write tasks after an actor pool
    would each start a Python process of their own (they take no CPU slot, and the
    actors hold the slots) and receive every block through the object store."""

    def __init__(
        self, runners: list[EncoderRunner], num_cpus: float, sinks: list[tuple[str, Sink]], ctx, sink_ctx: SinkContext
    ):
        super().__init__(runners, num_cpus)
        self.sinks, self.ctx, self.sink_ctx = sinks, ctx, sink_ctx

    def __call__(self, batch: pa.Table) -> pa.Table:
        table = super().__call__(batch)
        result = write_tables(self.sinks, self.ctx, self.sink_ctx, [table])
        return pa.table({WRITE_RESULT: pa.array([pickle.dumps(result)], pa.binary())})


WRITE_RESULT = "_hpcprep_write_result"


def write_results(rows: Iterable[dict]) -> list[dict]:
    """The writers' results from the rows a ``WritingChainActor`` pool returned."""
    return [pickle.loads(row[WRITE_RESULT]) for row in rows]


def map_batches_args(
    runners: list[EncoderRunner], placement: Placement, writing: tuple | None = None
) -> tuple[Any, dict]:
    """The callable and keyword arguments for ``Dataset.map_batches`` of a pool running
    ``runners``; with ``writing`` = (sinks, ctx, sink_ctx), an actor pool also writes."""
    kwargs: dict = {
        "batch_size": placement.batch_size if placement.coalesce else None,
        "batch_format": "pyarrow",
        "num_cpus": placement.num_cpus,
        "zero_copy_batch": True,
    }
    if placement.num_gpus:
        kwargs["num_gpus"] = placement.num_gpus
    if placement.compute == "actors":
        from ray.data import ActorPoolStrategy

        # The pool grows from one actor to the decided size as CPUs free up; a fixed
        # pool holding every CPU would starve the read tasks feeding it.
        kwargs["fn_constructor_args"] = (runners, placement.num_cpus, *(writing or ()))
        size = placement.concurrency or 1
        kwargs["compute"] = ActorPoolStrategy(min_size=1, max_size=size, initial_size=size)
        return (WritingChainActor if writing else EncoderChainActor), kwargs
    if placement.concurrency:
        from ray.data import TaskPoolStrategy

        kwargs["compute"] = TaskPoolStrategy(size=placement.concurrency)
    return EncoderChain(runners, placement.num_cpus), kwargs


# -- writing -------------------------------------------------------------------------


def write_tables(sinks: list[tuple[str, Sink]], ctx: GroupContext, sink_ctx: SinkContext, tables) -> dict:
    """Every table to each sink's writer; ``{"rows", "seconds", "node", "results": {label:
    writer result}}``. The driver counts the sinks' rows from these results, which Ray
    delivers once per block whatever the retries, so they are not reported to ``RunStats``."""
    # Only the writers' own time counts: where Ray fuses the write into the read and
    # encoder tasks, pulling the next block runs those stages, which time themselves.
    start = time.perf_counter()
    writers = [(label, sink.open_writer(sink_ctx)) for label, sink in sinks]
    seconds = time.perf_counter() - start
    rows = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        rows += table.num_rows
        start = time.perf_counter()
        for _, writer in writers:
            writer.write(table)
        seconds += time.perf_counter() - start
    start = time.perf_counter()
    results = {label: writer.close() for label, writer in writers}
    seconds += time.perf_counter() - start
    node = ray.get_runtime_context().get_node_id()
    return {"rows": rows, "seconds": seconds, "node": node, "results": results}


class EverySinkDatasink(Datasink):
    """Hands every block to each configured sink, so several sinks cost one pass."""

    def __init__(self, sinks: list[tuple[str, Sink]], ctx: GroupContext, sink_ctx: SinkContext):
        self.sinks = sinks
        self.ctx = ctx
        self.sink_ctx = sink_ctx
        self.results: list[dict] = []

    def get_name(self) -> str:
        return "hpcprep"

    def write(self, blocks, ctx) -> dict:
        tables = (BlockAccessor.for_block(block).to_arrow() for block in blocks)
        return write_tables(self.sinks, self.ctx, self.sink_ctx, tables)

    def on_write_complete(self, write_result) -> None:
        self.results = list(write_result.write_returns)
