"""The property a reader keeps on any input, whatever the bytes.

A reader stage, driven as the runner drives it (``plan()`` on the driver, then ``read(item)``
for every item), must

- yield only batches (a dict of equal-length columns holding ``source`` and ``record_id``)
  and ``ErrorRecord``s with a message, or raise ``hpcprep.RecordError`` with a message:
  anything else stops a whole run (an exception out of ``plan``) or turns a plugin bug
  into an anonymous error row (one out of ``read``);
- never put a non-finite float in its output that the input does not hold: NaN or
  infinity that no file spells is invented data. What counts as "holding" one is each
  target's policy (``NonFinitePolicy``), because some columns use NaN on purpose (a
  protein's missing atom, an OpenFOAM patch without values).

A violation raises :class:`Violation`; any other exception escaping a target is a crash
as well. Hangs are caught outside: by atheris' ``-timeout`` while fuzzing, and by
:func:`time_limit` in the pytest replay.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import signal
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hpcprep.stages import ErrorRecord, RecordError

#: Columns every batch must have (the runner stops the run on a batch without them).
REQUIRED_COLUMNS = ("source", "record_id")

#: Text that denotes a non-finite number, or one that overflows float64 when converted
#: (1e999, a 400-digit integer). Generous on purpose: a false alarm wastes an owner's time.
_SPELLS_NONFINITE = re.compile(rb"(?i)nan|inf|[eE]\+?0*(?:[3-9]\d\d|\d{4,})|\d{300,}")


class Violation(AssertionError):
    """The reader broke the property; the message says how."""


class Hang(Violation):
    """One input took longer than the per-input limit of the pytest replay."""


def decompressed_views(data: bytes) -> list[bytes]:
    """``data`` and, when it is gzip (or BGZF, or a damaged gzip), as much of its
    decompressed text as can be had: the reader sees the text, so the text is what may
    spell a NaN."""
    views = [data]
    if data[:2] != b"\x1f\x8b":
        return views
    try:
        views.append(gzip.decompress(data))
        return views
    except (OSError, EOFError, zlib.error):
        pass
    out, rest = [], data
    while rest[:2] == b"\x1f\x8b" and len(out) < 10_000:
        d = zlib.decompressobj(31)
        try:
            out.append(d.decompress(rest, 64 << 20))
        except zlib.error:
            break
        if not d.eof:
            break
        rest = d.unused_data
    views.append(b"".join(out))
    return views


def spells_nonfinite(data: bytes) -> bool:
    """Whether the input (or its decompressed text) writes a NaN, an infinity or a number
    too large for float64 anywhere."""
    return any(_SPELLS_NONFINITE.search(v) for v in decompressed_views(data))


# -- the float values of a batch -----------------------------------------------------------


def _float_rows(column) -> Iterator[tuple[int, np.ndarray]]:
    """(row, float values of that row) for every row of ``column`` holding floats, whatever
    the column is made of: a NumPy array (numbers, n-d rows or Python objects), a list, or
    an Arrow array of floats or lists of floats."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if isinstance(column, pa.Array):
        t = column.type
        if pa.types.is_floating(t):
            values = column.to_numpy(zero_copy_only=False)
            for i, v in enumerate(values):
                yield i, np.asarray([v], dtype=np.float64)
            return
        if (pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)) and (
            pa.types.is_floating(t.value_type)
        ):
            flat = pc.list_flatten(column).to_numpy(zero_copy_only=False)
            parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
            for i in np.unique(parents[~np.isfinite(flat)]) if len(flat) else []:
                yield int(i), flat[parents == i]
            return
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            column = column.to_pylist()
        else:
            return
    if isinstance(column, np.ndarray) and column.dtype.kind == "f":
        for i in range(len(column)):
            yield i, np.asarray(column[i], dtype=np.float64).reshape(-1)
        return
    if isinstance(column, np.ndarray) and column.dtype.kind != "O":
        return
    for i, value in enumerate(column):
        floats = _floats_in(value)
        if floats is not None:
            yield i, floats


def _floats_in(value, depth: int = 0) -> np.ndarray | None:
    """The float values held in one cell (a float, a float array, or lists and object
    arrays of those, nested), flattened; None when it holds no float."""
    if isinstance(value, (float, np.floating)):
        return np.asarray([value], dtype=np.float64)
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return value.astype(np.float64, copy=False).reshape(-1)
    if (
        depth < 4
        and isinstance(value, (list, tuple, np.ndarray))
        and (not isinstance(value, np.ndarray) or value.dtype.kind == "O")
    ):
        parts = [p for p in (_floats_in(v, depth + 1) for v in value) if p is not None]
        return np.concatenate(parts) if parts else None
    return None


