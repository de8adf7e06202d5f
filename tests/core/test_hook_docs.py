"""Every hook is documented: a docstring, a section in docs/plugins.md, a row in the README."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from hpcprep import hookspecs

ROOT = Path(__file__).resolve().parents[2]


def hooks():
    return [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("hpcprep_")]


def test_the_hook_surface_is_six_hooks():
    assert sorted(hooks()) == sorted(
        [
            "hpcprep_register_readers",
            "hpcprep_register_encoders",
            "hpcprep_register_sinks",
            "hpcprep_place",
            "hpcprep_register_commands",
            "hpcprep_report_sections",
        ]
    )


def test_every_hook_has_a_docstring():
    for name in hooks():
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert len(doc.split()) >= 8, f"{name} has no real docstring"


def test_every_hook_has_a_section_in_the_plugin_guide():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    for name in hooks():
        sig = str(inspect.signature(getattr(hookspecs, name)))
        m = re.search(rf"^### `{name}{re.escape(sig)}`\n\n(.+?)(?=\n### |\n## |\Z)", guide, re.DOTALL | re.MULTILINE)
        assert m, f"docs/plugins.md has no '### `{name}{sig}`' section"
        assert len(m.group(1).split()) >= 25, f"the section on {name} is too thin to document it"


def test_every_hook_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    for name in hooks():
        row = [ln for ln in readme.splitlines() if ln.startswith("|") and f"`{name}" in ln]
        assert row, f"README has no table row for {name}"
        cells = [c.strip() for c in row[0].strip("|").split("|")]
        assert len(cells) >= 2 and len(cells[-1].split()) >= 3, f"README row for {name} says nothing"


def test_every_exported_name_resolves():
    import hpcprep
    from hpcprep.runner import RunError, UnbalancedRun
    from hpcprep.spec import SpecError

    for name in hpcprep.__all__:
        assert getattr(hpcprep, name) is not None, name
    assert (hpcprep.SpecError, hpcprep.RunError, hpcprep.UnbalancedRun) == (SpecError, RunError, UnbalancedRun)
