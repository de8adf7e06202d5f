"""Commit groups sized by time: a crash costs about ``commit_seconds`` of work, whatever
the pipeline's speed, and a fast run is a few long groups."""

from __future__ import annotations

from hpcprep.stages import InputItem
from hpcprep.state import FIRST_GROUP_BYTES_PER_CPU, FIRST_GROUP_ITEMS_PER_CPU, FIRST_GROUP_SHARE, GROWTH, GroupPacer

MB = 1 << 20


def items(n: int, size: int) -> list[InputItem]:
    return [InputItem(source=f"f{i}", index=i, size=size) for i in range(n)]


def cut(pacer: GroupPacer, rate: float) -> list[tuple[int, int]]:
    """The groups a run at ``rate`` bytes/s gets, each observed as it would be."""
    groups, start = [], 0
    while start < len(pacer.items):
        end = pacer.next_end(start)
        assert end > start
        groups.append((start, end))
        pacer.observe(start, end, sum(pacer.weights[start:end]) / rate)
        start = end
    return groups


def test_commit_every_fixes_the_inputs_per_group():
    pacer = GroupPacer(items(10, MB), commit_every=3, seconds=60, cpus=2)
    assert cut(pacer, rate=MB) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_groups_grow_to_the_time_target_and_stay_there():
    weight = 32 * MB + InputItem.OVERHEAD_BYTES
    pacer = GroupPacer(items(500, 32 * MB), commit_every=0, seconds=100, cpus=2)
    rate = 20 * MB  # bytes per second
    groups = cut(pacer, rate)
    seconds = [(e - s) * weight / rate for s, e in groups]
    # the first group is small, so a slow pipeline commits soon...
    assert groups[0] == (0, -(-2 * FIRST_GROUP_BYTES_PER_CPU // weight))
    small = GroupPacer(items(200, MB), commit_every=0, seconds=100, cpus=2)
    assert small.next_end(0) == 2 * FIRST_GROUP_ITEMS_PER_CPU
    many = GroupPacer(items(20_000, 1), commit_every=0, seconds=100, cpus=2)
    assert many.next_end(0) == 20_000 * FIRST_GROUP_SHARE
    # ...each grows at most GROWTH times, then they hold about 100 s of work each
    for a, b in zip(seconds, seconds[1:-1]):
        assert b <= a * GROWTH + weight / rate
    assert all(95 <= s <= 100 + weight / rate for s in seconds[4:-1])
    assert seconds[-1] <= 150  # a short tail joins the last group
    assert groups[-1][1] == 500 and all(a[1] == b[0] for a, b in zip(groups, groups[1:]))


def test_a_slow_pipeline_commits_often():
    pacer = GroupPacer(items(400, 4 * MB), commit_every=0, seconds=60, cpus=2)
    groups = cut(pacer, rate=MB // 10)  # 40 s per input
    assert all(e - s <= 4 for s, e in groups[1:])  # every CPU busy twice over, no more
    assert groups[0][1] - groups[0][0] == 2 * FIRST_GROUP_ITEMS_PER_CPU


def test_every_group_keeps_each_cpu_busy():
    pacer = GroupPacer(items(100, 1), commit_every=0, seconds=0.001, cpus=8)
    assert all(e - s >= 16 for s, e in cut(pacer, rate=1e9)[:-1])
