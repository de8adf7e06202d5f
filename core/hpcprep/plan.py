"""``hpcprep plan``: every stage, who serves it, its parameters and its placement, with reasons."""

from __future__ import annotations

import json
import shutil
import subprocess

from .placement import ClusterInfo, decide_placements, fuse_cpu_runs
from .plugins import PluginRegistry
from .spec import ResolvedSpec
from .wiring import input_sources


def build_plan(resolved: ResolvedSpec, registry: PluginRegistry, cluster: ClusterInfo) -> dict:
    placements = decide_placements(resolved, registry, cluster)
    spec = resolved.to_dict(redact=True)
    sources = input_sources(resolved.reader, resolved.encoders, resolved.sinks)

    def row(cs, params, placement=None):
        d = {
            "where": cs.where,
            "stage": cs.name,
            "kind": cs.entry.kind,
            "plugin": cs.entry.plugin,
            "version": cs.entry.version,
            "params": {k: v for k, v in params.items() if k not in ("stage", "placement")},
            "inputs": sources.get(cs.where, []),
            "outputs": [c.name for c in cs.entry.cls.outputs],
        }
        if placement is not None:
            d["placement"] = placement.to_dict()
        return d

    stages = [row(resolved.reader, spec["reader"])]
    stages += [row(cs, p, pl) for cs, p, pl in zip(resolved.encoders, spec["encoders"], placements)]
    stages += [row(cs, p) for cs, p in zip(resolved.sinks, spec["sinks"])]
    return {
        "spec": resolved.source,
        "run": spec["run"],
        "inputs": {"count": len(resolved.inputs), "bytes": sum(i.size or 0 for i in resolved.inputs)},
        "cluster": cluster.to_dict(),
        "stages": stages,
        # How the runner groups the encoders into Ray Data pools (consecutive CPU stages fuse).
        "pools": [
            {"encoders": [resolved.encoders[i].where for i in idx], "placement": pool.to_dict()}
            for idx, pool in fuse_cpu_runs(placements)
        ],
    }


def format_text(plan: dict) -> str:
    c = plan["cluster"]
    where = c["address"] or "this machine (local Ray)"
    lines = [
        f"plan for {plan['spec']}",
        f"  output:  {plan['run']['output']}",
        f"  inputs:  {plan['inputs']['count']} item(s), {plan['inputs']['bytes']} bytes",
        f"  cluster: {where}: {c['cpus']:g} CPU, {c['gpus']:g} GPU, {c['nodes']} node(s)",
        *(
            f"    node {n['hostname'] or n['address']} ({n['address']}, {n['node_id'][:12]}): "
            f"{n['cpus']:g} CPU, {n['gpus']:g} GPU"
            for n in c.get("node_list", ())
        ),
        "",
    ]
    for i, s in enumerate(plan["stages"], 1):
        lines.append(f"{i}. {s['where']}: {s['stage']} ({s['kind']}) from {s['plugin']} {s['version']}")
        for k, v in s["params"].items():
            lines.append(f"     {k} = {json.dumps(v)}")
        for i_col in s.get("inputs", ()):
            lines.append(f"     reads {i_col['column']} ({i_col['types']}) from {i_col['from']}")
        if s["outputs"]:
            lines.append(f"     outputs: {', '.join(s['outputs'])}")
        p = s.get("placement")
        if p:
            lines.append(
                f"     placement: {p['compute']}, num_cpus={p['num_cpus']:g}, num_gpus={p['num_gpus']:g}, "
                f"concurrency={p['concurrency'] or 'auto'}, batch_size={p['batch_size']}, variant={p['variant']}"
            )
            lines.append(f"     why: {p['reason']} [{p['decided_by']}]")
    pools = plan.get("pools", [])
    if pools:
        lines += ["", "pools (consecutive CPU encoders run fused, one after another in each worker):"]
        for pool in pools:
            p = pool["placement"]
            size = f"{p['concurrency']} " if p["concurrency"] else ""
            lines.append(
                f"  {' -> '.join(pool['encoders'])}: {size}{p['compute']}, num_cpus={p['num_cpus']:g}, "
                f"num_gpus={p['num_gpus']:g}"
            )
    return "\n".join(lines)


def format_mermaid(plan: dict) -> str:
    lines = ["flowchart LR"]
    for i, s in enumerate(plan["stages"]):
        label = f"{s['stage']}<br/>{s['kind']}"
        p = s.get("placement")
        if p:
            label += f"<br/>{p['compute']} · {p['variant']} · cpu {p['num_cpus']:g} gpu {p['num_gpus']:g}"
        lines.append(f'    s{i}["{label}"]')
    lines += [f"    s{a} --> s{b}" for a, b in _edges(plan)]
    return "\n".join(lines)


def _edges(plan: dict) -> list[tuple[int, int]]:
    """The pipeline's arrows, by stage index: reader and encoders in a chain, and every sink
    fed by the last stage that is not a sink."""
    kinds = [s["kind"] for s in plan["stages"]]
    last = max(i for i, k in enumerate(kinds) if k != "sink")
    return [(i, i + 1) for i in range(last)] + [(last, i) for i, k in enumerate(kinds) if k == "sink"]


def format_dot(plan: dict) -> str:
    """The pipeline as a Graphviz graph: one box per stage (plugin and version, placement),
    encoders that run fused in one Ray Data pool drawn inside one frame, sinks fed by the last
    stage that is not a sink."""
    lines = [
        "digraph hpcprep {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f6fb", fontname="Helvetica", fontsize=10];',
        '  edge [color="#5b6b8c"];',
        '  graph [fontname="Helvetica", fontsize=10];',
    ]
    ids = {}
    for i, s in enumerate(plan["stages"]):
        ids[s["where"]] = f"s{i}"
        rows = [s["stage"], f"{s['kind']} · {s['plugin']} {s['version']}"]
        p = s.get("placement")
        if p:
            rows.append(f"{p['compute']} · {p['variant']} · cpu {p['num_cpus']:g} gpu {p['num_gpus']:g}")
            rows.append(f"batch {p['batch_size']}" + (f" · {p['concurrency']} workers" if p["concurrency"] else ""))
        fill = {"reader": "#e3f1e6", "sink": "#fbeee0"}.get(s["kind"], "#f4f6fb")
        lines.append(f'  s{i} [label="{_dot_text(chr(10).join(rows))}", fillcolor="{fill}"];')
    for n, pool in enumerate(plan.get("pools", [])):
        p = pool["placement"]
        members = " ".join(ids[w] for w in pool["encoders"])
        label = f"pool {n + 1}: {p['compute']}, cpu {p['num_cpus']:g}, gpu {p['num_gpus']:g}"
        lines.append(
            f'  subgraph cluster_pool{n} {{ label="{_dot_text(label)}"; style=dashed; color="#9aa5bd"; {members}; }}'
        )
    lines += [f"  s{a} -> s{b};" for a, b in _edges(plan)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(plan: dict, fmt: str) -> bytes:
    """The diagram as ``svg`` or ``png`` bytes, drawn by Graphviz's ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("drawing the plan needs Graphviz's dot (Debian: apt-get install graphviz)")
    done = subprocess.run([dot, f"-T{fmt}"], input=format_dot(plan).encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"dot -T{fmt} failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
