"""Column wiring: every stage's declared inputs against what the stages before it make.

Checked on the driver when a spec is resolved, so a pipeline whose stages cannot work
together is refused with the stage, the column and the stage that could make it, before
Ray starts and before ``run.output`` is touched.
"""

from __future__ import annotations

from .plugins import PluginRegistry

#: Columns every record has, whatever the reader (see ``Reader``).
ALWAYS = {"source": "string", "record_id": "string"}


def check_columns(reader, encoders, sinks, registry: PluginRegistry) -> list[str]:
    """Problems with the columns each encoder and sink reads (``ConfiguredStage``s in
    pipeline order); empty when every declared input is made, with a type it takes."""
    problems = []
    for cs, col, got, open_columns in _declared_inputs(reader, encoders, sinks):
        if got is not None:
            type_, maker = got
            if not col.accepts(type_):
                problems.append(f"{_label(cs)} reads column {col.name!r} as {col.types}, but {maker} makes it {type_}")
        elif not (col.optional or open_columns):
            later = encoders[encoders.index(cs) + 1 :] if cs in encoders else []
            problems.append(
                f"{_label(cs)} reads column {col.name!r}, which no stage before it makes"
                + _who_makes(col.name, cs, later, registry)
            )
    return problems


def input_sources(reader, encoders, sinks) -> dict[str, list[dict]]:
    """For ``hpcprep plan``: per stage (by its place in the spec), each declared input with
    the types it takes and the stage that makes it."""
    out: dict[str, list[dict]] = {}
    for cs, col, got, open_columns in _declared_inputs(reader, encoders, sinks):
        if got is not None:
            maker = f"{got[1]} as {got[0]}"
        elif open_columns:
            maker = f"{_label(reader)}, if its files have it"
        else:
            maker = "none (optional)" if col.optional else "none"
        out.setdefault(cs.where, []).append({"column": col.name, "types": col.types, "from": maker})
    return out


def _declared_inputs(reader, encoders, sinks):
    """``(stage, declared input, (type, maker) of that column before the stage or None, whether
    columns nobody declared may be there)`` for every declared input, in pipeline order."""
    made = {name: (type_, "every reader") for name, type_ in ALWAYS.items()}
    made |= {c.name: (c.type, _label(reader)) for c in reader.stage.outputs}
    open_columns = getattr(reader.stage, "open_columns", False)
    for cs in [*encoders, *sinks]:
        for col in getattr(cs.stage, "inputs", ()):
            yield cs, col, made.get(col.name), open_columns
        if cs.stage.kind == "encoder":
            if cs.stage.fanout:  # a fan-out stage returns whole rows: only its own columns go on
                made = {name: (type_, "every reader") for name, type_ in ALWAYS.items()}
                open_columns = False
            made |= {c.name: (c.type, _label(cs)) for c in cs.stage.outputs}


def _label(cs) -> str:
    return f"{cs.where} ({cs.name})"


def _who_makes(column: str, cs, later: list, registry: PluginRegistry) -> str:
    """Where the column could come from: a stage later in this pipeline, or any installed one."""
    for other in later:
        if any(c.name == column for c in other.stage.outputs):
            return f"; {_label(other)} makes it: put that stage before {cs.where}"
    makers = sorted(
        f"{e.name} ({e.kind})"
        for e in registry.stages.values()
        if e.kind in ("reader", "encoder") and e.name != cs.name and any(c.name == column for c in e.cls.outputs)
    )
    if makers:
        return "; " + " or ".join(makers[:4]) + " makes it"
    return ""
