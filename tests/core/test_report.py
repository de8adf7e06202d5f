"""``hpcprep report``: the page's numbers are the manifest's, plugins add sections, nothing is fetched."""

from __future__ import annotations

import re

import hpcprep
import pytest
from click.testing import CliRunner
from hpcprep.cli import cli
from hpcprep.plugins import PluginRegistry
from hpcprep.report import ReportSection, RunOutputs, build_report

from . import sample_plugin

KEYED = re.compile(r'data-key="([^"]+)"[^>]*>([^<]*)<')


def keyed(page: str) -> dict[str, str]:
    """Every ``data-key`` value on the page, as text."""
    return {k: v for k, v in KEYED.findall(page)}


def number(text: str) -> float:
    return float(text.replace(",", ""))


class Previews:
    """A plugin that previews the run's Parquet output, and one whose hook fails."""

    @hpcprep.hookimpl
    def hpcprep_report_sections(self, run: RunOutputs):
        sample = run.sample(["x", "missing"])
        from hpcprep.report import figure

        def draw(ax):
            ax.hist(sample.column("x").to_numpy(), bins=10)

        return [ReportSection("x values", f'<p data-key="sample.rows">{sample.num_rows}</p>' + figure(draw))]


class Broken:
    @hpcprep.hookimpl
    def hpcprep_report_sections(self, run):
        raise RuntimeError("no <preview> today")


def test_the_report_holds_the_runs_books_errors_and_previews(tmp_path, ray_local):
    out = tmp_path / "run"
    spec = {
        "run": {"output": str(out), "name": "numbers"},
        "reader": {"stage": "test.numbers", "items": 4, "rows": 500, "batch_rows": 250},
        "encoders": [{"stage": "test.odd", "every": 97}],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    m = result.manifest
    registry = PluginRegistry(extra_plugins=[sample_plugin, Previews(), Broken()])
    page = build_report(out, registry)
    got = keyed(page)
    c = m["counts"]
    assert [number(got[k]) for k in ("inputs", "outputs", "errors")] == [c["inputs"], c["outputs"], c["errors"]]
    assert c["errors"] > 0 and got["balanced"] == "balanced"
    for s in m["stages"]:
        for field in ("rows_out", "errors"):
            if s.get(field) is not None:
                assert number(got[f"{s['stage']}.{field}"]) == s[field], (s["stage"], field)
    for kind in m["errors"]["by_stage"]:
        assert number(got[f"errors.{kind['stage']}.{kind['error_type']}"]) == kind["count"]
    # examples of the errors, with their messages, escaped
    first = m["errors"]["first"][0]
    assert first["record_id"] in page
    for k in ("startup", "execution", "total"):
        assert abs(number(got[f"timings.{k}"]) - m["timings"][k]) < 1e-3
    # the plugins' sections: one sampled the Parquet output, one failed and says why
    assert number(got["sample.rows"]) == c["outputs"]
    assert "x values (" in page and "<svg" in page
    assert "hpcprep_report_sections raised RuntimeError: no &lt;preview&gt; today" in page
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|file:)""", page)
    assert "<script" not in page and "<link" not in page


def test_the_command_writes_the_page_and_names_a_missing_manifest(tmp_path, ray_local):
    out = tmp_path / "run"
    spec = {
        "run": {"output": str(out)},
        "reader": {"stage": "test.numbers", "items": 2, "rows": 10, "batch_rows": 10},
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }
    result = hpcprep.run(spec, plugins=[sample_plugin], progress=False)
    res = CliRunner().invoke(cli, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith(f"wrote {out / 'report.html'} (")
    assert number(keyed((out / "report.html").read_text())["inputs"]) == result.counts["inputs"] == 20
    # the page is the run's own file: the next --overwrite replaces it; a file of the user's stops it
    again = hpcprep.run(spec, plugins=[sample_plugin], progress=False, overwrite=True)
    assert again.counts["balanced"] and not (out / "report.html").exists()
    (out / "notes.html").write_text("mine")
    with pytest.raises(hpcprep.RunError, match=r"holds files hpcprep did not write \(notes.html\)"):
        hpcprep.run(spec, plugins=[sample_plugin], progress=False, overwrite=True)
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "empty")])
    assert res.exit_code != 0 and "no manifest.json (is this a run directory?)" in res.output


def test_previews_sample_rows_from_files_spread_over_the_output(tmp_path):
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq
    from hpcprep.report import SAMPLE_FILES, SAMPLE_ROWS, _spread_sample

    for i in range(100):  # one input per file, as many small inputs make
        rows = 50
        pq.write_table(
            pa.table({"source": [f"in{i:03d}"] * rows, "x": list(range(rows))}), tmp_path / f"part-{i:03d}.parquet"
        )
    sample = _spread_sample(pads.dataset(str(tmp_path), format="parquet"))
    sources = set(sample["source"].to_pylist())
    assert len(sources) == SAMPLE_FILES and "in000" in sources
    assert sample.num_rows == SAMPLE_FILES * min(50, SAMPLE_ROWS // SAMPLE_FILES) <= SAMPLE_ROWS
    assert max(int(s[2:]) for s in sources) >= 90  # the picks reach the end of the output, not just its start
