"""Pipeline specs: TOML in, a validated and resolved pipeline out.

Everything a person can get wrong in a spec is found here, before Ray starts, and
reported all at once with the file and the place in it.
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError

from .placement import PlacementOverride
from .plugins import PluginRegistry, StageEntry, UnknownStageError
from .stages import InputItem, Stage, StrictScalars
from .storage import check_writable, redact_uri
from .wiring import check_columns

SECRET_KEY = re.compile(r"(secret|password|passwd|token|access_key|session_key|credential|api_key)", re.IGNORECASE)
TOP_LEVEL = ("run", "reader", "encoders", "sinks")
URI_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/@\s]+)@")


class SpecError(ValueError):
    """A spec that cannot run; ``problems`` lists every problem found."""

    def __init__(self, problems: list[str], source: str = "<spec>"):
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid pipeline spec {source}:\n{lines}")


class RunSection(StrictScalars):
    """The ``[run]`` table."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="run name, shown in the manifest")
    output: str = Field(description="run directory: manifest.json, errors table, resume state")
    address: str | None = Field(None, description="Ray address to join; absent starts a local Ray")
    commit_every: int = Field(
        0, ge=0, description="inputs per commit group (the unit --resume skips); 0 = automatic, see commit_seconds"
    )
    # 180 s: an extra group costs one Ray Data start-up (about 5 s on 2 cores), under 3 %
    # of a group this long, and a crash still loses no more than about three minutes.
    commit_seconds: float = Field(
        180.0,
        gt=0,
        description="automatic commit groups end this many seconds after their first read: about what a crash can cost",
    )
    num_cpus: int | None = Field(None, ge=1, description="CPUs of a local Ray; default: all")


@dataclass
class ConfiguredStage:
    """A stage from the spec: the registry entry, the configured instance, overrides."""

    where: str  # "reader", "encoders[0]", "sinks[1]"
    entry: StageEntry
    stage: Stage
    placement: PlacementOverride | None = None

    @property
    def name(self) -> str:
        return self.entry.name


@dataclass
class ResolvedSpec:
    source: str
    run: RunSection
    reader: ConfiguredStage
    encoders: list[ConfiguredStage]
    sinks: list[ConfiguredStage]
    inputs: list[InputItem] = field(default_factory=list)

    @property
    def output_dir(self) -> Path:
        return Path(self.run.output)

    def stages(self) -> list[ConfiguredStage]:
        return [self.reader, *self.encoders, *self.sinks]

    def to_dict(self, redact: bool = True) -> dict:
        """The spec with every default filled in, as a manifest or a plan shows it."""

        def stage_dict(cs: ConfiguredStage) -> dict:
            d = {"stage": cs.name, **cs.stage.params.model_dump(mode="json")}
            if cs.placement is not None:
                over = cs.placement.model_dump(exclude_none=True)
                if over:
                    d["placement"] = over
            return d

        out = {
            "run": self.run.model_dump(mode="json"),
            "reader": stage_dict(self.reader),
            "encoders": [stage_dict(e) for e in self.encoders],
            "sinks": [stage_dict(s) for s in self.sinks],
        }
        return redact_secrets(out) if redact else out


