"""Building Arrow columns for encoders, without a Python object per value.

An encoder may return ``pyarrow`` arrays as well as NumPy arrays; these two helpers make
the common variable- and fixed-length cases from NumPy buffers directly.
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
