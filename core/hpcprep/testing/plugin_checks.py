"""The plugin checks: a plugin's hooks against ``hpcprep.hookspecs``, then the stage checks
over every stage it registers."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .problems import PLUGIN, Problem, format_problems
from .stage_checks import check_stage
from .values import describe


def check_plugin(plugin: Any, workdir: str | Path, *, skip: Iterable[str] = ()) -> dict[str, list[Problem]]:
    """Check a plugin and every stage it registers.

    ``plugin`` is the plugin object (usually its module) or the name of an installed
    plugin (its ``hpcprep`` entry point, or ``"hpcprep"`` for the core's built-ins).
    Returns ``{stage name: problems}`` for every stage, plus ``PLUGIN`` for problems
    of the plugin itself; empty lists everywhere mean it passes.
    """
    import pluggy

    from .. import hookspecs
    from ..plugins import BUILTIN, PluginInfo, PluginRegistry

    skip = list(skip)
    workdir = Path(workdir)
    results: dict[str, list[Problem]] = {}
    plugin_problems: list[Problem] = []
    obj, label = _load_plugin(plugin, plugin_problems)
    if obj is None:
        return {PLUGIN: plugin_problems}

    def problem(msg: str) -> None:
        plugin_problems.append(Problem(label, "plugin", msg))

    marker = f"{hookspecs.hookimpl.project_name}_impl"
    hook_names = [n for n in dir(obj) if n.startswith("hpcprep_") and callable(getattr(obj, n, None))]
    for n in hook_names:
        if not hasattr(getattr(obj, n), marker):
            problem(f"{n} is not decorated with @hpcprep.hookimpl, so pluggy ignores it")
    pm = pluggy.PluginManager("hpcprep")
    pm.add_hookspecs(hookspecs)
    try:
        pm.register(obj, name=label)
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        problem(f"hooks do not match hpcprep's hook specifications: {exc}")
        return {PLUGIN: plugin_problems}
    if not any(hasattr(getattr(obj, n), marker) for n in hook_names):
        problem("defines no hooks (functions named like hpcprep.hookspecs, decorated with @hpcprep.hookimpl)")

    info = PluginInfo(name=BUILTIN if obj is _builtin_plugin() else label, version="0", distribution="?")
    found: list[tuple[str, type]] = []
    for hook_name, kind in (
        ("hpcprep_register_readers", "reader"),
        ("hpcprep_register_encoders", "encoder"),
        ("hpcprep_register_sinks", "sink"),
    ):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():

            def register(cls, _kind=kind):
                try:
                    PluginRegistry._check_stage_class(cls, _kind, info)
                except TypeError as exc:
                    problem(str(exc))
                    return
                found.append((_kind, cls))

            try:
                impl.function(register=register)
            except Exception as exc:
                problem(f"{hook_name} raised {describe(exc)}")

    names = [cls.name for _, cls in found]
    counter = itertools.count()
    for kind, cls in found:
        key = cls.name if names.count(cls.name) == 1 else f"{cls.name} ({kind})"
        if key in results:
            problem(f"{kind} {cls.name!r} is registered twice")
            continue
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        results[key] = check_stage(cls, workdir / f"{next(counter):02d}-{slug}", skip=skip)
    if plugin_problems:
        results[PLUGIN] = plugin_problems
    return results


def assert_plugin_ok(plugin: Any, workdir: str | Path, *, skip: Iterable[str] = ()) -> dict[str, list[Problem]]:
    """``check_plugin``, raising one AssertionError that lists every problem; returns the results."""
    results = check_plugin(plugin, workdir, skip=skip)
    problems = [p for ps in results.values() for p in ps]
    if problems:
        raise AssertionError(format_problems(problems, f"plugin {plugin_label(plugin)!r}"))
    return results


def _builtin_plugin():
    from ..builtins import plugin

    return plugin


def plugin_label(plugin: Any) -> str:
    if isinstance(plugin, str):
        return plugin
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _load_plugin(plugin: Any, problems: list[Problem]) -> tuple[Any, str]:
    from importlib import metadata

    from ..plugins import BUILTIN, ENTRY_POINT_GROUP

    if not isinstance(plugin, str):
        return plugin, plugin_label(plugin)
    if plugin == BUILTIN:
        return _builtin_plugin(), BUILTIN
    eps = list(metadata.entry_points(group=ENTRY_POINT_GROUP))
    wanted = _normalise(plugin)
    matches = [ep for ep in eps if ep.name == plugin or (ep.dist is not None and _normalise(ep.dist.name) == wanted)]
    if not matches:
        known = sorted(ep.name for ep in eps)
        problems.append(
            Problem(
                plugin,
                "plugin",
                f"no installed plugin {plugin!r} in the {ENTRY_POINT_GROUP!r} entry-point group "
                f"(installed: {', '.join(known) or 'none'}); is the package installed (pip install -e .)?",
            )
        )
        return None, plugin
    ep = matches[0]
    try:
        return ep.load(), ep.name
    except Exception as exc:
        problems.append(Problem(ep.name, "plugin", f"entry point {ep.value!r} does not load: {describe(exc)}"))
        return None, ep.name


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