def redact_secrets(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {
            k: ("***" if SECRET_KEY.search(str(k)) and v not in (None, "") else redact_secrets(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact_secrets(v) for v in obj]
    return obj


# -- loading and overrides ----------------------------------------------------------


def load_spec_dict(spec: str | os.PathLike | dict) -> tuple[dict, str]:
    if isinstance(spec, dict):
        return copy.deepcopy(spec), "<dict>"
    path = Path(spec)
    if not path.exists():
        raise SpecError([f"spec file not found: {path}"], str(path))
    try:
        return tomllib.loads(path.read_text()), str(path)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError([f"not valid TOML: {exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"not a text file: {exc}"], str(path)) from None
    except RecursionError:
        raise SpecError(["not a spec: its arrays or tables are nested too deeply to read"], str(path)) from None


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text


def apply_overrides(data: dict, overrides: list[str]) -> list[str]:
    """Apply ``--set a.b.0.c=value`` overrides in place; returns problems."""
    problems = []
    for item in overrides:
        if "=" not in item:
            problems.append(f"--set {item!r}: expected KEY=VALUE, e.g. encoders.0.k=5")
            continue
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        node: Any = data
        try:
            for part in parts[:-1]:
                if isinstance(node, list):
                    node = node[int(part)]
                else:
                    node = node.setdefault(part, {})
            last = parts[-1]
            value = _parse_value(text.strip())
            if isinstance(node, list):
                node[int(last)] = value
            elif isinstance(node, dict):
                node[last] = value
            else:
                raise TypeError
        except (IndexError, ValueError, TypeError):
            problems.append(f"--set {key}: no such place in the spec (lists count from 0)")
    return problems


# -- validation ---------------------------------------------------------------------


def _format_validation(where: str, name: str, exc: ValidationError, known: Iterable[str] = ()) -> list[str]:
    """One line per problem; ``known`` (the valid names) gives a misspelt one a "did you mean"."""
    out = []
    for err in exc.errors():
        field_name = ".".join(str(p) for p in err["loc"]) or "(parameters)"
        label = f"{where} ({name})" if name else where
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field_name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(f"{label}: unknown parameter {field_name!r}{hint}")
        elif err["type"] == "missing":
            out.append(f"{label}: parameter {field_name!r} is required")
        else:
            got = "***" if SECRET_KEY.search(field_name) else repr(err.get("input"))
            out.append(f"{label}: parameter {field_name!r}: {err['msg']} (got {got})")
    return out


def _secret_values(obj: Any) -> set[str]:
    """Every text under a secret-looking key of the spec, to keep out of error messages."""
    found: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            if SECRET_KEY.search(str(k)) and isinstance(v, str) and v:
                found.add(v)
            else:
                found |= _secret_values(v)
    elif isinstance(obj, list):
        for v in obj:
            found |= _secret_values(v)
    elif isinstance(obj, str):
        found |= set(URI_CREDENTIALS.findall(obj))
    return found


def _scrubbed(problems: list[str], data: dict) -> list[str]:
    secrets = sorted(_secret_values(data), key=len, reverse=True)
    out = []
    for p in problems:
        for secret in secrets:
            p = p.replace(secret, "***")
        out.append(redact_uri(p))
    return out


def _configure(
    registry: PluginRegistry, where: str, kind: str, table: Any, problems: list[str]
) -> ConfiguredStage | None:
    if not isinstance(table, dict):
        problems.append(f"{where}: expected a table with a 'stage' key, got {type(table).__name__}")
        return None
    table = dict(table)
    name = table.pop("stage", None)
    if not name:
        problems.append(f"{where}: missing 'stage' (which {kind} to run)")
        return None
    if not isinstance(name, str):
        problems.append(f"{where}: 'stage' must be a name in quotes, got {type(name).__name__}")
        return None
    try:
        entry = registry.get(name, kind)
    except UnknownStageError as exc:
        problems.append(f"{where}: {exc}")
        return None
    placement = None
    raw_placement = table.pop("placement", None)
    if raw_placement is not None:
        if kind != "encoder":
            problems.append(f"{where} ({name}): 'placement' applies to encoders only")
        else:
            try:
                placement = PlacementOverride(**raw_placement)
            except (ValidationError, TypeError) as exc:
                if isinstance(exc, ValidationError):
                    problems += [
                        m.replace("parameter", "placement field", 1)
                        for m in _format_validation(where, name, exc, PlacementOverride.model_fields)
                    ]
                else:
                    problems.append(f"{where} ({name}): 'placement' must be a table")
            if placement is not None and placement.variant is not None:
                if placement.variant not in entry.cls.variants:
                    problems.append(
                        f"{where} ({name}): placement variant {placement.variant!r} is not one of "
                        f"{list(entry.cls.variants)}"
                    )
    try:
        params = entry.cls.Params(**table)
    except ValidationError as exc:
        problems += _format_validation(where, name, exc, entry.cls.Params.model_fields)
        return None
    try:
        stage = entry.cls(params)
    except Exception as exc:
        problems.append(f"{where} ({name}): {exc}")
        return None
    problems += [f"{where} ({name}): {p}" for p in stage.problems()]
    return ConfiguredStage(where=where, entry=entry, stage=stage, placement=placement)


def resolve(
    spec: str | os.PathLike | dict,
    registry: PluginRegistry,
    overrides: list[str] | None = None,
    plan_inputs: bool = True,
) -> ResolvedSpec:
    data, source = load_spec_dict(spec)
    problems = apply_overrides(data, overrides or [])

    for key in data:
        if key not in TOP_LEVEL:
            close = [k for k in TOP_LEVEL if k.startswith(key[:2])]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(f"unknown top-level table [{key}]{hint} (expected {', '.join(TOP_LEVEL)})")

    run = None
    run_table = data.get("run")
    if run_table is None:
        problems.append('missing [run] table (at least: output = "out/NAME")')
    else:
        try:
            run = RunSection(**run_table)
        except ValidationError as exc:
            problems += [
                m.replace("parameter", "key", 1) for m in _format_validation("run", "", exc, RunSection.model_fields)
            ]
        except TypeError:
            problems.append("[run] must be a table")
    if run is not None:
        why = check_writable(Path(run.output))
        if why:
            problems.append(f"run.output: {why}")

    reader = None
    reader_planned = plan_inputs
    if "reader" not in data:
        problems.append("missing [reader] table (which reader, and its paths)")
    else:
        before = len(problems)
        reader = _configure(registry, "reader", "reader", data["reader"], problems)
        # a reader with problems (a path that names nothing) is not asked to plan: it would
        # only say the same again
        if len(problems) > before:
            reader_planned = False

    encoders = []
    raw_encoders = data.get("encoders", [])
    if not isinstance(raw_encoders, list):
        problems.append("encoders: use [[encoders]] (a list of tables)")
        raw_encoders = []
    for i, table in enumerate(raw_encoders):
        cs = _configure(registry, f"encoders[{i}]", "encoder", table, problems)
        if cs is not None:
            encoders.append(cs)

    sinks = []
    raw_sinks = data.get("sinks", [])
    if not isinstance(raw_sinks, list):
        problems.append("sinks: use [[sinks]] (a list of tables)")
        raw_sinks = []
    if not raw_sinks:
        problems.append("no [[sinks]]: the run would compute and keep nothing")
    for i, table in enumerate(raw_sinks):
        cs = _configure(registry, f"sinks[{i}]", "sink", table, problems)
        if cs is not None:
            sinks.append(cs)

    if reader is not None and len(encoders) == len(raw_encoders) and len(sinks) == len(raw_sinks):
        problems += check_columns(reader, encoders, sinks, registry)

    inputs: list[InputItem] = []
    if reader is not None and reader_planned:
        inputs = _plan(reader, problems)

    if problems:
        raise SpecError(_scrubbed(problems, data), source)
    return ResolvedSpec(source, run, reader, encoders, sinks, inputs)


def planned(resolved: ResolvedSpec) -> ResolvedSpec:
    """``resolved`` (from ``resolve(..., plan_inputs=False)``) with its reader's inputs; a
    reader that cannot list them, or finds none, is a ``SpecError`` as in ``resolve``."""
    problems: list[str] = []
    inputs = _plan(resolved.reader, problems)
    if problems:
        raise SpecError(_scrubbed(problems, resolved.to_dict(redact=False)), resolved.source)
    return replace(resolved, inputs=inputs)


def _plan(reader: ConfiguredStage, problems: list[str]) -> list[InputItem]:
    try:
        inputs = reader.stage.plan()
    except FileNotFoundError as exc:
        problems.append(f"reader ({reader.name}): {exc}")
        return []
    except Exception as exc:
        problems.append(f"reader ({reader.name}): cannot list inputs: {type(exc).__name__}: {exc}")
        return []
    if not inputs:
        problems.append(f"reader ({reader.name}): no inputs found")
    return inputs
