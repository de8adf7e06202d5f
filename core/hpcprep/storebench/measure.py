"""Timing and recall helpers shared by every store's measurements."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np


def seconds(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall seconds of one call and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def latencies(fn: Callable[[object], object], args: Iterable) -> dict:
    """p50 and p95 (milliseconds) of ``fn(arg)`` over ``args``, after one untimed warm-up call."""
    args = list(args)
    if not args:
        return {"p50_ms": None, "p95_ms": None, "calls": 0}
    fn(args[0])
    times = [seconds(lambda a=a: fn(a))[0] * 1e3 for a in args]
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
        "calls": len(times),
    }


#: Rows compared with the queries at a time: the float64 copy of a chunk stays small (64 Ki rows x 768 = 400 MB)
#: whatever the table's size, so a million 768-dim vectors need no more than the float32 table itself.
TOP_K_CHUNK = 65_536


class TopK:
    """The ``k`` nearest rows (squared l2, float64) to each query over rows given a chunk at a time, nearest first.
    Chunks carry their rows' indices, so masked or streamed rows keep the table's numbering."""

    def __init__(self, queries: np.ndarray, k: int):
        self.q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        self.k = k
        self.d = np.empty((len(self.q), 0))
        self.rows = np.empty((len(self.q), 0), dtype=np.int64)

    def add(self, vectors: np.ndarray, rows: np.ndarray) -> None:
        for start in range(0, len(rows), TOP_K_CHUNK):
            v = np.asarray(vectors[start : start + TOP_K_CHUNK], dtype=np.float64)
            # |v - q|^2 less |q|^2, which is the same for every row of a query.
            d = (v * v).sum(axis=1)[None, :] - 2.0 * (self.q @ v.T)
            d = np.concatenate([self.d, d], axis=1)
            part = np.broadcast_to(rows[start : start + TOP_K_CHUNK], (len(self.q), len(v)))
            r = np.concatenate([self.rows, part], axis=1)
            if d.shape[1] > self.k:
                keep = np.argpartition(d, self.k - 1, axis=1)[:, : self.k]
                d, r = np.take_along_axis(d, keep, axis=1), np.take_along_axis(r, keep, axis=1)
            self.d, self.rows = d, r

    def result(self) -> np.ndarray:
        """Row indices, one row per query, nearest first (ties by row index)."""
        order = np.lexsort((self.rows, self.d), axis=1)
        return np.take_along_axis(self.rows, order, axis=1)


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``k`` nearest rows (squared l2) to each query, nearest first; with ``mask``, among the
    rows where it is true only. Brute force in float64, so it is the reference the indexes are judged by."""
    top = TopK(queries, k)
    if mask is None:
        top.add(vectors, np.arange(len(vectors)))
    else:
        rows = np.flatnonzero(mask)
        for start in range(0, len(rows), TOP_K_CHUNK):
            part = rows[start : start + TOP_K_CHUNK]
            top.add(vectors[part], part)
    return top.result()


def recall_at_k(found: list[list], truth: list[list]) -> float:
    """Mean over queries of ``|found ∩ truth| / |truth|`` (ids of any hashable kind)."""
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} result lists for {len(truth)} queries")
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True) if len(t)]
    return round(float(np.mean(shares)), 4) if shares else float("nan")
