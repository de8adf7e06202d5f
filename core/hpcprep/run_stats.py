"""The per-group counters that read, encoder and write tasks report to.

A module of its own so that the actor's process imports Ray alone, not Ray Data and
the stages (about a CPU-second less at the start of every run).
"""

from __future__ import annotations

import ray


@ray.remote(num_cpus=0)
class RunStats:
    """Per-stage counters for one commit group."""

    def __init__(self):
        self.rows: dict[str, dict[str, float]] = {}

    def add(self, key: str, **values: float) -> None:
        row = self.rows.setdefault(key, {})
        for k, v in values.items():
            row[k] = row.get(k, 0) + v

    def take(self) -> dict:
        rows, self.rows = self.rows, {}
        return rows
