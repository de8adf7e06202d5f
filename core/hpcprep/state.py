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
            raise ValueError(f"{self.dir / 'commits.jsonl'} was written by an older hpcprep; run again with --overwrite")
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


#: The first automatic group of a run holds at most this much input per CPU, and at most
#: this many inputs per CPU or this share of them, whichever is more: small enough that a
#: slow pipeline commits soon, large enough that a fast one measures its rate (and a run
#: of many tiny inputs is not cut into many tiny groups).
FIRST_GROUP_BYTES_PER_CPU = 64 << 20
FIRST_GROUP_ITEMS_PER_CPU = 4
FIRST_GROUP_SHARE = 0.02
#: A group holds at most this many times the input of the one before: the first groups'
#: rates include start-up, so they understate what the run can do.
GROWTH = 8


class GroupPacer:
    """Cuts the inputs into commit groups as the run goes.

    ``commit_every`` > 0 fixes the number of inputs per group. Otherwise each group aims
    at ``seconds`` of work at the rate the groups before it ran (input bytes per second,
    an item counting ``InputItem.weight``), so a crash loses about that much work
    whatever the pipeline's speed, and a long run is a few long Ray Data executions whose
    start-up costs little beside them.
    """

    def __init__(self, items: list[InputItem], commit_every: int, seconds: float, cpus: float):
        self.items = items
        self.commit_every = commit_every
        self.seconds = seconds
        self.min_items = int(2 * max(cpus, 1))  # every CPU gets work, and some to spare
        self.first_weight = FIRST_GROUP_BYTES_PER_CPU * max(cpus, 1)
        self.first_items = max(int(FIRST_GROUP_ITEMS_PER_CPU * max(cpus, 1)), int(FIRST_GROUP_SHARE * len(items)))
        self.weights = [i.weight for i in items]
        self.last: tuple[int, float] | None = None  # (weight, seconds) of the latest group

    def observe(self, start: int, end: int, seconds: float) -> None:
        self.last = (sum(self.weights[start:end]), seconds)

    def next_end(self, start: int) -> int:
        """Where the group starting at input ``start`` ends (exclusive)."""
        n = len(self.items)
        if self.commit_every:
            return min(n, start + self.commit_every)
        if self.last is None:
            want = min(self.first_weight, sum(self.weights[start : start + self.first_items]))
        else:
            weight, seconds = self.last
            want = min(weight * self.seconds / max(seconds, 1e-3), weight * GROWTH)
        end, total = start, 0
        while end < n and (total < want or end - start < self.min_items):
            total += self.weights[end]
            end += 1
        # a short tail would be a group of its own, with its own start-up: join it
        rest = sum(self.weights[end:])
        if end < n and (rest < want / 2 or n - end < self.min_items):
            end = n
        return end
