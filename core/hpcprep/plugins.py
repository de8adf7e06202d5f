"""Plugin discovery and the stage registry.

Installed packages announce plugins in the ``hpcprep`` entry-point group.
``HPCPREP_LOAD_PLUGINS`` (comma-separated names; empty = none) allows only those,
``HPCPREP_DISABLE_PLUGINS`` blocks some (names compare without regard to case). A
plugin that fails to import, or whose registration hook raises (even ``SystemExit``), is
recorded as broken with its error; it never takes the command line down with it.
"""

from __future__ import annotations

import difflib
import os
import threading
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from . import hookspecs
from .stages import STAGE_KINDS, Stage

ENTRY_POINT_GROUP = "hpcprep"
BUILTIN = "hpcprep"


@dataclass
class PluginInfo:
    name: str
    version: str
    distribution: str
    status: str = "ok"  # ok | broken | disabled
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StageEntry:
    cls: type[Stage]
    plugin: str
    version: str

    @property
    def name(self) -> str:
        return self.cls.name

    @property
    def kind(self) -> str:
        return self.cls.kind


class UnknownStageError(LookupError):
    pass


#: What a plugin may raise that must not end the command: ``SystemExit`` from a module
#: that calls ``sys.exit()`` at import included, ``KeyboardInterrupt`` not.
PLUGIN_FAILURES = (Exception, SystemExit)


def _env_list(name: str) -> list[str] | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    return [p.strip().lower() for p in raw.split(",") if p.strip()]


def _failure(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}) raised while loading"
    return f"{type(exc).__name__}: {exc}"


