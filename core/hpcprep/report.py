"""``hpcprep report RUN_DIR``: one self-contained HTML page about a finished run.

Everything comes from the run directory: the manifest (books, timings, placement,
cluster, spec, versions), the errors table, and a sample of the run's Parquet output
for the domain previews that plugins add through ``hpcprep_report_sections``. Figures
are drawn with matplotlib as inline SVG, so the page needs no network and no files
beside it. Numbers a reader may check against the manifest carry ``data-key`` (and the
tables ``data-section``) attributes, which the tests read back from the page as a
browser shows it.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads

from . import errors_table

#: Rows of the Parquet output a preview sees at most: a report of a large run stays small and quick.
SAMPLE_ROWS = 2000
SAMPLE_FILES = 32
#: Example records shown per (stage, error type).
EXAMPLES_PER_KIND = 3


@dataclass
class ReportSection:
    """A section a plugin adds to the report: a title and its HTML body (figures from
    ``figure``, tables from ``table``; text must be escaped with ``html.escape``)."""

    title: str
    html: str


class RunOutputs:
    """What ``hpcprep_report_sections`` hooks get: the run directory, its manifest, and a
    sample of its Parquet output."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        path = self.run_dir / "manifest.json"
        if not path.exists():
            raise FileNotFoundError(f"{self.run_dir}: no manifest.json (is this a run directory?)")
        self.manifest = json.loads(path.read_text())
        self._sample: pa.Table | None = None

    def uses(self, plugin: str) -> bool:
        """Whether a stage of ``plugin`` (stage names ``plugin.name``) took part in the run."""
        return any(s.get("stage", "").startswith(plugin + ".") for s in self.manifest.get("stages", []))

    def parquet_path(self) -> Path | None:
        """The first Parquet sink's output (relative paths are taken from the current folder, as the run did)."""
        for s in self.manifest.get("spec", {}).get("sinks", []):
            if s.get("stage") == "parquet" and "://" not in str(s.get("path", "")):
                return Path(s["path"])
        return None

    def sample(self, columns: list[str] | None = None) -> pa.Table | None:
        """Up to ``SAMPLE_ROWS`` rows of the Parquet output (only ``columns`` that exist), or None without one:
        the first rows of up to ``SAMPLE_FILES`` files spread over the output, so a run over many inputs shows
        more than its first one."""
        if self._sample is None:
            path = self.parquet_path()
            if path is None or not path.exists():
                return None
            self._sample = _spread_sample(pads.dataset(str(path), format="parquet", exclude_invalid_files=True))
        if columns is None:
            return self._sample
        present = [c for c in columns if c in self._sample.column_names]
        return self._sample.select(present)