@dataclass(frozen=True)
class NonFinite:
    """A non-finite value the reader handed on: which column, which row, the row's values."""

    column: str
    row: int
    values: np.ndarray

    def describe(self) -> str:
        bad = self.values[~np.isfinite(self.values)][:3]
        return f"column {self.column!r} row {self.row} holds {', '.join(repr(float(x)) for x in bad)}"


#: Decides whether a non-finite value is allowed: (the batch, the finding, the input
#: spells a non-finite number) -> allowed.
NonFinitePolicy = Callable[[dict, NonFinite, bool], bool]


def spelled_only(batch: dict, found: NonFinite, spelled: bool) -> bool:
    """The default: a non-finite float only where the input writes one."""
    return spelled


def never(batch: dict, found: NonFinite, spelled: bool) -> bool:
    """For readers whose contract refuses every non-finite value (it is an error record)."""
    return False


def nonfinite_values(batch: dict) -> Iterator[NonFinite]:
    for name, column in batch.items():
        for row, values in _float_rows(column):
            if values.size and not np.isfinite(values).all():
                yield NonFinite(name, row, values)


# -- one reader, the way the runner drives it -------------------------------------------------


def _column_length(column) -> int:
    try:
        return len(column)
    except TypeError:
        raise Violation(f"a column of type {type(column).__name__} has no length") from None


def check_batch(batch, where: str) -> None:
    if not isinstance(batch, dict):
        raise Violation(f"{where}: read() yielded {type(batch).__name__}, not a batch dict or ErrorRecord")
    missing = [c for c in REQUIRED_COLUMNS if c not in batch]
    if missing:
        raise Violation(f"{where}: a batch without the required columns {missing} (has {sorted(batch)})")
    lengths = {name: _column_length(col) for name, col in batch.items()}
    if len(set(lengths.values())) > 1:
        raise Violation(f"{where}: columns of different lengths {lengths}")


def check_error_record(err: ErrorRecord, where: str) -> None:
    if not isinstance(err.message, str) or not err.message.strip():
        raise Violation(f"{where}: an ErrorRecord without a message: {err!r}")
    if not err.record_id or not err.source:
        raise Violation(f"{where}: an ErrorRecord without source or record_id: {err!r}")


def check_record_error(exc: RecordError, where: str) -> None:
    if not str(exc).strip():
        raise Violation(f"{where}: RecordError without a message")


@dataclass
class ReadOutcome:
    """What one input gave: rows, error records, and items that failed as a whole."""

    rows: int = 0
    error_records: int = 0
    failed_items: int = 0

    def __add__(self, other: ReadOutcome) -> ReadOutcome:
        return ReadOutcome(
            self.rows + other.rows,
            self.error_records + other.error_records,
            self.failed_items + other.failed_items,
        )


def check_reader(reader, data: bytes, policy: NonFinitePolicy = spelled_only) -> ReadOutcome:
    """Plan and read every item of ``reader`` in this process, checking the property;
    ``data`` is the input the reader's files were made of (for the NaN rule)."""
    name = getattr(reader, "name", type(reader).__name__)
    items = reader.plan()  # an exception here stops a whole run: no exception is allowed
    if not isinstance(items, list):
        raise Violation(f"{name}: plan() returned {type(items).__name__}, not a list")
    outcome = ReadOutcome()
    spelled: bool | None = None
    for item in items:
        where = f"{name} read({item.source!r}, index {item.index})"
        try:
            for out in reader.read(item):
                if isinstance(out, ErrorRecord):
                    check_error_record(out, where)
                    outcome.error_records += 1
                    continue
                check_batch(out, where)
                outcome.rows += _column_length(out["source"])
                for found in nonfinite_values(out):
                    if spelled is None:
                        spelled = spells_nonfinite(data)
                    if not policy(out, found, spelled):
                        raise Violation(f"{where}: a non-finite value the input does not hold: {found.describe()}")
        except RecordError as exc:
            check_record_error(exc, where)
            outcome.failed_items += 1
    return outcome


# -- time limit for the replay -------------------------------------------------------------------


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise :class:`Hang` in the main thread when the block runs past ``seconds``.

    The alarm interrupts Python code only; a hang inside compiled code (Numba, gemmi)
    is left to pytest's own timeout, or to atheris' -timeout while fuzzing.
    """

    def on_alarm(signum, frame):
        raise Hang(f"{what}: still running after {seconds:g} s (a hang?)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
