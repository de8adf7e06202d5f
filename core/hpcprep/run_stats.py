"""The run's single point of truth while a commit group runs: its books, and which read
tasks belong to it.

**Books.** Ray retries work: a task whose worker died runs again, an actor pool hands a
dead actor's batch to another actor, a lost node's finished tasks run again to rebuild
their outputs. Each retry reports the same work again. So every report carries the key
of the unit of work it describes (a read task's bundle, the identity of an encoder's
input batch), and a report replaces the earlier one with its key: the books count each
unit of work once, whichever attempt's output was kept.

**Admission.** A group is one Ray Data execution over a span of inputs cut into read
tasks (bundles). It should hold about ``commit_seconds`` of work, and how much that is
cannot be known in advance. So every read task asks before it reads: tasks that start
within ``commit_seconds`` of the group's first read are admitted; once that time has
passed, the group is cut after the highest bundle admitted, and a task after the cut
reads nothing (its inputs go to the next group). Bundles before the cut that had not
started yet are still admitted, so a group always covers a run of consecutive inputs.
The answer for a bundle never changes, so a retried read task does what its first
attempt did.

**Attempts.** Books are opened for one try of a group (its attempt id), and reports and
admission requests carry the attempt of the task that makes them: a late call from an
earlier try, or from an earlier run on a kept local Ray (whose commands share one
long-lived actor), is ignored, and such a read task reads nothing.

**Losing the actor.** The actor itself may die (its worker killed, out of memory). Ray
restarts it and retries the calls made to it meanwhile, but the restarted actor starts
empty: the reports made before its death are gone. Each life of the actor has its own
``incarnation``; when a group's closing ``take`` names another incarnation than its
``open_group``, the group's books are incomplete, and the runner runs the group again
under a fresh attempt before anything of it is committed.

A module of its own so that the actor's process imports Ray alone, not Ray Data and
the stages (about a CPU-second less at the start of every run).
"""

from __future__ import annotations

import time
import uuid

import ray

#: Counters summed over a stage's reports; the rest of a report (its node) is a label.
COUNTERS = ("items", "bytes", "rows_in", "rows_out", "errors", "seconds")


class RunStats:
    """Per-stage and per-node counters, and read-task admission, for one commit group.
    Runs as the actor ``RunStatsActor`` (its process titled ``ray::RunStats``)."""

    def __init__(self):
        self.incarnation = uuid.uuid4().hex
        self.open_group(0.0)

    def open_group(self, seconds: float, attempt: str = "") -> str:
        """Fresh books for ``attempt`` (the group's try); read tasks admitted until
        ``seconds`` after the first one (0: all). Returns this life's incarnation."""
        self.attempt = attempt
        self.reports: dict[tuple[str, str], dict] = {}
        self.seconds = seconds
        self.first: float | None = None
        self.highest = -1
        self.cut: int | None = None
        return self.incarnation

    def admit(self, bundle: int, attempt: str = "") -> bool:
        if attempt != self.attempt:
            return False  # a task of another try (or an earlier run) reads nothing into these books
        now = time.monotonic()
        if self.cut is None and self.seconds and self.first is not None and now - self.first >= self.seconds:
            self.cut = self.highest + 1
        if self.cut is not None:
            return bundle < self.cut
        if self.first is None:
            self.first = now
        self.highest = max(self.highest, bundle)
        return True

    def add(self, stage: str, key: str, attempt: str = "", **values) -> None:
        if attempt == self.attempt:
            self.reports[(stage, key)] = values

    def peek(self, attempt: str = "") -> dict[str, dict]:
        """Each stage's counters so far, for the progress lines; the group goes on."""
        if attempt != self.attempt:
            return {}
        return summarise(self.reports)["stages"]

    def take(self) -> dict:
        """``{"stages": {stage: sums}, "nodes": {node: {stage: sums}}, "error_keys": [...],
        "sha256": {input index: hash}, "incarnation": ..., "cut": first bundle not
        admitted, or None}``."""
        hashes: dict[str, str] = {}
        for values in self.reports.values():
            hashes.update(values.get("sha256", {}))
        return {**summarise(self.reports), "sha256": hashes, "incarnation": self.incarnation, "cut": self.cut}


#: Restarted when it dies, calls made meanwhile retried; see "Losing the actor" above.
RunStatsActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(RunStats)


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