def _spread_sample(data: pads.Dataset) -> pa.Table:
    fragments = list(data.get_fragments())
    if len(fragments) <= 1:
        return data.head(SAMPLE_ROWS)
    step = len(fragments) / min(SAMPLE_FILES, len(fragments))
    picked = [fragments[int(i * step)] for i in range(min(SAMPLE_FILES, len(fragments)))]
    per_file = max(1, SAMPLE_ROWS // len(picked))
    # One fragment at a time, read with the whole dataset's schema (files may differ in nullable columns).
    parts = [pads.FileSystemDataset([f], data.schema, data.format, data.filesystem).head(per_file) for f in picked]
    return pa.concat_tables(parts)


def figure(draw, width: float = 6.0, height: float = 3.0) -> str:
    """Inline SVG of ``draw(ax)`` on a fresh matplotlib axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    try:
        draw(ax)
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg")
    finally:
        plt.close(fig)
    text = out.getvalue()
    return '<div class="figure">' + text[text.index("<svg") :] + "</div>"


def table(header: list[str], rows: list[list], section: str = "") -> str:
    """An HTML table; a cell given as ``(value, key)`` carries ``data-key="key"``."""
    out = [f'<table data-section="{html.escape(section)}"><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr>")
    for row in rows:
        out.append("<tr>")
        for cell in row:
            value, key = cell if isinstance(cell, tuple) else (cell, None)
            attr = f' data-key="{html.escape(key)}"' if key else ""
            out.append(f"<td{attr}>{html.escape(_text(value))}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


# -- the core's sections -------------------------------------------------------------------


def _books(m: dict) -> str:
    c = m["counts"]
    head = (
        f'<p class="books">inputs <b data-key="inputs">{c["inputs"]:,}</b> = outputs '
        f'<b data-key="outputs">{c["outputs"]:,}</b> + errors <b data-key="errors">{c["errors"]:,}</b> '
        f'(<span data-key="balanced">{"balanced" if c["balanced"] else "NOT balanced"}</span>)</p>'
    )
    rows = []
    for s in m.get("stages", []):
        key = s["stage"]
        rows.append(
            [
                s.get("where", ""),
                s["stage"],
                (s.get("inputs", s.get("rows_in")), f"{key}.rows_in"),
                (s.get("rows_out"), f"{key}.rows_out"),
                (s.get("errors"), f"{key}.errors"),
                "yes" if s.get("fanout") else "",
            ]
        )
    return head + table(["where", "stage", "rows in", "rows out", "errors", "fan-out"], rows, "books")


def _time(m: dict) -> str:
    stages = [s for s in m.get("stages", []) if s.get("seconds") is not None]
    t = m.get("timings", {})
    parts = [
        table(
            ["start-up", "execution", "commit", "finish", "total"],
            [[(t.get(k), f"timings.{k}") for k in ("startup", "execution", "commit", "finish", "total")]],
            "timings",
        )
    ]
    if stages:

        def draw(ax):
            names = [s["stage"] for s in stages][::-1]
            ax.barh(names, [s["seconds"] for s in stages][::-1], color="#4c72b0")
            ax.set_xlabel("worker seconds")
            ax.set_title("time by stage")

        parts.append(figure(draw, height=0.4 * len(stages) + 1.2))
    rows = []
    for s in stages:
        rows_out = s.get("rows_out", s.get("rows_in", 0)) or 0
        rate = rows_out / s["seconds"] if s["seconds"] else None
        rows.append([s["stage"], (s["seconds"], f"{s['stage']}.seconds"), rate])
    parts.append(table(["stage", "worker seconds", "rows/s per worker"], rows, "stage-time"))
    node_rows = [
        [
            n.get("hostname", ""),
            n.get("node_id", "")[:12],
            n.get("cpus"),
            n.get("gpus"),
            n.get("seconds"),
            n.get("rows_read"),
        ]
        for n in m.get("nodes", [])
    ]
    parts.append(table(["host", "node", "CPUs", "GPUs", "worker seconds", "rows read"], node_rows, "nodes"))
    return "".join(parts)


def _placement(m: dict) -> str:
    rows = []
    for s in m.get("stages", []):
        p = s.get("placement")
        if p:
            rows.append(
                [
                    s["stage"],
                    p.get("compute"),
                    p.get("num_cpus"),
                    p.get("num_gpus"),
                    p.get("concurrency"),
                    p.get("batch_size"),
                    p.get("variant"),
                    p.get("reason"),
                ]
            )
    if not rows:
        return "<p>No encoder stages.</p>"
    header = ["stage", "compute", "CPUs", "GPUs", "concurrency", "batch", "variant", "why"]
    return table(header, rows, "placement")


def _errors(run: RunOutputs) -> str:
    m = run.manifest
    kinds = m.get("errors", {}).get("by_stage", [])
    if not kinds:
        return '<p data-key="errors.none">No errors.</p>'
    examples: dict[tuple[str, str], list[dict]] = {}
    folder = run.run_dir / errors_table.ERRORS_DIR
    if folder.exists():
        errs = pads.dataset(str(folder), format="parquet", exclude_invalid_files=True).head(20_000).to_pylist()
        for e in errs:
            got = examples.setdefault((e["stage"], e["error_type"]), [])
            if len(got) < EXAMPLES_PER_KIND:
                got.append(e)
    out = [
        table(
            ["stage", "error type", "count"],
            [[k["stage"], k["error_type"], (k["count"], f"errors.{k['stage']}.{k['error_type']}")] for k in kinds],
            "errors",
        )
    ]
    for k in kinds:
        shown = examples.get((k["stage"], k["error_type"]), [])
        if shown:
            out.append(f"<h3>{html.escape(k['stage'])}: {html.escape(k['error_type'])}</h3><ul>")
            out += [
                f"<li><code>{html.escape(str(e['record_id']))}</code>: {html.escape(str(e['message']))}</li>"
                for e in shown
            ]
            out.append("</ul>")
    return "".join(out)


def _cluster(m: dict) -> str:
    c = m.get("cluster", {})
    rows = [[k, v] for k, v in sorted(c.get("resources", {}).items())]
    head = f"<p>{c.get('nodes', 0)} node(s), {c.get('cpus', 0):g} CPU(s), {c.get('gpus', 0):g} GPU(s)</p>"
    return head + table(["resource", "amount"], rows, "resources")


def _versions(m: dict) -> str:
    rows = [[k, v] for k, v in {**m.get("plugins", {}), **m.get("software", {})}.items()]
    spec = json.dumps(m.get("spec", {}), indent=2)
    return table(["component", "version"], rows, "versions") + f"<h3>spec</h3><pre>{html.escape(spec)}</pre>"


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; } td, th { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f3f3f3; text-align: left; } td { text-align: right; } td:nth-child(1), td:nth-child(2) { text-align: left; }
pre { background: #f7f7f7; padding: 0.8em; overflow: auto; font-size: 0.85em; } .figure svg { max-width: 100%; height: auto; }
.books { font-size: 1.2em; }
"""


def build_report(run_dir, registry=None) -> str:
    """The report of the run in ``run_dir`` as one HTML document."""
    from .plugins import PluginRegistry

    run = RunOutputs(Path(run_dir))
    m = run.manifest
    sections = [
        ("books", "Books", _books(m)),
        ("time", "Time", _time(m)),
        ("placement", "Placement", _placement(m)),
        ("errors", "Errors", _errors(run)),
        ("cluster", "Cluster", _cluster(m)),
        ("versions", "Spec and versions", _versions(m)),
    ]
    registry = registry or PluginRegistry()
    for plugin, section in registry.report_sections(run):
        sections.append((f"preview-{plugin}", f"{section.title} ({plugin})", section.html))
    title = f"hpcprep run {m.get('name') or run.run_dir.name}"
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{html.escape(str(m.get('status', '')))}, started {html.escape(str(m.get('started', '')))}, "
        f"finished {html.escape(str(m.get('finished', '')))}; {html.escape(str(run.run_dir))}</p>",
        "<nav>" + " · ".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in sections) + "</nav>",
    ]
    for sid, t, body in sections:
        parts.append(f'<section id="{sid}"><h2>{html.escape(t)}</h2>{body}</section>')
    parts.append("</body></html>")
    return "\n".join(parts)
