"""Reading text columns for kernels: ``ascii_records`` against ``ascii_texts``, on the
Arrow layouts the runner hands encoders and on plain batches."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hpcprep.columns import ascii_records, ascii_texts, object_column
from hpcprep.execution import LazyBatch
from hpcprep.stages import RecordError

VALUES = ["ACGT", "", "ggccNNa", "T" * 300, "acgtRYKM"]


def split(data: np.ndarray, starts: np.ndarray) -> list[bytes]:
    assert starts[0] == 0 and starts[-1] == data.size and data.dtype == np.uint8
    return [data[a:b].tobytes() for a, b in zip(starts[:-1], starts[1:], strict=True)]


def arrow_layouts():
    """The same values as string, large_string and binary columns, sliced (non-zero
    offset), chunked, and in a table slice as the runner's batches are."""
    for t in (pa.string(), pa.large_string(), pa.binary(), pa.large_binary()):
        whole = pa.array(["XX", *VALUES, "YY"], type=t)
        yield str(t), pa.table({"seq": whole.slice(1, len(VALUES))})
        yield f"{t} chunked", pa.table({"seq": pa.chunked_array([whole.slice(1, 2), whole.slice(3, len(VALUES) - 2)])})
        yield f"{t} table slice", pa.table({"seq": whole, "n": range(len(whole))}).slice(1, len(VALUES))


@pytest.mark.parametrize(("layout", "table"), list(arrow_layouts()), ids=lambda x: x if isinstance(x, str) else "")
def test_records_from_arrow_equal_the_texts(layout, table):
    batch = LazyBatch(table)
    data, starts = ascii_records(batch, "seq")
    assert split(data, starts) == ascii_texts(batch, "seq") == [v.encode() for v in VALUES]
    assert starts.dtype == np.int64


def test_records_from_plain_batches():
    for column in (VALUES, [v.encode() for v in VALUES], np.array(VALUES, dtype=object)):
        data, starts = ascii_records({"seq": column}, "seq")
        assert split(data, starts) == [v.encode() for v in VALUES]
    data, starts = ascii_records({"seq": []}, "seq")
    assert data.size == 0 and starts.tolist() == [0]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["ACGT", "ACGTé"], "non-ASCII character 'é' at 4"),
        (["ACGT", None], "holds NoneType, not text"),
    ],
)
def test_bad_values_are_bad_records_with_the_texts_message(values, message):
    batch = LazyBatch(pa.table({"seq": pa.array(values, pa.string())}))
    with pytest.raises(RecordError, match=message):
        ascii_texts(batch, "seq")
    with pytest.raises(RecordError, match=message):
        ascii_records(batch, "seq")


def test_a_missing_column_is_a_bad_record():
    with pytest.raises(RecordError, match="no column 'seq'"):
        ascii_records(LazyBatch(pa.table({"other": ["A"]})), "seq")
    with pytest.raises(RecordError, match="no column 'seq'"):
        ascii_records({"other": ["A"]}, "seq")


def test_object_column_keeps_one_value_per_row_whatever_their_shapes():
    same = object_column([np.zeros(3), np.ones(3)])  # np.array would make this (2, 3)
    assert same.shape == (2,) and same.dtype == object and same[1].tolist() == [1.0, 1.0, 1.0]
    ragged = object_column([np.zeros(2), np.zeros(5), b"x"])  # np.array refuses this
    assert [len(v) for v in ragged] == [2, 5, 1]
    assert object_column([]).shape == (0,)


def test_row_batch_types_columns_as_declared():
    from hpcprep import Column
    from hpcprep.columns import RowBatch

    outputs = (
        Column("source", "string"),
        Column("n", "int32"),
        Column("ok", "bool"),
        Column("score", "float32"),
        Column("tags", "list<string>"),
        Column("blob", "binary"),
    )
    batch = RowBatch(outputs)
    batch.add(n=3, ok=True, score=0.5, tags=["a", "b"], blob=b"\x00")
    batch.add(n=-1, ok=False, score=2.0, tags=[], blob=b"")
    assert len(batch) == 2
    out = batch.take(source="f.txt")
    assert out["n"].dtype == np.int32 and out["n"].tolist() == [3, -1]
    assert out["ok"].dtype == np.bool_ and out["score"].dtype == np.float32
    assert out["source"].dtype == object and out["source"].tolist() == ["f.txt", "f.txt"]
    assert out["tags"].dtype == object and out["tags"][0] == ["a", "b"] and out["tags"][1] == []
    assert out["blob"].tolist() == [b"\x00", b""]
    assert len(batch) == 0 and batch.take(source="x")["n"].tolist() == []  # it starts afresh
    batch.add(n=1, ok=True, score=1.0, tags=[])  # no blob
    with pytest.raises(KeyError, match="column 'blob': 0 values for 1 rows"):
        batch.take(source="f")
