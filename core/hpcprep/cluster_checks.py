"""Checks a multi-node cluster before a run starts: every node must see the run
directory (the errors table and the sinks' files are written by the nodes themselves)
and have the plugins the spec needs at the versions the driver has.

One probe task per node, pinned there: it writes a file into the run directory and
reports the versions of the distributions it can import. The driver then reads each
node's file. A node-local path (``/tmp/run`` on every node) passes the first test on
no node but the driver's own, which is the mistake this catches.
"""

from __future__ import annotations

import contextlib
import uuid
from importlib import metadata
from pathlib import Path

from .state import STATE_DIR

PROBE_TIMEOUT_SECONDS = 120


def _probe(run_dir: str, name: str, distributions: list[str]) -> dict:
    import ray

    token = uuid.uuid4().hex
    versions = {}
    for dist in distributions:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    written = None
    try:
        folder = Path(run_dir) / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(token)
    except OSError as exc:
        written = f"{type(exc).__name__}: {exc}"
    node = ray.get_runtime_context().get_node_id()
    return {"node": node, "token": token, "write_error": written, "versions": versions}


def check_nodes(run_dir: Path, cluster, versions: dict[str, str]) -> list[str]:
    """Problems with the cluster's nodes for a run writing to ``run_dir`` with the
    distributions ``versions`` (name -> the driver's version); empty when all is well."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    # Folders the probes make for a new run; removed again (when empty) so that a refused
    # run leaves nothing behind.
    made = [p for p in (run_dir, run_dir / STATE_DIR) if not p.exists()]
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    names = {n["node_id"]: f"probe-{uuid.uuid4().hex[:8]}" for n in cluster.node_list}
    refs = [
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
            str(run_dir), names[node], sorted(versions)
        )
        for node in names
    ]
    try:
        return _read_probes(refs, run_dir, cluster, names, versions)
    finally:
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _read_probes(refs, run_dir: Path, cluster, names: dict, versions: dict[str, str]) -> list[str]:
    import ray

    problems = []
    try:
        results = ray.get(refs, timeout=PROBE_TIMEOUT_SECONDS)
    except Exception as exc:  # a node that cannot run a task cannot run the pipeline either
        return [f"a probe task on every node did not finish: {type(exc).__name__}: {exc}"]
    where = {n["node_id"]: f"{n['hostname'] or n['address']} ({n['address']})" for n in cluster.node_list}
    for res in results:
        node = where.get(res["node"], res["node"])
        path = run_dir / STATE_DIR / names[res["node"]]
        if res["write_error"]:
            problems.append(f"node {node} cannot write the run directory {run_dir}: {res['write_error']}")
        else:
            seen = path.read_text() if path.exists() else None
            if seen != res["token"]:
                problems.append(
                    f"run.output {run_dir} is not shared with node {node}: what it wrote there is not "
                    "what the driver reads; put run.output on a file system every node mounts"
                )
        path.unlink(missing_ok=True)
        for dist, want in sorted(versions.items()):
            have = res["versions"].get(dist)
            if have != want:
                problems.append(
                    f"node {node} has {dist} {have or '(not installed)'}, the driver has {want}; "
                    "install the same versions on every node"
                )
    return problems


def needed_distributions(resolved, registry) -> dict[str, str]:
    """The installed distributions (name -> version) the spec's stages come from, and hpcprep."""
    from . import __version__

    out = {"hpcprep": __version__}
    for cs in resolved.stages():
        info = registry.plugins.get(cs.entry.plugin)
        if info and info.distribution not in ("(in process)", "hpcprep", "") and info.version:
            out[info.distribution] = info.version
    return out
