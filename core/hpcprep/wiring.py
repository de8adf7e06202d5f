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
    made = {name: (type_, "every reader") for name, type_ in ALWAYS.items()}
    made |= {c.name: (c.type, _label(reader)) for c in reader.stage.outputs}
    unknown_too = getattr(reader.stage, "open_columns", False)  # columns nobody declared may be there
    problems = []
    for cs in [*encoders, *sinks]:
        for col in getattr(cs.stage, "inputs", ()):
            if col.name in made:
                type_, maker = made[col.name]
                if not col.accepts(type_):
                    problems.append(
                        f"{_label(cs)} reads column {col.name!r} as {col.types}, but {maker} makes it {type_}"
                    )
            elif not (col.optional or unknown_too):
                later = encoders[encoders.index(cs) + 1 :] if cs in encoders else []
                problems.append(
                    f"{_label(cs)} reads column {col.name!r}, which no stage before it makes"
                    + _who_makes(col.name, cs, later, registry)
                )
        if cs.stage.kind == "encoder":
            if cs.stage.fanout:  # a fan-out stage returns whole rows: only its own columns go on
                made = {name: (type_, "every reader") for name, type_ in ALWAYS.items()}
                unknown_too = False
            made |= {c.name: (c.type, _label(cs)) for c in cs.stage.outputs}
    return problems


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
