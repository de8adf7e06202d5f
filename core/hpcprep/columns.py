"""Columns in and out of encoders.

An encoder may return ``pyarrow`` arrays as well as NumPy arrays: ``list_column`` and
``vector_column`` make the common variable- and fixed-length cases from NumPy buffers
directly, without a Python object per value. ``column_of`` and ``ascii_texts`` read a
batch's columns, turning a missing column or a bad value into a bad record.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def list_column(parts: list[np.ndarray], value_type: pa.DataType) -> pa.Array:
    """A ``list<value_type>`` column with one NumPy array per row (``large_list`` past 2**31 values)."""
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    total = int(lengths.sum())
    offsets = np.zeros(len(parts) + 1, dtype=np.int32 if total < 2**31 else np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0)
    values = pa.array(np.ascontiguousarray(flat), type=value_type)
    if offsets.dtype == np.int64:
        return pa.LargeListArray.from_arrays(pa.array(offsets), values)
    return pa.ListArray.from_arrays(pa.array(offsets), values)


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


def column_to_numpy(table: pa.Table, name: str) -> np.ndarray:
    """A table's column as NumPy; Ray's tensor columns (Ray Data's fixed-shape arrays) as
    their ``(rows, *shape)`` array."""
    col = table.column(name)
    if isinstance(col.type, pa.ExtensionType):
        from ray.data.block import BlockAccessor

        return BlockAccessor.for_block(table.select([name])).to_numpy(name)
    return col.to_numpy(zero_copy_only=False)
