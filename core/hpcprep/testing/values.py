"""How the stage checks compare, describe and convert what a stage produced: equality of
outputs across runs, declared column types against produced arrays, the Arrow form Ray gives
a batch, read-only batches as Ray's zero-copy ones are, and one-line descriptions of
exceptions."""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def picklers():
    try:
        import cloudpickle
    except ImportError:  # Ray vendors the cloudpickle it ships stages with
        from ray import cloudpickle
    return [("pickle", pickle.dumps, pickle.loads), ("cloudpickle", cloudpickle.dumps, cloudpickle.loads)]


def describe(exc: BaseException) -> str:
    """``Type: message (at file:line)``, pointing at the innermost frame."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        text += f" (at {Path(f.filename).name}:{f.lineno})"
    return text


def read_only(batch: dict) -> dict:
    """A copy with read-only arrays, as Ray's zero-copy batches are."""
    out = {}
    for k, v in batch.items():
        v = v.copy()
        v.setflags(write=False)
        out[k] = v
    return out


def quiet_plan(reader):
    try:
        items = reader.plan()
    except Exception:
        return None
    return items if isinstance(items, list) and items else None


def equal(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype == object or b.dtype == object:
            return all(equal(x, y) for x, y in zip(a.ravel(), b.ravel()))
        if a.dtype.kind in "fc" and b.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b)
    except Exception:
        return False


def difference(a: dict, b: dict) -> str | None:
    if set(a) != set(b):
        return f"columns {sorted(a)} then {sorted(b)}"
    for k in a:
        x, y = a[k], b[k]
        if np.asarray(x).shape != np.asarray(y).shape:
            return f"column {k!r} has shape {np.shape(x)} then {np.shape(y)}"
        if not equal(x, y):
            rows = [i for i in range(len(x)) if not equal(x[i], y[i])]
            return f"column {k!r} differs in row(s) {rows[:10]}"
    return None


def difference_reads(a: list, b: list) -> str | None:
    if [k for k, _ in a] != [k for k, _ in b]:
        return "plan() listed different input items"
    for (key, outs_a), (_, outs_b) in zip(a, b):
        if len(outs_a) != len(outs_b):
            return f"{key[0]}: {len(outs_a)} then {len(outs_b)} batches"
        for x, y in zip(outs_a, outs_b):
            if isinstance(x, dict) and isinstance(y, dict):
                diff = difference(x, y)
                if diff:
                    return f"{key[0]}: {diff}"
            elif x != y:
                return f"{key[0]}: {x!r} then {y!r}"
    return None


_INT = re.compile(r"^u?int(8|16|32|64)$")
_FLOAT = re.compile(r"^(float(16|32|64)|double|halffloat)$")
_FIXED = re.compile(r"^fixed_size_list<\s*(\w+)\s*>\s*\[\s*(\d+)\s*\]$")
_LIST = re.compile(r"^(large_)?list<\s*(\w+)\s*>$")


def kind_ok(declared: str, kind: str) -> bool | None:
    """Whether numpy dtype kind ``kind`` fits the declared scalar type; None if unknown."""
    if _INT.match(declared):
        return kind in "iu"
    if _FLOAT.match(declared):
        return kind == "f"
    if declared in ("bool", "boolean"):
        return kind == "b"
    return None


def elements_kind(values) -> str | None:
    try:
        return np.asarray(list(values)).dtype.kind
    except Exception:
        return None


def type_mismatch(declared: str, col: np.ndarray) -> str | None:
    """Why ``col`` does not look like ``declared``; None if it does or the type is not checked."""
    declared = declared.strip().lower()
    present = [v for v in col if v is not None] if col.dtype == object else None
    if declared in ("string", "large_string", "utf8", "str"):
        if col.dtype.kind == "U" or (present is not None and all(isinstance(v, str) for v in present)):
            return None
        return f"holds {show_dtype(col)}, not text"
    if declared in ("binary", "large_binary", "bytes"):
        if col.dtype.kind == "S" or (
            present is not None and all(isinstance(v, (bytes, bytearray, memoryview)) for v in present)
        ):
            return None
        return f"holds {show_dtype(col)}, not bytes"
    fixed = _FIXED.match(declared)
    listed = _LIST.match(declared)
    if fixed or listed:
        inner = fixed.group(1) if fixed else listed.group(2)
        if col.ndim == 2:
            lengths, kind = {col.shape[1]}, col.dtype.kind
        elif col.dtype == object:
            rows = [np.asarray(v) for v in present]
            if any(r.ndim != 1 for r in rows):
                return "its rows are not 1-d sequences"
            lengths = {len(r) for r in rows}
            kinds = {r.dtype.kind for r in rows}
            kind = kinds.pop() if len(kinds) == 1 else None
        else:
            return f"is a {col.ndim}-d {col.dtype} array, not one sequence per row"
        if fixed and lengths and lengths != {int(fixed.group(2))}:
            return f"its rows have length {sorted(lengths)}"
        ok = kind_ok(inner, kind) if kind else None
        if ok is False:
            return f"its elements are {kind!r}-kind numbers"
        return None
    if col.ndim != 1:
        if kind_ok(declared, "f") is not None:
            return f"is a {col.ndim}-d array, not one value per row"
        return None
    kind = elements_kind(present) if present is not None else col.dtype.kind
    ok = kind_ok(declared, kind) if kind else None
    if ok is False:
        return f"holds {show_dtype(col)}"
    return None


def show_dtype(col: np.ndarray) -> str:
    if col.dtype != object:
        return f"{col.dtype} values"
    types = sorted({type(v).__name__ for v in col})
    return "objects of type " + ", ".join(types)


@contextlib.contextmanager
def quiet_logging():
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def to_arrow(batch: dict):
    """The Arrow table Ray makes of a batch, as the runner's blocks are made."""
    with warnings.catch_warnings(), quiet_logging():
        warnings.simplefilter("ignore", DeprecationWarning)  # Ray's own, not the plugin's
        from ray.data.block import BlockAccessor

        return BlockAccessor.batch_to_block(batch)


def is_arrow(values) -> bool:
    import pyarrow as pa

    return isinstance(values, (pa.Array, pa.ChunkedArray))


def arrow_problem(columns: dict) -> str | None:
    if not columns:
        return None
    try:
        table = to_arrow(columns)
    except Exception as exc:
        return f"the output does not convert to Arrow: {describe(exc)}"
    pickled = [f.name for f in table.schema if "pickled_object" in str(f.type)]
    if pickled:
        return (
            f"column(s) {pickled} only convert to Arrow as pickled Python objects; use numbers, "
            "strings, bytes or equal-shaped arrays"
        )
    return None
