"""Commit groups end by time: a crash costs about ``commit_seconds`` of work whatever the
pipeline's speed, and a run shorter than that is one Ray Data execution."""

from __future__ import annotations

import json

import hpcprep
import pyarrow.parquet as pq
import pytest
from hpcprep import run_stats
from hpcprep.run_stats import RunStats
from hpcprep.stages import InputItem
from hpcprep.state import FIRST_SPAN_BYTES_PER_CPU, HEADROOM, SPAN_ITEMS_PER_CPU, GroupPacer

from . import sample_plugin

MB = 1 << 20


def items(n: int, size: int) -> list[InputItem]:
    return [InputItem(source=f"f{i}", index=i, size=size) for i in range(n)]


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(run_stats.time, "monotonic", c)
    return c


def test_read_tasks_are_admitted_for_the_groups_seconds_then_cut(clock):
    books = RunStats()
    books.open_group(10.0)
    clock.now += 50  # setup before the first read (an actor loading a model) does not count
    assert [books.admit(b) for b in (0, 1, 3)] == [True, True, True]
    clock.now += 9.9
    assert books.admit(4)
    clock.now += 0.1
    # time is up: the group ends after the highest bundle admitted (4); bundle 2, which
    # had not started, still belongs to it, so the group covers bundles 0..4
    assert [books.admit(b) for b in (5, 2, 6)] == [False, True, False]
    assert books.take()["cut"] == 5
    # a retried read task gets the answer its first attempt got
    assert books.admit(3) and not books.admit(5)


def test_a_group_without_seconds_admits_everything(clock):
    books = RunStats()
    books.open_group(0.0)
    clock.now += 1e6
    assert all(books.admit(b) for b in range(100))
    assert books.take()["cut"] is None


def test_opening_a_group_starts_fresh_books_and_admission(clock):
    books = RunStats()
    books.open_group(1.0)
    books.admit(0)
    books.add("reader", "read000000", items=3, rows_out=30)
    clock.now += 5
    assert not books.admit(1)
    before = books.take()
    assert before["cut"] == 1 and before["stages"]["reader"]["rows_out"] == 30
    incarnation = books.open_group(1.0)
    assert incarnation == before["incarnation"]  # the same life of the actor
    after = books.take()
    assert after["stages"] == {} and after["cut"] is None and books.admit(1)
    assert RunStats().open_group(1.0) != incarnation  # a restarted actor is another life


def test_calls_of_another_attempt_do_not_reach_the_books(clock):
    """A late report or admission request from an earlier try of the group, or from an
    earlier run sharing the actor on a kept local Ray, is ignored: that read task reads
    nothing and its counts are not added."""
    books = RunStats()
    books.open_group(0.0, attempt="old")
    assert books.admit(0, "old")
    books.add("reader", "read000000", attempt="old", rows_out=5)
    books.open_group(0.0, attempt="new")
    assert not books.admit(0, "old") and books.admit(0, "new")
    books.add("reader", "read000000", attempt="old", rows_out=5)
    books.add("reader", "read000001", attempt="new", rows_out=7)
    assert books.take()["stages"] == {"reader": {"rows_out": 7}}


def test_commit_every_fixes_the_inputs_per_group():
    pacer = GroupPacer(items(10, MB), commit_every=3, seconds=60, cpus=2)
    ends = [pacer.next_end(s) for s in (0, 3, 6, 9)]
    assert ends == [3, 6, 9, 10]


def test_the_first_span_is_the_run_up_to_a_cap():
    assert GroupPacer(items(500, MB), commit_every=0, seconds=100, cpus=2).next_end(0) == 500
    weight = 32 * MB + InputItem.OVERHEAD_BYTES
    big = GroupPacer(items(1000, 32 * MB), commit_every=0, seconds=100, cpus=2)
    assert big.next_end(0) == -(-2 * FIRST_SPAN_BYTES_PER_CPU // weight)
    many = GroupPacer(items(100_000, 1), commit_every=0, seconds=100, cpus=2)
    assert many.next_end(0) == 2 * SPAN_ITEMS_PER_CPU


def test_later_spans_leave_headroom_over_what_the_last_group_did():
    pacer = GroupPacer(items(1000, MB), commit_every=0, seconds=100, cpus=2)
    pacer.observe(0, 50, 100.0)  # 50 inputs in the group's 100 s
    assert pacer.next_end(50) == 50 + HEADROOM * 50
    pacer.observe(50, 60, 1000.0)  # a slow group: still every CPU gets work, twice over
    assert pacer.next_end(60) == 64
    # a first group that used up its span early: the next span grows with its rate
    fast = GroupPacer(items(100_000, 32 * MB), commit_every=0, seconds=100, cpus=2)
    first = fast.next_end(0)
    fast.observe(0, first, 25.0)
    assert fast.next_end(first) == first + HEADROOM * 4 * first
    # a tail under half the span joins it rather than become a group of its own
    pacer.observe(0, 300, 100.0)
    assert pacer.next_end(0) == 600 and pacer.next_end(300) == 1000


def spec(tmp_path, name: str, commit_seconds: float) -> dict:
    out = tmp_path / name
    return {
        "run": {"output": str(out), "commit_seconds": commit_seconds},
        "reader": {"stage": "test.numbers", "items": 24, "rows": 500, "batch_rows": 500},
        "encoders": [{"stage": "test.odd", "every": 331}, {"stage": "test.slow", "seconds": 0.25}],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def test_groups_end_by_time_and_cover_every_input_once(tmp_path, ray_local):
    """A run of about 6 s of work: one group with the default commit_seconds, several
    consecutive groups with 1.5 s, the same rows and errors either way."""
    whole = hpcprep.run(spec(tmp_path, "whole", 120.0), plugins=[sample_plugin], progress=False)
    cut = hpcprep.run(spec(tmp_path, "cut", 1.5), plugins=[sample_plugin], progress=False)
    groups = {}
    for r in (whole, cut):
        lines = (r.output_dir / "_state" / "commits.jsonl").read_text().splitlines()
        groups[r.output_dir.name] = [json.loads(x) for x in lines]
    assert [g["inputs"] for g in groups["whole"]] == [[0, 24]]
    spans = [g["inputs"] for g in groups["cut"]]
    assert len(spans) >= 2 and spans[0][0] == 0 and spans[-1][1] == 24
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # each group's books cover exactly its inputs
    for g in groups["cut"]:
        assert g["stages"]["reader:test.numbers"]["items"] == g["inputs"][1] - g["inputs"][0]
    assert cut.counts == whole.counts and cut.counts["balanced"]
    tables = [pq.read_table(r.output_dir / "table").sort_by("x") for r in (whole, cut)]
    assert tables[1].select(["record_id", "x", "y"]).equals(tables[0].select(["record_id", "x", "y"]))
    errors = [sorted(r.errors().column("record_id").to_pylist()) for r in (whole, cut)]
    assert errors[1] == errors[0] and errors[0]
