"""The run manifest: what ran, on what, with which plugins, and how the books balance.

Written next to the outputs after every commit group (``finished`` is null until
the run ends), so an interrupted run still says how far it got.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections import Counter
from pathlib import Path

from . import errors_table

#: Inputs up to this size are hashed for the manifest; larger ones only list their size.
HASH_LIMIT = 64 * 1024 * 1024


def input_sha256(item) -> str | None:
    """SHA-256 of a whole local input file up to ``HASH_LIMIT``; None for byte ranges,
    URIs, larger files and files that cannot be read.

    The read task that reads an item hashes it (``reading``) and the hash reaches the
    manifest through the group's books: the hashing is spread over the workers and reads
    files they have just read, where a pass on the driver would read every input a
    second time, serially, on one node, before any work starts (on a cluster over a
    shared file system, the whole collection through one node)."""
    path, size = item.source, item.size
    if item.offset != 0 or item.length is not None or size is None or size > HASH_LIMIT or "://" in path:
        return None
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError:
        return None  # the reader's own error names the file
    return h.hexdigest()


def sum_stages(books) -> dict[str, dict]:
    """Each stage's counters summed over ``books``, an iterable of ``{stage: counters}``
    (the committed groups' books; the live progress adds the running group's)."""
    total: dict[str, dict] = {}
    for stages in books:
        for key, row in stages.items():
            t = total.setdefault(key, {})
            for k, v in row.items():
                t[k] = t.get(k, 0) + v
    return total


def node_rows(cluster, commits: dict) -> list[dict]:
    """Per node: its resources and, summed over the committed groups, each stage's rows
    and seconds there (only the attempts that were kept). Nodes that joined after the
    run started, or did no kept work, are listed too."""
    work: dict[str, dict] = {}
    for rec in commits.values():
        for node, stages in rec.get("nodes", {}).items():
            for stage, row in stages.items():
                t = work.setdefault(node, {}).setdefault(stage, {})
                for k, v in row.items():
                    t[k] = t.get(k, 0) + v
    rows = [dict(n, stages=work.pop(n["node_id"], {})) for n in cluster.node_list]
    rows += [{"node_id": node, "stages": stages} for node, stages in work.items()]
    for row in rows:
        row["seconds"] = round(sum(s.get("seconds", 0.0) for s in row["stages"].values()), 3)
        row["rows_read"] = int(sum(s.get("rows_out", 0) for k, s in row["stages"].items() if k.startswith("reader:")))
        row["rows_written"] = int(row["stages"].get("sinks", {}).get("rows_in", 0))
    return rows


def _stage_rows(resolved, totals: dict, placements) -> list[dict]:
    rows = []
    reader_key = f"reader:{resolved.reader.name}"
    r = totals.get(reader_key, {})
    rows.append(
        {
            "stage": resolved.reader.name,
            "where": "reader",
            "inputs": int(r.get("items", 0)),
            "rows_out": int(r.get("rows_out", 0)),
            "errors": int(r.get("errors", 0)),
            "seconds": round(r.get("seconds", 0.0), 3),
        }
    )
    for cs, placement in zip(resolved.encoders, placements):
        e = totals.get(f"{cs.where}:{cs.name}", {})
        rows.append(
            {
                "stage": cs.name,
                "where": cs.where,
                "rows_in": int(e.get("rows_in", 0)),
                "rows_out": int(e.get("rows_out", 0)),
                "errors": int(e.get("errors", 0)),
                "fanout": bool(cs.stage.fanout),
                "seconds": round(e.get("seconds", 0.0), 3),
                "placement": placement.to_dict(),
            }
        )
    s = totals.get("sinks", {})
    for cs in resolved.sinks:
        rows.append(
            {
                "stage": cs.name,
                "where": cs.where,
                "rows_in": int(s.get("rows_in", 0)),
                "target": cs.stage.target(),
                "seconds": round(s.get("seconds", 0.0), 3),
            }
        )
    return rows


def balance(stages: list[dict]) -> tuple[dict, list[str]]:
    """Overall counts, and what does not balance, stage by stage (empty when the books balance)."""
    reader = stages[0]
    encoders = [s for s in stages if s["where"].startswith("encoders")]
    sinks = [s for s in stages if s["where"].startswith("sinks")]
    errors = reader["errors"] + sum(e["errors"] for e in encoders)
    inputs = reader["rows_out"] + reader["errors"]
    outputs = sinks[0]["rows_in"] if sinks else (encoders[-1]["rows_out"] if encoders else reader["rows_out"])
    problems = []
    upstream, made_by = reader["rows_out"], f"reader ({reader['stage']})"
    for e in encoders:
        name = f"{e['where']} ({e['stage']})"
        if e["rows_in"] != upstream:
            problems.append(f"{name} received {e['rows_in']} rows, {made_by} gave {upstream}")
        if not e["fanout"] and e["rows_in"] != e["rows_out"] + e["errors"]:
            problems.append(f"{name}: {e['rows_in']} rows in != {e['rows_out']} out + {e['errors']} errors")
        upstream, made_by = e["rows_out"], name
    for s in sinks:
        if s["rows_in"] != upstream:
            problems.append(f"{s['where']} ({s['stage']}) wrote {s['rows_in']} rows, {made_by} gave {upstream}")
    fanout = any(e["fanout"] for e in encoders)
    if not fanout and inputs != outputs + errors:
        problems.append(f"inputs {inputs} != outputs {outputs} + errors {errors}")
    counts = {"inputs": inputs, "outputs": outputs, "errors": errors, "balanced": not problems}
    if fanout:
        counts["note"] = "a fan-out stage changes row counts; the books balance stage by stage"
    if problems:
        counts["problems"] = problems
    return counts, problems


def stage_notes(resolved) -> list[str]:
    """Each configured stage's notes, prefixed with where it sits in the spec."""
    placed = [resolved.reader, *resolved.encoders, *resolved.sinks]
    return [f"{cs.where} ({cs.name}): {note}" for cs in placed for note in cs.stage.notes()]


