"""Columns in and out of encoders.

An encoder may return ``pyarrow`` arrays as well as NumPy arrays: ``list_column`` and
``vector_column`` make the common variable- and fixed-length cases from NumPy buffers
directly, without a Python object per value; ``object_column`` holds one Python value
(an array, bytes) per row where that is what a stage has. ``column_of``, ``ascii_texts`` and
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
