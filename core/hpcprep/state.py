"""What a run keeps so that another process can resume it, and how it is cut into
commit groups.

A commit group is a run of consecutive inputs that goes through the pipeline as one
Ray Data execution and is then committed: its outputs become part of the result and
``_state/commits.jsonl`` records the range of inputs it covered. ``--resume`` goes on
after the last committed input, so a crash costs at most the group under way.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from .stages import InputItem

STATE_DIR = "_state"


@dataclass
class RunState:
    """What has been committed, kept in the run directory so a later process can resume."""

    root: Path
    commits: dict[int, dict] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.root / STATE_DIR

    def load(self) -> None:
        path = self.dir / "commits.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.commits[rec["group"]] = rec

    def record(self, rec: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "commits.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.commits[rec["group"]] = rec

    def committed_attempts(self) -> dict[int, str]:
        return {g: rec["attempt"] for g, rec in self.commits.items()}

    def inputs_done(self) -> int:
        """How many of the run's inputs (in order) committed groups cover."""
        if any("inputs" not in rec for rec in self.commits.values()):
            raise ValueError(
                f"{self.dir / 'commits.jsonl'} was written by an older hpcprep; run again with --overwrite"
            )
        return max((rec["inputs"][1] for rec in self.commits.values()), default=0)

    def write_running(self, group: dict) -> None:
        """The group under way (``running.json``): what a crash now would cost."""
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / ".running.json"
        tmp.write_text(json.dumps(group))
        tmp.replace(self.dir / "running.json")

    def write_plan(self, plan: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "plan.json").write_text(json.dumps(plan, indent=1))

    def read_plan(self) -> dict | None:
        path = self.dir / "plan.json"
        return json.loads(path.read_text()) if path.exists() else None


def fingerprint(resolved) -> str:
    """What must not change between an interrupted run and its resume. Where the run
    runs and how it is cut into groups may: commits record the inputs they cover."""
    spec = resolved.to_dict(redact=True)
    for key in ("address", "num_cpus", "commit_every", "commit_seconds"):
        spec["run"].pop(key, None)
    payload = json.dumps(
        {"spec": spec, "inputs": [(i.source, i.size, i.offset, i.length) for i in resolved.inputs]},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


#: The first automatic group's span holds at most this much input per CPU (64 read tasks'
#: worth of ``reading.TASK_BYTES``), and any group at most this many inputs per CPU (32
#: tasks of ``reading.TASK_ITEMS``). The group's admission (``run_stats``) ends it by time,
#: usually well before; read tasks after the cut still start, only to read nothing, so
#: the span is not the whole run.
FIRST_SPAN_BYTES_PER_CPU = 64 * (64 << 20)
SPAN_ITEMS_PER_CPU = 32 * 512
#: Later spans hold this many times what the group before got through in
#: ``commit_seconds`` at its rate: enough that the time, not the span, ends a group.
HEADROOM = 2


class GroupPacer:
    """The span of inputs each commit group may cover.

    ``commit_every`` > 0 fixes the number of inputs per group. Otherwise a group's span is
    generous and the group ends by time: its read tasks are admitted for ``seconds``
    after its first read (``run_stats.RunStats.admit``), so a crash loses about that much
    work whatever the pipeline's speed, and a run shorter than that is one Ray Data
    execution with no commit in the middle.
    """

    def __init__(self, items: list[InputItem], commit_every: int, seconds: float, cpus: float):
        self.items = items
        self.commit_every = commit_every
        self.seconds = seconds
        self.min_items = int(2 * max(cpus, 1))  # every CPU gets work, and some to spare
        self.first_weight = FIRST_SPAN_BYTES_PER_CPU * max(cpus, 1)
        self.max_items = int(SPAN_ITEMS_PER_CPU * max(cpus, 1))
        self.weights = [i.weight for i in items]
        self.last: tuple[int, float] | None = None  # (weight, seconds) of the latest group

    def observe(self, start: int, end: int, seconds: float) -> None:
        self.last = (sum(self.weights[start:end]), seconds)

    def next_end(self, start: int) -> int:
        """Where the span of the group starting at input ``start`` ends (exclusive)."""
        n = len(self.items)
        if self.commit_every:
            return min(n, start + self.commit_every)
        want = self.first_weight
        if self.last is not None:
            weight, seconds = self.last
            want = HEADROOM * weight * self.seconds / max(seconds, 1e-3)
        end, total = start, 0
        while end < n and end - start < self.max_items and (total < want or end - start < self.min_items):
            total += self.weights[end]
            end += 1
        # a short tail would be a group of its own, with its own start-up: offer it too
        # (the admission still ends the group in time)
        if end < n and n - start <= self.max_items and sum(self.weights[end:]) < total / 2:
            end = n
        return end
