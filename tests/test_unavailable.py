"""What a test does when something it needs is missing: skip on a user's machine, fail in CI."""

from __future__ import annotations

import pytest

from tests.conftest import require_module, require_tool, unavailable


def test_missing_things_skip_outside_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no such tool"):
        unavailable("no such tool")
    with pytest.raises(pytest.skip.Exception, match="hpcprep-no-such-tool is not installed"):
        require_tool("hpcprep-no-such-tool")
    with pytest.raises(pytest.skip.Exception, match="hpcprep_no_such_module cannot be imported"):
        require_module("hpcprep_no_such_module")


def test_missing_things_fail_in_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="hpcprep-no-such-tool is not installed; `make test` provides it"):
        require_tool("hpcprep-no-such-tool")
    with pytest.raises(pytest.fail.Exception, match="hpcprep_no_such_module cannot be imported"):
        require_module("hpcprep_no_such_module")


def test_present_things_are_returned():
    assert require_tool("python3").endswith("python3")
    assert require_module("json").dumps([1]) == "[1]"
