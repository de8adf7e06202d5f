"""Arrow tables as files outside Ray read them: no Ray extension types, shapes on record.

Encoders may return n-d NumPy arrays, which travel between Ray Data stages as Ray's
tensor extension columns. A Parquet reader without Ray sees those as opaque lists, so
the sinks write them as ``fixed_size_list`` columns (one flat row per record) and put
every fixed-size column's row shape in the schema metadata under ``hpcprep.shapes``
(``{"kmer_counts": [256], "image": [4, 64]}``). Any reader then gets an ``(N, *shape)``
array with ``column.flatten().to_numpy().reshape(-1, *shape)``.
"""

from __future__ import annotations

import json
import math

import pyarrow as pa

SHAPES_KEY = b"hpcprep.shapes"


def is_ray_tensor(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType) and t.extension_name.startswith("ray.data.arrow_tensor")


def is_variable_tensor(t: pa.DataType) -> bool:
    return isinstance(t, pa.ExtensionType) and t.extension_name.startswith("ray.data.arrow_variable_shaped_tensor")


def is_fixed_tensor(t: pa.DataType) -> bool:
    """A Ray tensor column or Arrow's canonical fixed-shape tensor: every row one shape."""
    return is_ray_tensor(t) or (isinstance(t, pa.ExtensionType) and t.extension_name == "arrow.fixed_shape_tensor")


def flat_tensor_chunk(arr: pa.Array) -> pa.Array:
    """A fixed-shape tensor chunk as ``fixed_size_list<T>[prod(shape)]``, row-major."""
    storage = arr.storage
    size = math.prod(arr.type.shape)
    if pa.types.is_fixed_size_list(storage.type) and storage.type.list_size == size:
        return storage
    return storage.cast(pa.list_(storage.type.value_type, size))


def _flat_column(col: pa.ChunkedArray) -> pa.ChunkedArray:
    if not col.chunks:
        shape = col.type.shape
        return pa.chunked_array([], type=pa.list_(col.type.storage_type.value_type, math.prod(shape)))
    return pa.chunked_array([flat_tensor_chunk(c) for c in col.chunks])


def portable_table(table: pa.Table) -> pa.Table:
    """``table`` with fixed-shape tensor columns as flat fixed-size lists and the row shape
    of every fixed-size column in the schema metadata."""
    shapes: dict[str, list[int]] = {}
    names, cols = [], []
    changed = False
    for name, col in zip(table.column_names, table.columns):
        t = col.type
        if is_fixed_tensor(t):
            shapes[name] = [int(d) for d in t.shape]
            col = _flat_column(col)
            changed = True
        elif pa.types.is_fixed_size_list(t):
            shapes[name] = [t.list_size]
        names.append(name)
        cols.append(col)
    if changed:
        table = pa.Table.from_arrays(cols, names=names, metadata=table.schema.metadata)
    if shapes:
        metadata = dict(table.schema.metadata or {})
        metadata[SHAPES_KEY] = json.dumps(shapes).encode()
        table = table.replace_schema_metadata(metadata)
    return table


def shapes_of(schema: pa.Schema) -> dict[str, list[int]]:
    """The row shapes recorded by ``portable_table`` (empty if none)."""
    raw = (schema.metadata or {}).get(SHAPES_KEY)
    return json.loads(raw) if raw else {}
