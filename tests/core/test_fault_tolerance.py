"""Books that survive retries: a worker killed mid-run (kill -9 of its own process) costs
nothing. Ray runs the lost work again; every record is counted once, the outputs and the
errors table equal those of an undisturbed run, and a run whose books do not balance
fails, naming the stage."""

from __future__ import annotations

import json

import hpcprep
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from hpcprep import commit_group
from hpcprep.cli import cli
from hpcprep.manifest import balance
from hpcprep.plugins import PluginRegistry
from hpcprep.runner import UnbalancedRun

from . import sample_plugin

ITEMS, ROWS = 3, 12_000
# Item 1 holds x = 12 000..23 999 and its read task hands on blocks of 6 000 rows: the
# worker dies in the second block, after the first was encoded, written and counted.
CRASH_AT = 20_000


def spec(tmp_path, name: str, crash_at: int, compute: str) -> dict:
    out = tmp_path / name
    return {
        "run": {"output": str(out)},
        "reader": {"stage": "test.numbers", "items": ITEMS, "rows": ROWS, "batch_rows": 2_000},
        "encoders": [
            {"stage": "test.odd", "every": 997},
            {
                "stage": "test.crash",
                "at": crash_at,
                "marker": str(tmp_path / f"{name}.killed"),
                "placement": {"compute": compute},
            },
        ],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def books(result) -> list[dict]:
    return [
        {k: v for k, v in s.items() if k not in ("seconds", "placement", "target")} for s in result.manifest["stages"]
    ]


@pytest.mark.parametrize("compute", ["tasks", "actors"])
def test_a_worker_killed_mid_run_costs_nothing(tmp_path, ray_local, compute):
    calm = hpcprep.run(spec(tmp_path, "calm", -1, compute), plugins=[sample_plugin], progress=False)
    hit = hpcprep.run(spec(tmp_path, "hit", CRASH_AT, compute), plugins=[sample_plugin], progress=False)
    assert (tmp_path / "hit.killed").exists(), "the worker was killed"

    bad = len(range(0, ITEMS * ROWS, 997))
    assert (
        hit.counts
        == calm.counts
        == {
            "inputs": ITEMS * ROWS,
            "outputs": ITEMS * ROWS - bad,
            "errors": bad,
            "balanced": True,
        }
    )
    assert books(hit) == books(calm)

    tables = [pq.read_table(r.output_dir / "table").sort_by("x") for r in (calm, hit)]
    assert tables[1].num_rows == ITEMS * ROWS - bad
    assert pc.count_distinct(tables[1]["record_id"]).as_py() == tables[1].num_rows
    assert tables[1].select(["record_id", "x", "y"]).equals(tables[0].select(["record_id", "x", "y"]))

    errors = [sorted(r.errors().column("record_id").to_pylist()) for r in (calm, hit)]
    assert errors[1] == errors[0] and len(errors[1]) == bad
    # nothing of the killed attempt is left beside the committed files
    commits = [json.loads(x) for x in (hit.output_dir / "_state" / "commits.jsonl").read_text().splitlines()]
    assert len(list((hit.output_dir / "table").glob("*.parquet"))) == sum(
        c["sinks"]["sinks[0]"]["files"] for c in commits
    )
    files = list((hit.output_dir / "errors").glob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == bad
    manifest = json.loads((hit.output_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete"


def test_losing_the_books_actor_runs_the_group_again(tmp_path, ray_local, capsys):
    """hpcprep's RunStats actor killed mid-group: Ray restarts it empty, the runner notices
    before committing and runs the group again under a fresh attempt; the books, the table
    and the errors table equal those of an undisturbed run."""
    calm = hpcprep.run(spec(tmp_path, "calm", -1, "tasks"), plugins=[sample_plugin], progress=False)
    s = spec(tmp_path, "hit", CRASH_AT, "tasks")
    s["encoders"][1]["victim"] = "books"
    hit = hpcprep.run(s, plugins=[sample_plugin], progress=True)
    assert (tmp_path / "hit.killed").exists(), "the RunStats actor was killed"
    assert "lost the group's books; running the group again" in capsys.readouterr().err

    assert hit.counts == calm.counts and hit.counts["balanced"]
    assert books(hit) == books(calm)
    assert hit.manifest["groups"]["redone_after_books_lost"] == 1
    assert calm.manifest["groups"]["redone_after_books_lost"] == 0
    tables = [pq.read_table(r.output_dir / "table").sort_by("x") for r in (calm, hit)]
    assert tables[1].select(["record_id", "x", "y"]).equals(tables[0].select(["record_id", "x", "y"]))
    errors = [sorted(r.errors().column("record_id").to_pylist()) for r in (calm, hit)]
    assert errors[1] == errors[0]
    # the lost attempt left no file behind, in the table or the errors table
    commits = [json.loads(x) for x in (hit.output_dir / "_state" / "commits.jsonl").read_text().splitlines()]
    assert len(list((hit.output_dir / "table").glob("*.parquet"))) == sum(
        c["sinks"]["sinks[0]"]["files"] for c in commits
    )
    files = list((hit.output_dir / "errors").glob("*.parquet"))
    assert sum(pq.read_metadata(f).num_rows for f in files) == len(errors[0])


def test_unbalanced_books_name_the_stage():
    stages = [
        {"stage": "test.numbers", "where": "reader", "rows_out": 10, "errors": 0, "inputs": 1},
        {"stage": "test.odd", "where": "encoders[0]", "rows_in": 10, "rows_out": 9, "errors": 1, "fanout": False},
        {"stage": "parquet", "where": "sinks[0]", "rows_in": 12},
    ]
    counts, problems = balance(stages)
    assert not counts["balanced"]
    assert problems == [
        "sinks[0] (parquet) wrote 12 rows, encoders[0] (test.odd) gave 9",
        "inputs 10 != outputs 12 + errors 1",
    ]
    stages[2]["rows_in"] = 9
    assert balance(stages) == ({"inputs": 10, "outputs": 9, "errors": 1, "balanced": True}, [])


def test_a_run_that_does_not_balance_exits_non_zero(tmp_path, ray_local, monkeypatch):
    """A block counted twice (as retries did before the books were keyed by work) fails
    the run: the CLI exits 1 naming the stage, ``hpcprep.run`` raises."""
    counted = commit_group._add_writes

    def twice(books, results):
        counted(books, results + results[:1])

    monkeypatch.setattr(commit_group, "_add_writes", twice)
    s = spec(tmp_path, "twice", -1, "tasks")
    with pytest.raises(UnbalancedRun, match=r"sinks\[0\] \(parquet\) wrote \d+ rows, encoders\[1\]") as info:
        hpcprep.run(s, plugins=[sample_plugin], progress=False)
    assert info.value.result.manifest["status"] == "unbalanced"

    path = tmp_path / "twice.toml"
    out = tmp_path / "twice-cli"
    path.write_text(
        f"""
[run]
output = "{out}"
[reader]
stage = "test.numbers"
items = {ITEMS}
rows = {ROWS}
[[encoders]]
stage = "test.odd"
[[sinks]]
stage = "parquet"
path = "{out / "table"}"
"""
    )
    registry = PluginRegistry(extra_plugins=[sample_plugin])
    res = CliRunner().invoke(cli, ["run", str(path), "--quiet"], obj={"registry": registry})
    assert res.exit_code == 1, res.output
    assert "the books do not balance" in res.output and "sinks[0] (parquet) wrote" in res.output
