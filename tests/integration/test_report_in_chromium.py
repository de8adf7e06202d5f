"""The report of a real run of each domain, as headless Chromium shows it: sections, figures,
and numbers equal to the manifest's."""

from __future__ import annotations

import re
import subprocess

import hpcprep
import pytest
from hpcprep.report import build_report

from tests.cfd.data import geometry
from tests.conftest import require_tool
from tests.core.test_report import keyed, number
from tests.genomics.test_readers import LAMBDA, require_file
from tests.protein.corpus import FILES


def chromium(*args: str) -> subprocess.CompletedProcess:
    exe = require_tool("chromium")
    return subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def spec_for(domain: str, out) -> dict:
    parquet = {"stage": "parquet", "path": str(out / "table")}
    if domain == "genomics":
        return {
            "run": {"output": str(out), "name": "lambda"},
            "reader": {"stage": "genomics.fasta", "paths": [require_file(LAMBDA, "bowtie2-examples")], "window": 500},
            "encoders": [{"stage": "genomics.kmer_counts", "k": 3}],
            "sinks": [parquet],
        }
    if domain == "protein":
        paths = [p for _, p in FILES[:4]]
        return {
            "run": {"output": str(out), "name": "structures"},
            "reader": {"stage": "protein.structure", "paths": [require_file(p, "freesasa") for p in paths]},
            "encoders": [{"stage": "protein.dssp"}, {"stage": "protein.contacts"}, {"stage": "protein.dihedrals"}],
            "sinks": [parquet],
        }
    return {
        "run": {"output": str(out), "name": "meshes"},
        "reader": {"stage": "cfd.mesh", "paths": [str(geometry(n)) for n in ("bullet.stl.gz", "cyclone.stl.gz")]},
        "encoders": [{"stage": "cfd.health"}, {"stage": "cfd.sdf_points", "n_volume": 1000, "n_surface": 1000}],
        "sinks": [parquet],
    }


PREVIEWS = {
    "genomics": ["GC content by window (genomics)", "3-mer spectrum (genomics)"],
    "protein": ["Secondary structure (protein)", "Backbone dihedrals (protein)", "Contacts (protein)"],
    "cfd": ["Mesh health (cfd)", "Signed distances (cfd)"],
}


@pytest.mark.parametrize("domain", ["genomics", "protein", "cfd"])
def test_a_real_runs_report_in_headless_chromium(domain, tmp_path, ray_local):
    result = hpcprep.run(spec_for(domain, tmp_path / "run"), progress=False)
    m = result.manifest
    page = tmp_path / "report.html"
    page.write_text(build_report(tmp_path / "run"))
    dom = chromium("--dump-dom", page.as_uri())
    assert dom.returncode == 0 and "<body>" in dom.stdout, dom.stderr[-2000:]
    shown = dom.stdout  # the page after the browser parsed it
    sections = re.findall(r'<section id="([^"]+)"><h2>([^<]+)</h2>', shown)
    titles = [t for _, t in sections]
    assert titles[:6] == ["Books", "Time", "Placement", "Errors", "Cluster", "Spec and versions"]
    previews = [t for t in titles[6:]]
    assert previews == PREVIEWS[domain]  # each domain's previews, and no other domain's
    assert shown.count("<svg") >= 1 + len(PREVIEWS[domain]) - (domain == "cfd")  # cfd's health is a table
    got = keyed(shown)
    c = m["counts"]
    assert [number(got[k]) for k in ("inputs", "outputs", "errors")] == [c["inputs"], c["outputs"], c["errors"]]
    for s in m["stages"]:
        if s.get("rows_out") is not None:
            assert number(got[f"{s['stage']}.rows_out"]) == s["rows_out"]
    shot = tmp_path / "report.png"
    res = chromium("--window-size=1200,4000", f"--screenshot={shot}", page.as_uri())
    assert res.returncode == 0 and shot.exists() and shot.stat().st_size > 50_000, res.stderr[-2000:]