class PluginRegistry:
    """The plugin manager plus everything the plugins registered, resolved on the driver.

    The stages are collected when first asked for (``stages``, ``plugins`` and the lookups):
    collecting imports every stage module (about 0.2 s with the three domain plugins, whose
    kernels load where first called: ``hpcprep.lazy``), which a command that only needs the
    plugins' CLI commands or report sections never uses.
    """

    def __init__(self, extra_plugins: list | None = None, load_entry_points: bool = True):
        self.pm = pluggy.PluginManager("hpcprep")
        self.pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._stages: dict[tuple[str, str], StageEntry] | None = None
        self._collecting = threading.RLock()
        self._register_builtins()
        if load_entry_points:
            self._load_entry_points()
        for i, obj in enumerate(extra_plugins or []):
            name = getattr(obj, "__name__", None) or f"{type(obj).__name__}-{i}"
            self._add(obj, PluginInfo(name=name, version="0", distribution="(in process)"))

    @property
    def stages(self) -> dict[tuple[str, str], StageEntry]:
        """(kind, name) -> entry; a reader and a sink may share a name (``parquet``)."""
        return self._collected()

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every plugin by name, with its status: broken includes a stage registration hook that raised, so the
        stages are collected first."""
        self._collected()
        return self._plugins

    def _collected(self) -> dict[tuple[str, str], StageEntry]:
        """The stages, collected on the first call (which imports every stage module)."""
        with self._collecting:
            if self._stages is None:
                self._stages = {}
                self._collect_stages()
        return self._stages

    # -- loading -----------------------------------------------------------------

    def _register_builtins(self) -> None:
        from . import __version__
        from .builtins import plugin as builtin_plugin
        from .placement import DefaultPlacementPolicy

        info = PluginInfo(name=BUILTIN, version=__version__, distribution="hpcprep")
        self._add(builtin_plugin, info)
        self.pm.register(DefaultPlacementPolicy(), name="hpcprep.placement")
        info.hooks.append("hpcprep_place")

    def _load_entry_points(self) -> None:
        allow = _env_list("HPCPREP_LOAD_PLUGINS")
        block = set(_env_list("HPCPREP_DISABLE_PLUGINS") or [])
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            names = {ep.name.lower(), dist.lower()}
            info = PluginInfo(name=ep.name, version=version, distribution=dist)
            if allow is not None and not names & set(allow):
                info.status, info.error = "disabled", "not in HPCPREP_LOAD_PLUGINS"
                self._plugins[info.name] = info
                continue
            if names & block:
                info.status, info.error = "disabled", "named in HPCPREP_DISABLE_PLUGINS"
                self._plugins[info.name] = info
                continue
            try:
                obj = ep.load()
            except PLUGIN_FAILURES as exc:  # any import failure marks the plugin broken
                info.status = "broken"
                info.error = _failure(exc)
                self._plugins[info.name] = info
                continue
            self._add(obj, info)

    def _add(self, obj, info: PluginInfo) -> None:
        if info.name in self._plugins:
            info.status = "broken"
            info.error = f"another plugin is already registered as {info.name!r}"
            self._plugins[info.name + f" ({info.distribution})"] = info
            return
        self.pm.register(obj, name=info.name)
        info.hooks = sorted({impl for impl in dir(obj) if impl.startswith("hpcprep_") and callable(getattr(obj, impl))})
        self._plugins[info.name] = info

    def _collect_stages(self) -> None:
        for hook_name, kind in (
            ("hpcprep_register_readers", "reader"),
            ("hpcprep_register_encoders", "encoder"),
            ("hpcprep_register_sinks", "sink"),
        ):
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self._plugins.get(impl.plugin_name)
                if info is None or info.status != "ok":
                    continue
                added: list[StageEntry] = []

                def register(cls, _kind=kind, _info=info, _added=added):
                    self._check_stage_class(cls, _kind, _info)
                    _added.append(StageEntry(cls, _info.name, _info.version))

                try:
                    impl.function(register=register)
                except PLUGIN_FAILURES as exc:
                    info.status = "broken"
                    info.error = f"{hook_name} raised {_failure(exc)}"
                    info.stages = []
                    self._stages = {k: v for k, v in self._stages.items() if v.plugin != info.name}
                    continue
                for entry in added:
                    key = (entry.kind, entry.name)
                    if key in self._stages:
                        other = self._stages[key].plugin
                        info.status = "broken"
                        info.error = f"stage {entry.name!r} is already provided by plugin {other!r}"
                        continue
                    self._stages[key] = entry
                    info.stages.append(entry.name)

    @staticmethod
    def _check_stage_class(cls, kind: str, info: PluginInfo) -> None:
        base = STAGE_KINDS[kind]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{cls!r} registered as a {kind} is not a subclass of hpcprep.{base.__name__}")
        if not cls.name:
            raise TypeError(f"{cls.__name__} has no stage name")
        if info.name != BUILTIN and "." not in cls.name:
            raise TypeError(f"stage name {cls.name!r} needs a domain prefix (domain.name); bare names are the core's")

    # -- queries -----------------------------------------------------------------

    def broken(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "broken"]

    def disabled(self) -> list[PluginInfo]:
        return [p for p in self.plugins.values() if p.status == "disabled"]

    def find(self, name: str) -> list[StageEntry]:
        """Every stage called ``name``, of any kind."""
        return [e for (k, n), e in sorted(self.stages.items()) if n == name]

    def get(self, name: str, kind: str) -> StageEntry:
        entry = self.stages.get((kind, name))
        if entry is not None:
            return entry
        raise UnknownStageError(self.explain_unknown(name, kind))

    def explain_unknown(self, name: str, kind: str | None) -> str:
        others = self.find(name)
        if others:
            return f"stage {name!r} is a {others[0].kind}, not a {kind}"
        domain = name.split(".", 1)[0].lower() if "." in name else None
        for info in [*self.broken(), *self.disabled()]:
            names = (info.name, info.distribution, info.distribution.replace("hpcprep-", ""))
            if domain and domain in {n.lower() for n in names}:
                return (
                    f"stage {name!r} comes from plugin {info.name!r} ({info.distribution} "
                    f"{info.version}), which is {info.status}: {info.error}"
                )
        candidates = sorted({n for (k, n) in self.stages if kind is None or k == kind})
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        msg = f"unknown {kind or 'stage'} {name!r}"
        if close:
            msg += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
        else:
            msg += f"; known {kind or 'stage'}s: " + ", ".join(sorted(candidates))
            if domain and not any(n.lower().startswith(domain + ".") for (_, n) in self.stages):
                msg += f" (no installed plugin has stages named {domain}.*: `hpcprep plugins` lists what is installed)"
        broken = self.broken()
        if broken:
            msg += "; broken plugins: " + ", ".join(f"{b.name} ({b.error})" for b in broken)
        return msg

    def place(self, stage, cluster):
        return self.pm.hook.hpcprep_place(stage=stage, cluster=cluster)

    def register_commands(self, cli) -> list[tuple[str, str]]:
        """Let plugins add CLI commands; returns (plugin, error) for those that failed."""
        failures = []
        for impl in self.pm.hook.hpcprep_register_commands.get_hookimpls():
            try:
                impl.function(cli=cli)
            except PLUGIN_FAILURES as exc:
                failures.append((impl.plugin_name, _failure(exc)))
                info = self._plugins.get(impl.plugin_name)
                if info:
                    info.status = "broken"
                    info.error = f"hpcprep_register_commands raised {_failure(exc)}"
        return failures

    def report_sections(self, run) -> list[tuple[str, object]]:
        """``(plugin, ReportSection)`` from every plugin's ``hpcprep_report_sections``; a
        plugin whose hook raises gets a section that says so, and the report goes on."""
        import html

        from .report import ReportSection

        out = []
        for impl in self.pm.hook.hpcprep_report_sections.get_hookimpls():
            try:
                sections = impl.function(run=run) or []
            except Exception as exc:
                sections = [
                    ReportSection(
                        "preview failed", f"<p>hpcprep_report_sections raised {html.escape(_failure(exc))}</p>"
                    )
                ]
            out += [(impl.plugin_name, s) for s in sections]
        return out

    def versions(self) -> dict[str, str]:
        return {p.name: p.version for p in self.plugins.values() if p.status == "ok"}
