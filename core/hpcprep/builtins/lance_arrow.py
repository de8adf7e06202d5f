"""Records as the LanceDB sink stores them: Ray tensor columns and other extension types
become (nested) fixed-size lists, the vector column FixedSizeList<float32>, and a block
is made to fit the table's schema, or an error names the column that does not."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..portable import flat_tensor_chunk, is_fixed_tensor, is_variable_tensor


def _chunks(col: pa.ChunkedArray, fn) -> pa.ChunkedArray:
    if not col.chunks:
        return col
    return pa.chunked_array([fn(c) for c in col.chunks])


def _vector_chunk(arr: pa.Array, name: str) -> pa.Array:
    """One chunk of the vector column as FixedSizeList<float32>."""
    t = arr.type
    if is_fixed_tensor(t):
        shape = tuple(t.shape)
        if len(shape) != 1:
            raise ValueError(
                f"lancedb sink: vector column {name!r} must hold one 1-D vector per row, not arrays of shape {shape}"
            )
        arr = arr.storage
        if pa.types.is_fixed_size_list(arr.type):
            return _float_fsl(arr, arr.type.list_size, name)
        return _float_fsl(arr, shape[0], name)
    if is_variable_tensor(t):
        if t.ndim != 1:
            raise ValueError(f"lancedb sink: vector column {name!r} must hold 1-D vectors, not {t.ndim}-D arrays")
        storage = arr.storage
        arr = storage.flatten()[storage.type.get_field_index("data")]
        t = arr.type
    elif isinstance(t, pa.ExtensionType):
        arr = arr.storage
        t = arr.type
    if pa.types.is_fixed_size_list(t):
        return _float_fsl(arr, t.list_size, name)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        lengths = pc.unique(pc.drop_null(pc.list_value_length(arr))).to_pylist()
        if len(lengths) > 1:
            raise ValueError(
                f"lancedb sink: vector column {name!r} holds vectors of different lengths {sorted(lengths)[:5]}; "
                "every vector must have the same dimension"
            )
        return _float_fsl(arr, lengths[0] if lengths else 0, name)
    raise ValueError(
        f"lancedb sink: vector column {name!r} is {t}; expected fixed-length float vectors "
        "(a 2-D numpy array from the encoder, or a fixed-size list)"
    )


def _float_fsl(arr: pa.Array, dim: int, name: str) -> pa.Array:
    value_type = arr.type.value_type
    if not pa.types.is_floating(value_type):
        raise ValueError(f"lancedb sink: vector column {name!r} holds {value_type} values, not floats")
    if dim < 1:
        raise ValueError(f"lancedb sink: vector column {name!r} holds empty vectors")
    return arr.cast(pa.list_(pa.float32(), dim))


def _plain_chunk(arr: pa.Array, name: str) -> pa.Array:
    """One chunk of another column, without extension types Lance cannot store."""
    t = arr.type
    if not isinstance(t, pa.ExtensionType):
        return arr
    ext = t.extension_name
    if is_fixed_tensor(t):
        shape = tuple(t.shape)
        flat = flat_tensor_chunk(arr)
        if len(shape) == 1 or flat.null_count:
            return flat
        # Nested fixed-size lists keep the row shape (e.g. an image as rows of pixels).
        out = flat.flatten()
        for size in reversed(shape):
            out = pa.FixedSizeListArray.from_arrays(out, size)
        return out
    if is_variable_tensor(t) and t.ndim == 1:
        storage = arr.storage
        return storage.flatten()[storage.type.get_field_index("data")]
    if "pickled" in ext or "python_object" in ext:
        raise ValueError(
            f"lancedb sink: column {name!r} holds pickled Python objects, which LanceDB cannot store; "
            "encoders should return numbers, strings, bytes or numeric arrays"
        )
    return arr.storage


def to_lance_table(table: pa.Table, vector_column: str) -> pa.Table:
    """A Ray Data block as LanceDB stores it: the vector column as FixedSizeList<float32>,
    Ray tensor columns as (nested) fixed-size lists."""
    if vector_column not in table.column_names:
        raise KeyError(
            f"lancedb sink: the records have no column {vector_column!r} (they have {table.column_names}); "
            "set vector_column to the encoder's vector output"
        )
    cols, names = [], []
    for name, col in zip(table.column_names, table.columns):
        if name == vector_column:
            col = _chunks(col, lambda c, n=name: _vector_chunk(c, n))
        else:
            col = _chunks(col, lambda c, n=name: _plain_chunk(c, n))
        cols.append(col)
        names.append(name)
    return pa.Table.from_arrays(cols, names=names)


def conform(data: pa.Table, schema: pa.Schema, params) -> pa.Table:
    """``data`` in the table's schema, or an error that says which column does not fit."""
    table = params.table
    extra = [n for n in data.column_names if n not in schema.names]
    if extra:
        raise ValueError(
            f"lancedb sink: column(s) {extra} are not in table {table!r} (it has {schema.names}); "
            "a LanceDB table keeps the columns it was created with"
        )
    cols = []
    for field in schema:
        if field.name not in data.column_names:
            if not field.nullable:
                raise ValueError(f"lancedb sink: the records lack column {field.name!r} of table {table!r}")
            cols.append(pa.nulls(data.num_rows, field.type))
            continue
        col = data.column(field.name)
        if col.type != field.type:
            if (
                field.name == params.vector_column
                and pa.types.is_fixed_size_list(col.type)
                and (col.type.list_size != field.type.list_size)
            ):
                raise ValueError(
                    f"lancedb sink: vectors in {field.name!r} have dimension {col.type.list_size}, but table "
                    f"{table!r} holds dimension {field.type.list_size}"
                )
            try:
                col = col.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"lancedb sink: column {field.name!r} is {col.type}, which does not fit the table's "
                    f"{field.type}: {exc}"
                ) from None
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema.remove_metadata())
