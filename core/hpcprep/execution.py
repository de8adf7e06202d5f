"""The Ray Data side of a run: datasource, encoder functions, the fan-out datasink.

Everything here is built on the driver and shipped to workers, so it holds only
plain stage objects and small context values. Each piece reports its row counts
and seconds to a ``RunStats`` actor, and writes its own bad records to the errors
table, so neither data nor errors ever gather on the driver.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray.data.block import BlockAccessor, BlockMetadata
from ray.data.datasource import Datasink, Datasource, ReadTask

from . import errors_table
from .placement import Placement
from .stages import Encoder, ErrorRecord, InputItem, Reader, RecordError, Sink, SinkContext

REQUIRED_COLUMNS = ("source", "record_id")


class StageContractError(RuntimeError):
    """A stage broke its own contract (a plugin bug, not bad data): the run stops."""


@ray.remote(num_cpus=0)
class RunStats:
    """Per-stage counters for one commit group."""

    def __init__(self):
        self.rows: dict[str, dict[str, float]] = {}

    def add(self, key: str, **values: float) -> None:
        row = self.rows.setdefault(key, {})
        for k, v in values.items():
            row[k] = row.get(k, 0) + v

    def take(self) -> dict:
        rows, self.rows = self.rows, {}
        return rows


@dataclass(frozen=True)
class GroupContext:
    run_dir: str
    group: int
    attempt: str  # unique per run() call: tells a committed attempt's files from strays
    stats: Any  # RunStats actor handle


def _batch_len(batch: dict) -> int:
    for v in batch.values():
        return len(v)
    return 0


def _slice(batch: dict, start: int, stop: int) -> dict:
    return {k: v[start:stop] for k, v in batch.items()}


def _concat(batches: list[dict]) -> dict:
    keys = batches[0].keys()
    out = {}
    for k in keys:
        parts = [b[k] for b in batches]
        if any(p.dtype == object for p in parts) or any(p.ndim != parts[0].ndim for p in parts):
            merged = np.empty(sum(len(p) for p in parts), dtype=object)
            i = 0
            for p in parts:
                for v in p:
                    merged[i] = v
                    i += 1
            out[k] = merged
        else:
            out[k] = np.concatenate(parts)
    return out


# -- reading -------------------------------------------------------------------------


class StageDatasource(Datasource):
    """One Ray read task per input item of the commit group."""

    def __init__(self, reader: Reader, items: list[InputItem], ctx: GroupContext, label: str):
        super().__init__()
        self.reader = reader
        self.items = items
        self.ctx = ctx
        self.label = label

    def get_name(self) -> str:
        return self.reader.name

    def estimate_inmemory_data_size(self):
        sizes = [i.length if i.length is not None else i.size for i in self.items]
        return sum(s for s in sizes if s) or None

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
        tasks = []
        for item in self.items:
            meta = BlockMetadata(
                num_rows=None,
                size_bytes=item.length if item.length is not None else item.size,
                input_files=[item.source],
                exec_stats=None,
            )
            tasks.append(ReadTask(self._read_fn(item), meta))
        return tasks

    def _read_fn(self, item: InputItem):
        reader, ctx, label = self.reader, self.ctx, self.label

        def read() -> Iterable:
            start = time.perf_counter()
            rows, errors = 0, []
            try:
                for out in reader.read(item):
                    if isinstance(out, ErrorRecord):
                        errors.append(
                            errors_table.error_row(out.source, out.record_id, label, out.error_type, out.message)
                        )
                        continue
                    missing = [c for c in REQUIRED_COLUMNS if c not in out]
                    if missing:
                        raise StageContractError(
                            f"reader {reader.name} produced a batch without {missing} for {item.source}"
                        )
                    n = _batch_len(out)
                    if n == 0:
                        continue
                    rows += n
                    yield BlockAccessor.batch_to_block(out)
            except StageContractError:
                raise
            except Exception as exc:
                # The item could not be read (to the end): one error row names it.
                from .stages import record_id

                errors.append(
                    errors_table.error_row(item.source, record_id(item.source, "input", item.offset), label, exc)
                )
            errors_table.write_errors(ctx.run_dir, ctx.group, ctx.attempt, errors)
            ray.get(
                ctx.stats.add.remote(
                    label,
                    items=1,
                    rows_out=rows,
                    errors=len(errors),
                    seconds=time.perf_counter() - start,
                )
            )

        return read


# -- encoding ------------------------------------------------------------------------


class EncoderRunner:
    """Runs one encoder over batches, isolating bad records into the errors table."""

    def __init__(self, stage: Encoder, placement: Placement, ctx: GroupContext, label: str):
        self.stage = stage
        self.stage.variant = placement.variant
        self.ctx = ctx
        self.label = label
        self._ready = False

    def _setup(self):
        if not self._ready:
            self.stage.setup()
            self._ready = True

    def __call__(self, batch: dict) -> dict:
        self._setup()
        start = time.perf_counter()
        n = _batch_len(batch)
        errors: list[dict] = []
        try:
            out = self._encode(batch)
        except RecordError:
            out = None
        except StageContractError:
            raise
        except Exception:
            out = None
        if out is None:
            out = self._row_by_row(batch, errors)
        errors_table.write_errors(self.ctx.run_dir, self.ctx.group, self.ctx.attempt, errors)
        ray.get(
            self.ctx.stats.add.remote(
                self.label,
                rows_in=n,
                rows_out=_batch_len(out),
                errors=len(errors),
                seconds=time.perf_counter() - start,
            )
        )
        return out

    def _encode(self, batch: dict) -> dict:
        new = self.stage.encode(batch)
        if not isinstance(new, dict):
            raise StageContractError(f"{self.stage.name}.encode returned {type(new).__name__}, not a dict")
        missing = [c.name for c in self.stage.outputs if c.name not in new]
        if missing:
            raise StageContractError(f"{self.stage.name}.encode did not return its declared columns {missing}")
        if self.stage.fanout:
            lacking = [c for c in REQUIRED_COLUMNS if c not in new]
            if lacking:
                raise StageContractError(f"fan-out stage {self.stage.name} must return {lacking}")
            return new
        n = _batch_len(batch)
        for k, v in new.items():
            if len(v) != n:
                raise StageContractError(
                    f"{self.stage.name}.encode returned {len(v)} rows in {k!r} for {n} input rows; "
                    "a stage that changes the number of rows sets fanout = True"
                )
        return {**batch, **new}

    def _row_by_row(self, batch: dict, errors: list[dict]) -> dict:
        """Re-run a failed batch one record at a time; only the bad ones are lost."""
        good = []
        for i in range(_batch_len(batch)):
            row = _slice(batch, i, i + 1)
            try:
                good.append(self._encode(row))
            except StageContractError:
                raise
            except Exception as exc:
                errors.append(
                    errors_table.error_row(row["source"][0], row["record_id"][0], self.label, exc)
                )
        if good:
            return _concat(good)
        return self._encode(_slice(batch, 0, 0))


def map_batches_args(runner: EncoderRunner, placement: Placement) -> tuple[Any, dict]:
    """The callable and keyword arguments for ``Dataset.map_batches``."""
    kwargs: dict = {
        "batch_size": placement.batch_size,
        "batch_format": "numpy",
        "num_cpus": placement.num_cpus,
        "zero_copy_batch": True,
    }
    if placement.num_gpus:
        kwargs["num_gpus"] = placement.num_gpus
    if placement.compute == "actors":
        from ray.data import ActorPoolStrategy

        # The pool grows from one actor to the decided size as CPUs free up; a fixed
        # pool holding every CPU would starve the read tasks feeding it.
        kwargs["fn_constructor_args"] = (runner.stage, placement, runner.ctx, runner.label)
        kwargs["compute"] = ActorPoolStrategy(min_size=1, max_size=placement.concurrency or 1)
        return EncoderActor, kwargs
    if placement.concurrency:
        from ray.data import TaskPoolStrategy

        kwargs["compute"] = TaskPoolStrategy(size=placement.concurrency)
    return runner, kwargs


class EncoderActor(EncoderRunner):
    """The same runner as a Ray Data actor: ``setup`` runs once when the actor starts."""

    def __init__(self, stage, placement, ctx, label):
        super().__init__(stage, placement, ctx, label)
        self._setup()


# -- writing -------------------------------------------------------------------------


class FanOutDatasink(Datasink):
    """Hands every block to each configured sink, so several sinks cost one pass."""

    def __init__(self, sinks: list[tuple[str, Sink]], ctx: GroupContext, sink_ctx: SinkContext):
        self.sinks = sinks
        self.ctx = ctx
        self.sink_ctx = sink_ctx
        self.results: list[dict] = []

    def get_name(self) -> str:
        return "hpcprep"

    def write(self, blocks, ctx) -> dict:
        start = time.perf_counter()
        writers = [(label, sink.open_writer(self.sink_ctx)) for label, sink in self.sinks]
        rows = 0
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            if table.num_rows == 0:
                continue
            rows += table.num_rows
            for _, writer in writers:
                writer.write(table)
        results = {label: writer.close() for label, writer in writers}
        ray.get(self.ctx.stats.add.remote("sinks", rows_in=rows, seconds=time.perf_counter() - start))
        return {"rows": rows, "results": results}

    def on_write_complete(self, write_result) -> None:
        self.results = list(write_result.write_returns)