def input_listing(resolved, state) -> list[dict]:
    """The manifest's list of inputs, with the SHA-256 of each file that a committed
    group read (``input_sha256``; null until then, and for what is not hashed)."""
    hashes: dict[str, str] = {}
    for rec in state.commits.values():
        hashes.update(rec.get("sha256", {}))
    return [
        {
            "source": i.source,
            "size": i.size,
            "offset": i.offset,
            "length": i.length,
            "sha256": hashes.get(str(i.index)),
        }
        for i in resolved.inputs
    ]


def run_timings(state, startup: float, finish: float | None, total: float | None) -> dict:
    """Wall seconds of the run's phases on the driver, summed over the groups run by
    this process and earlier ones of a resumed run: start-up (spec, plan, Ray, sinks'
    prepare), execution (Ray Data: read, encoders, write), commit (sinks' commit and the
    books), finish (sinks' finish: indexes, compaction)."""
    groups = state.commits.values()
    out = {
        "startup": round(startup, 3),
        "execution": round(sum(r.get("wall_seconds", 0.0) for r in groups), 3),
        "commit": round(sum(r.get("commit_seconds", 0.0) for r in groups), 3),
    }
    if finish is not None:
        out["finish"] = round(finish, 3)
    if total is not None:
        out["total"] = round(total, 3)
    return out


def build_manifest(
    *, resolved, registry, cluster, placements, state, started, finished, mode, timings, sink_reports=None
) -> dict:
    import numpy
    import pyarrow
    import ray

    from . import __version__

    totals = sum_stages(rec["stages"] for rec in state.commits.values())
    stages = _stage_rows(resolved, totals, placements)
    counts, _ = balance(stages)
    errs = errors_table.read_errors(str(resolved.output_dir.absolute()), state.committed_attempts())
    by_kind = Counter(zip(errs.column("stage").to_pylist(), errs.column("error_type").to_pylist()))
    return {
        "hpcprep_version": __version__,
        "name": resolved.run.name,
        "status": ("complete" if counts["balanced"] else "unbalanced") if finished else "incomplete",
        "mode": mode,
        "started": started,
        "finished": finished,
        "spec_source": resolved.source,
        "spec": resolved.to_dict(redact=True),
        "plugins": registry.versions(),
        "inputs": input_listing(resolved, state),
        "counts": counts,
        "notes": stage_notes(resolved),
        "stages": stages,
        "groups": {
            "committed": len(state.commits),
            "inputs_committed": state.inputs_done(),
            # groups run again because hpcprep's RunStats actor died under them (commit_group.BooksLost)
            "redone_after_books_lost": sum(rec.get("redone", 0) for rec in state.commits.values()),
        },
        "errors": {
            "table": str(resolved.output_dir.absolute() / errors_table.ERRORS_DIR),
            "by_stage": [{"stage": s, "error_type": t, "count": n} for (s, t), n in sorted(by_kind.items())],
            "first": errs.slice(0, 20).to_pylist(),
        },
        "timings": timings,
        "sinks": sink_reports or {},
        "cluster": cluster.to_dict(),
        "nodes": node_rows(cluster, state.commits),
        "software": {
            "python": platform.python_version(),
            "ray": ray.__version__,
            "pyarrow": pyarrow.__version__,
            "numpy": numpy.__version__,
            "platform": platform.platform(),
        },
    }


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, default=str))
    tmp.replace(out / "manifest.json")
