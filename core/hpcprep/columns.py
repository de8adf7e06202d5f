"""Columns in and out of encoders.

An encoder may return ``pyarrow`` arrays as well as NumPy arrays: ``list_column`` and
``vector_column`` make the common variable- and fixed-length cases from NumPy buffers
directly, without a Python object per value; ``object_column`` holds one Python value
(an array, bytes) per row where that is what a stage has; ``RowBatch`` builds a reader's
batch a record at a time, typed from the columns it declares. ``column_of``, ``ascii_texts`` and
``ascii_records`` read a batch's columns, turning a missing column or a bad value into a
bad record.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def is_scalar_type(t: pa.DataType) -> bool:
    """Whether an Arrow column of type ``t`` holds one flat value per row: a number, text, a
    flag, a time (dictionary-encoded too); not a list, a vector, bytes or a struct."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_temporal(t)
        or pa.types.is_decimal(t)
    )


def object_column(values) -> np.ndarray:
    """A 1-d object array with one element per value: ``np.array`` would stack equal-length
    arrays into a 2-d array and refuse ragged ones."""
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


#: NumPy dtypes of the flat column types a stage declares; any other type (text, bytes,
#: lists, vectors) is held one Python value per row.
NUMPY_TYPES = {
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint64": np.uint64,
    "uint32": np.uint32,
    "uint16": np.uint16,
    "uint8": np.uint8,
    "float64": np.float64,
    "float32": np.float32,
    "bool": np.bool_,
}


class RowBatch:
    """A reader's batch built a record at a time, typed from its declared ``outputs``
    (each ``hpcprep.Column``): numbers and flags become NumPy arrays of their declared type,
    the rest an object column. ``add(**row)`` takes a value for every column (a column
    missing from a row is a ``KeyError`` naming it), ``take()`` returns the batch and
    starts the next; ``take(source=...)`` fills columns whose value is the same on every
    row."""

    def __init__(self, outputs):
        self.types = {c.name: c.type for c in outputs}
        self.values: dict[str, list] = {name: [] for name in self.types}
        self.rows = 0

    def __len__(self) -> int:
        return self.rows

    def add(self, **row) -> None:
        for name in self.types:
            if name in row:
                self.values[name].append(row[name])
        self.rows += 1

    def take(self, **same) -> dict[str, np.ndarray]:
        out = {}
        for name, kind in self.types.items():
            values = [same[name]] * self.rows if name in same else self.values[name]
            if len(values) != self.rows:
                raise KeyError(f"column {name!r}: {len(values)} values for {self.rows} rows")
            dtype = NUMPY_TYPES.get(kind)
            out[name] = np.asarray(values, dtype=dtype) if dtype is not None else object_column(values)
        self.values = {name: [] for name in self.types}
        self.rows = 0
        return out


def list_column(parts: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """A ``list<value_type>`` column with one NumPy array per row (``large_list`` past 2**31 values)."""
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts)), out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return flat_list_column(flat, offsets, value_type)


def flat_list_column(values: np.ndarray, offsets: np.ndarray, value_type: pa.DataType) -> pa.Array:
    """A ``list<value_type>`` column whose row ``r`` is ``values[offsets[r]:offsets[r + 1]]``
    (``offsets`` from 0 to ``len(values)``; ``large_list`` past 2**31 values), without a
    NumPy array per row."""
    offsets = np.asarray(offsets)
    wide = len(offsets) and offsets[-1] >= 2**31
    arrow_offsets = pa.array(offsets.astype(np.int64 if wide else np.int32, copy=False))
    flat = pa.array(np.ascontiguousarray(values), type=value_type)
    if wide:
        return pa.LargeListArray.from_arrays(arrow_offsets, flat)
    return pa.ListArray.from_arrays(arrow_offsets, flat)


def vector_column(rows: np.ndarray) -> pa.Array:
    """A ``fixed_size_list<float32>[d]`` column (what the LanceDB sink indexes) from an (n, d) array."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    if rows.ndim != 2:
        raise ValueError(f"vector_column needs an (n, d) array, got shape {rows.shape}")
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])


def column_of(batch, name: str, hint: str = ""):
    """``batch[name]``; a missing column makes the batch's records bad records, with the
    columns that are there (and ``hint``, e.g. which reader provides it) in the message."""
    from .stages import RecordError

    try:
        return batch[name]
    except KeyError:
        where = f"; {hint}" if hint else ""
        raise RecordError(f"no column {name!r} in the batch{where} (columns: {sorted(batch)})") from None


def ascii_texts(batch, name: str) -> list[bytes]:
    """The values of a text column (sequences, mostly) as ASCII bytes for a kernel.

    Accepts ``str``, ``bytes`` and uint8 arrays; anything else, or a non-ASCII character,
    is a bad record whose message names the column and the position.
    """
    from .stages import RecordError

    out = []
    for v in column_of(batch, name):
        if isinstance(v, str):
            try:
                out.append(v.encode("ascii"))
            except UnicodeEncodeError as exc:
                raise RecordError(f"column {name!r}: non-ASCII character {v[exc.start]!r} at {exc.start}") from None
        elif isinstance(v, (bytes, bytearray)):
            out.append(bytes(v))
        elif isinstance(v, np.ndarray) and v.dtype == np.uint8:
            out.append(v.tobytes())
        else:
            raise RecordError(f"column {name!r} holds {type(v).__name__}, not text")
    return out


def ascii_records(batch, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A text column as one byte buffer and its record offsets: ``(data, starts)``, value
    ``r`` = ``data[starts[r]:starts[r + 1]]`` (uint8 and N + 1 int64, ``starts[0] == 0``).

    From an Arrow string or binary column (what the runner hands encoders) the buffer is
    Arrow's own, without a Python object per value; other columns are read as
    :func:`ascii_texts` reads them. A missing or null value or a non-ASCII byte is a bad
    record, with :func:`ascii_texts`' message.
    """
    arrow = batch.arrow_column(name) if hasattr(batch, "arrow_column") and name in batch else None
    if arrow is not None and arrow.null_count == 0 and _is_text(arrow.type):
        values = arrow.combine_chunks() if arrow.num_chunks != 1 else arrow.chunk(0)
        wide = pa.types.is_large_string(values.type) or pa.types.is_large_binary(values.type)
        _, offsets_buf, data_buf = values.buffers()
        offsets = np.frombuffer(offsets_buf, dtype=np.int64 if wide else np.int32)
        offsets = offsets[values.offset : values.offset + len(values) + 1]
        first, last = (int(offsets[0]), int(offsets[-1])) if len(offsets) else (0, 0)
        data = np.frombuffer(data_buf, dtype=np.uint8)[first:last] if data_buf is not None else np.zeros(0, np.uint8)
        if not (data.size and data.max() >= 0x80):
            return data, offsets.astype(np.int64) - first
    texts = ascii_texts(batch, name)  # raises the bad record's error
    starts = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=starts[1:])
    return np.frombuffer(b"".join(texts), dtype=np.uint8), starts


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def column_to_numpy(table: pa.Table, name: str) -> np.ndarray:
    """A table's column as NumPy; Ray's tensor columns (Ray Data's fixed-shape arrays) as
    their ``(rows, *shape)`` array."""
    col = table.column(name)
    if isinstance(col.type, pa.ExtensionType):
        from ray.data.block import BlockAccessor

        return BlockAccessor.for_block(table.select([name])).to_numpy(name)
    return col.to_numpy(zero_copy_only=False)
