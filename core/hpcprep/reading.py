"""Read tasks: a commit group's input items, several small ones per Ray read task,
handed on as blocks of a useful size. A read task reads only if the group admits it
(``run_stats``: a group ends by time, not by a count of inputs fixed in advance).

``bundle_items`` decides which items share a task; ``_BlockBuilder`` joins a task's
small batches into blocks; ``StageDatasource`` is the Ray Data datasource that runs the
reader stage in those tasks, puts bad inputs in the errors table and reports its counts.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
from ray.data.block import BlockMetadata
from ray.data.datasource import Datasource, ReadTask

from . import errors_table
from .execution import (
    REQUIRED_COLUMNS,
    GroupContext,
    StageContractError,
    admitted,
    batch_len,
    report,
    to_arrow_table,
)
from .manifest import input_sha256
from .stages import ErrorRecord, InputItem, Reader, record_id

#: A read task takes input items until it holds about this much input...
TASK_BYTES = 64 << 20
#: ...or this many items: small files share tasks, so 20 000 of them are not 20 000
#: tasks, 20 000 Parquet files and 20 000 Lance commits.
TASK_ITEMS = 512
#: A read task hands on blocks of at least this many rows (or BLOCK_BYTES), joining the
#: small batches of small inputs, so encoders and sinks see few, large blocks.
BLOCK_ROWS = 4096
BLOCK_BYTES = 32 << 20
#: Fewer items than this per task, and each item gets a task of its own (``bundle_items``).
MIN_SHARED = 4


def bundle_items(items: list[InputItem], cpus: float) -> list[list[InputItem]]:
    """Consecutive input items grouped into read tasks of similar weight.

    As few tasks as ``TASK_BYTES``/``TASK_ITEMS`` allow, but at least four per CPU while
    there are items for them, so that the last tasks of a group do not leave CPUs idle.
    Items share a task only where each task gets at least ``MIN_SHARED`` of them: tasks of
    one or two items differ by half a task's work, which left a CPU idle for the last
    ones (12 equal items in 8 tasks: one CPU ran 7 items, the other 5).
    """
    n = len(items)
    if n == 0:
        return []
    weights = [i.weight for i in items]
    total = sum(weights)
    want = max(-(-total // TASK_BYTES), -(-n // TASK_ITEMS), int(4 * max(cpus, 1)))
    if n < MIN_SHARED * want:
        want = n
    bundles: list[list[InputItem]] = []
    current: list[InputItem] = []
    done = 0
    for item, w in zip(items, weights):
        current.append(item)
        done += w
        # close the bundle once the running weight passes the next equal share
        if done * want >= total * (len(bundles) + 1) or len(current) >= TASK_ITEMS:
            bundles.append(current)
            current = []
    if current:
        bundles.append(current)
    return bundles


class _BlockBuilder:
    """Joins a read task's small batches into blocks of about ``BLOCK_ROWS`` rows or
    ``BLOCK_BYTES``. Batches of NumPy columns are joined before they become Arrow, so
    a thousand one-record files cost one conversion, not a thousand."""

    def __init__(self, on_bad_batch):
        #: called with (item, batch, exception) for a batch that cannot become Arrow
        self.on_bad_batch = on_bad_batch
        self.pending: list[tuple[InputItem, Any]] = []
        self.rows = 0
        self.bytes = 0

    def add(self, item: InputItem, batch) -> list[pa.Table]:
        self.pending.append((item, batch))
        self.rows += batch_len(batch)
        self.bytes += _batch_bytes(batch)
        if self.rows >= BLOCK_ROWS or self.bytes >= BLOCK_BYTES:
            return self.take()
        return []

    def take(self) -> list[pa.Table]:
        pending, self.pending, self.rows, self.bytes = self.pending, [], 0, 0
        if not pending:
            return []
        joined = _join_numpy([batch for _, batch in pending]) if len(pending) > 1 else None
        if joined is not None:
            try:
                table = to_arrow_table(joined)
                # Values that only became Python objects together (an int column in one
                # batch, text in the next) are converted batch by batch below, as alone.
                if not any(_is_python_objects(t) for t in table.schema.types):
                    return [table]
            except Exception:
                pass  # find the batch at fault below
        tables = []
        for item, batch in pending:
            try:
                tables.append(to_arrow_table(batch))
            except Exception as exc:
                self.on_bad_batch(item, batch, exc)
        if len(tables) <= 1:
            return tables
        try:
            # one chunk per column: encoders and sinks walk hundreds of one-row chunks slowly
            return [pa.concat_tables(tables, promote_options="permissive").combine_chunks()]
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            return tables  # column types that cannot be unified travel as separate blocks


def _batch_bytes(batch) -> int:
    if isinstance(batch, pa.Table):
        return batch.nbytes
    return sum(getattr(v, "nbytes", 0) for v in batch.values())


def _is_python_objects(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType) and "python_object" in t.extension_name


def _join_numpy(batches: list) -> dict | None:
    """Batches of the same NumPy columns as one batch; None when they are not all such."""
    first = batches[0]
    if not isinstance(first, Mapping):
        return None
    names = list(first)
    columns: dict[str, list] = {n: [] for n in names}
    for batch in batches:
        if not isinstance(batch, Mapping) or list(batch) != names:
            return None
        for n in names:
            v = batch[n]
            if not isinstance(v, np.ndarray) or (columns[n] and v.dtype != columns[n][0].dtype):
                return None
            columns[n].append(v)
    try:
        return {n: np.concatenate(parts) for n, parts in columns.items()}
    except ValueError:  # shapes of n-d columns differ
        return None


class StageDatasource(Datasource):
    """Ray read tasks over the commit group's input items, several small items per task
    (see ``bundle_items``)."""

    def __init__(self, reader: Reader, items: list[InputItem], ctx: GroupContext, label: str, cpus: float = 1.0):
        super().__init__()
        self.reader = reader
        self.items = items
        self.ctx = ctx
        self.label = label
        self.bundles = bundle_items(items, cpus)

    def get_name(self) -> str:
        return self.reader.name

    def estimate_inmemory_data_size(self):
        sizes = [i.length if i.length is not None else i.size for i in self.items]
        return sum(s for s in sizes if s) or None

    def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None):
        tasks = []
        for n, bundle in enumerate(self.bundles):
            sizes = [i.length if i.length is not None else i.size for i in bundle]
            meta = BlockMetadata(
                num_rows=None,
                size_bytes=sum(s for s in sizes if s) or None,
                input_files=[i.source for i in bundle],
                exec_stats=None,
            )
            tasks.append(ReadTask(self._read_fn(n, bundle), meta))
        return tasks

    def _read_fn(self, n: int, bundle: list[InputItem]):
        reader, ctx, label = self.reader, self.ctx, self.label
        key = f"read{n:06d}"  # a retried read task reads the same bundle

        def item_error(item: InputItem, exc: Exception) -> dict:
            return errors_table.error_row(item.source, record_id(item.source, "input", item.offset), label, exc)

        def read_item(item: InputItem, errors: list[dict]) -> Iterable:
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
                    if batch_len(out) == 0:
                        continue
                    yield out
            except StageContractError:
                raise
            except Exception as exc:
                # The item could not be read (to the end): one error row names it.
                errors.append(item_error(item, exc))

        def read() -> Iterable:
            if not admitted(ctx, n):
                return  # after the group's cut: the next group reads these inputs
            seconds, errors = 0.0, []
            rows = [0]

            def bad_batch(item, batch, exc):
                # Its rows were counted as read; they are the item's error instead.
                rows[0] -= batch_len(batch)
                errors.append(item_error(item, exc))

            blocks = _BlockBuilder(bad_batch)
            hashes: dict[str, str] = {}  # input index -> SHA-256, for the manifest
            for item in bundle:
                start = time.perf_counter()
                for batch in read_item(item, errors):
                    rows[0] += batch_len(batch)
                    ready = blocks.add(item, batch)
                    seconds += time.perf_counter() - start
                    yield from ready
                    start = time.perf_counter()
                digest = input_sha256(item)  # the file was just read: its pages are in memory
                if digest is not None:
                    hashes[str(item.index)] = digest
                seconds += time.perf_counter() - start
            start = time.perf_counter()
            ready = blocks.take()
            seconds += time.perf_counter() - start
            yield from ready
            errors_table.write_errors(ctx.run_dir, ctx.group, ctx.attempt, errors, key)
            report(
                ctx,
                label,
                key,
                items=len(bundle),
                bytes=sum(i.input_bytes for i in bundle),
                rows_out=rows[0],
                errors=len(errors),
                seconds=seconds,
                sha256=hashes,
            )

        return read
