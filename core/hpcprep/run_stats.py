"""The per-group counters that read and encoder tasks report to.

Ray retries work: a task whose worker died runs again, an actor pool hands a dead
actor's batch to another actor, a lost node's finished tasks run again to rebuild
their outputs. Each retry reports the same work again. So every report carries the
key of the unit of work it describes (a read task's bundle, the identity of an encoder's
input batch), and a report replaces the earlier one with its key: the books count each
unit of work once, whichever attempt's output was kept.

The actor itself may die too (its worker killed, out of memory). Ray restarts it and
retries the reports sent to it meanwhile, but the restarted actor starts empty: the
reports made before its death are gone. Each life of the actor has its own
``incarnation``, returned by ``take``; when a group's closing ``take`` names another
incarnation than its opening one, the group's books are incomplete, and the runner runs
the group again under a fresh attempt before anything of it is committed.

A module of its own so that the actor's process imports Ray alone, not Ray Data and
the stages (about a CPU-second less at the start of every run).
"""

from __future__ import annotations

import uuid

import ray

#: Counters summed over a stage's reports; the rest of a report (its node) is a label.
COUNTERS = ("items", "rows_in", "rows_out", "errors", "seconds")


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RunStats:
    """Per-stage and per-node counters for one commit group."""

    def __init__(self):
        self.reports: dict[tuple[str, str], dict] = {}
        self.incarnation = uuid.uuid4().hex

    def add(self, stage: str, key: str, **values) -> None:
        self.reports[(stage, key)] = values

    def take(self) -> dict:
        """``{"stages": {stage: sums}, "nodes": {node: {stage: sums}}, "error_keys": [...],
        "incarnation": ...}``, and a fresh start."""
        reports, self.reports = self.reports, {}
        return {**summarise(reports), "incarnation": self.incarnation}


def summarise(reports: dict[tuple[str, str], dict]) -> dict:
    stages: dict[str, dict] = {}
    nodes: dict[str, dict] = {}
    error_keys = sorted(key for (_, key), values in reports.items() if values.get("errors"))
    for (stage, _), values in reports.items():
        node = nodes.setdefault(values.get("node", "?"), {}).setdefault(stage, {})
        total = stages.setdefault(stage, {})
        for k in COUNTERS:
            if k in values:
                total[k] = total.get(k, 0) + values[k]
                node[k] = node.get(k, 0) + values[k]
    return {"stages": stages, "nodes": nodes, "error_keys": error_keys}
