"""``Kit``: the stage and plugin checks bound to a working directory, as the ``hpcprep_kit``
fixture (``pytest_plugin``) gives them."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from .plugin_checks import assert_plugin_ok, check_plugin, plugin_label
from .problems import Problem
from .stage_checks import assert_stage_ok, check_stage


class Kit:
    """The kit bound to a working directory; what the ``hpcprep_kit`` fixture gives.

    Each call works in a fresh subdirectory, so one test can check several things.
    """

    def __init__(self, workdir: str | Path):
        self.workdir = Path(workdir)
        self._calls = itertools.count()

    def _dir(self, label: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", label)[:60]
        path = self.workdir / f"{next(self._calls):02d}-{slug}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check_stage(self, stage_cls: type, **kwargs) -> list[Problem]:
        return check_stage(stage_cls, self._dir(getattr(stage_cls, "name", "stage")), **kwargs)

    def check_plugin(self, plugin: Any, **kwargs) -> dict[str, list[Problem]]:
        return check_plugin(plugin, self._dir(plugin_label(plugin)), **kwargs)

    def assert_stage_ok(self, stage_cls: type, **kwargs) -> None:
        assert_stage_ok(stage_cls, self._dir(getattr(stage_cls, "name", "stage")), **kwargs)

    def assert_plugin_ok(self, plugin: Any, **kwargs) -> dict[str, list[Problem]]:
        return assert_plugin_ok(plugin, self._dir(plugin_label(plugin)), **kwargs)
