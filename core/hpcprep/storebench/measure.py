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


def exact_top_k(vectors: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Row indices of the ``k`` nearest rows (squared l2) to each query, nearest first; with ``mask``, among the
    rows where it is true only. Brute force in float64, so it is the reference the indexes are judged by."""
    v = np.asarray(vectors, dtype=np.float64)
    rows = np.flatnonzero(mask) if mask is not None else np.arange(len(v))
    v = v[rows]
    out = np.empty((len(queries), min(k, len(rows))), dtype=np.int64)
    norms = (v * v).sum(axis=1)
    for i, q in enumerate(np.asarray(queries, dtype=np.float64)):
        d = norms - 2.0 * (v @ q)
        top = np.argpartition(d, out.shape[1] - 1)[: out.shape[1]] if len(d) > out.shape[1] else np.arange(len(d))
        out[i] = rows[top[np.argsort(d[top], kind="stable")]]
    return out


def recall_at_k(found: list[list], truth: list[list]) -> float:
    """Mean over queries of ``|found ∩ truth| / |truth|`` (ids of any hashable kind)."""
    if len(found) != len(truth):
        raise ValueError(f"{len(found)} result lists for {len(truth)} queries")
    shares = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True) if len(t)]
    return round(float(np.mean(shares)), 4) if shares else float("nan")
