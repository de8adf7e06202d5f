"""The JSON Lines sink of docs/plugins.md, run as written: a plugin author copies it, so it must work,
resume without losing or doubling a record, and refuse a directory hpcprep did not write."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import hpcprep
import pytest
from hpcprep.sink_files import GroupFiles
from hpcprep.stages import SinkContext

from . import sample_plugin

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


@pytest.fixture(scope="module")
def doc_plugin():
    """The doc's code block as a plugin module; pickled by value, as workers cannot import it."""
    import ray.cloudpickle as cloudpickle

    text = DOC.read_text()
    start = text.index("A whole sink that writes JSON Lines")
    code = re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)
    module = types.ModuleType("docs_jsonl_sink")
    sys.modules[module.__name__] = module
    exec(compile(code, str(DOC), "exec"), module.__dict__)

    @hpcprep.hookimpl
    def hpcprep_register_sinks(register):
        register(module.JsonLinesSink)

    module.hpcprep_register_sinks = hpcprep_register_sinks
    cloudpickle.register_pickle_by_value(module)
    yield module
    cloudpickle.unregister_pickle_by_value(module)
    del sys.modules[module.__name__]


def spec_for(tmp_path: Path, sink_dir: Path) -> dict:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for i in range(9):
        (data / f"f{i}.txt").write_text("x" * (i + 1) + ("POISON" if i == 4 else ""))
    return {
        "run": {"output": str(tmp_path / "run"), "commit_every": 3},
        "reader": {"stage": "files", "paths": [str(data)]},
        "encoders": [{"stage": "test.count"}],
        "sinks": [{"stage": "mydomain.jsonl", "path": str(sink_dir)}],
    }


def records(sink_dir: Path) -> list[tuple[str, int]]:
    rows = [json.loads(line) for f in sorted(sink_dir.glob("*.jsonl")) for line in f.read_text().splitlines()]
    return sorted((r["record_id"], r["n"]) for r in rows)


def test_the_documented_sink_writes_resumes_and_refuses_foreign_directories(tmp_path, doc_plugin, ray_local):
    sink_dir = tmp_path / "jsonl"
    spec = spec_for(tmp_path, sink_dir)
    plugins = [sample_plugin, doc_plugin]
    result = hpcprep.run(spec, plugins=plugins, progress=False)
    assert result.counts == {"inputs": 9, "outputs": 8, "errors": 1, "balanced": True}
    first = records(sink_dir)
    assert len(first) == 8 and len({rid for rid, _ in first}) == 8
    assert sorted(n for _, n in first) == [1, 2, 3, 4, 6, 7, 8, 9]

    # what an attempt cut off mid-group leaves: a file of group 0 by another attempt, holding copies
    stale = GroupFiles.name(SinkContext(run_dir="", run_name="", group=0, attempt="cutoff"), ".jsonl")
    (sink_dir / stale).write_text("".join(json.dumps({"record_id": rid, "n": n}) + "\n" for rid, n in first[:3]))
    assert len(records(sink_dir)) == 11
    hpcprep.run(spec, plugins=plugins, progress=False, resume=True)
    assert not (sink_dir / stale).exists()
    assert records(sink_dir) == first

    foreign = tmp_path / "someone-elses"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    other = spec_for(tmp_path, foreign)
    other["run"]["output"] = str(tmp_path / "run2")
    with pytest.raises(Exception, match="not written by hpcprep"):
        hpcprep.run(other, plugins=plugins, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"
