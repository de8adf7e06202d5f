"""Runs a resolved spec on Ray Data, one commit group at a time.

Inputs are split into commit groups. Each group streams through reader, encoders
and sinks as one Ray Data pipeline; when it has been written, the sinks commit and
the group is recorded in ``_state/commits.jsonl``. ``--resume`` skips recorded
groups and discards whatever an unfinished group left behind, so an interrupted
run resumed ends with the same outputs as one that never stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from . import errors_table
from .manifest import build_manifest, input_listing, run_timings, write_manifest
from .placement import ClusterInfo, Placement, apply_override, fuse_cpu_runs
from .plugins import PluginRegistry
from .spec import ResolvedSpec, SpecError, resolve
from .stages import InputItem, SinkContext

STATE_DIR = "_state"


class RunError(RuntimeError):
    pass


@dataclass
class RunResult:
    output_dir: Path
    manifest: dict
    errors_path: Path

    @property
    def counts(self) -> dict:
        return self.manifest["counts"]

    def errors(self):
        """The errors table (committed attempts only) as a pyarrow Table."""
        state = RunState(self.output_dir)
        state.load()
        return errors_table.read_errors(str(self.output_dir), state.committed_attempts())


@dataclass
class RunState:
    """What has been committed, kept in the run directory so a later process can resume."""

    root: Path
    commits: dict[int, dict] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return self.root / STATE_DIR

    def load(self) -> None:
        path = self.dir / "commits.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.commits[rec["group"]] = rec

    def record(self, rec: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "commits.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.commits[rec["group"]] = rec

    def committed_attempts(self) -> dict[int, str]:
        return {g: rec["attempt"] for g, rec in self.commits.items()}

    def write_plan(self, plan: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "plan.json").write_text(json.dumps(plan, indent=1))

    def read_plan(self) -> dict | None:
        path = self.dir / "plan.json"
        return json.loads(path.read_text()) if path.exists() else None


def fingerprint(resolved: ResolvedSpec) -> str:
    """What must not change between an interrupted run and its resume."""
    spec = resolved.to_dict(redact=True)
    spec["run"].pop("address", None)
    payload = json.dumps(
        {"spec": spec, "inputs": [(i.source, i.size, i.offset, i.length) for i in resolved.inputs]},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


#: Automatic commit groups close at this much input: each group is one Ray Data
#: execution (a few seconds of start-up and drain), so groups must hold real work.
GROUP_BYTES = 2 << 30


def commit_groups(items: list[InputItem], commit_every: int, cpus: float) -> list[list[InputItem]]:
    """Split inputs into commit groups, the unit that ``--resume`` skips.

    ``commit_every`` fixes the number of inputs per group. Automatic sizing closes a
    group once it holds ``GROUP_BYTES`` of input and enough items to keep every CPU
    busy; inputs of unknown size count as nothing, so such runs are one group.
    """
    if not items:
        return []
    if commit_every:
        return [items[i : i + commit_every] for i in range(0, len(items), commit_every)]
    groups, current, size = [], [], 0
    min_items = int(2 * max(cpus, 1))
    for item in items:
        current.append(item)
        size += (item.length if item.length is not None else item.size) or 0
        if size >= GROUP_BYTES and len(current) >= min_items:
            groups.append(current)
            current, size = [], 0
    if current:
        groups.append(current)
    return groups


def prepare_output(out: Path, overwrite: bool, resume: bool) -> str:
    if overwrite and resume:
        raise RunError("--overwrite and --resume exclude each other")
    nonempty = out.exists() and any(out.iterdir())
    if not nonempty:
        out.mkdir(parents=True, exist_ok=True)
        return "new"
    if resume:
        if not (out / STATE_DIR / "plan.json").exists():
            raise RunError(f"--resume: {out} holds no interrupted hpcprep run (no {STATE_DIR}/plan.json)")
        return "resume"
    if overwrite:
        if not ((out / "manifest.json").exists() or (out / STATE_DIR).exists()):
            raise RunError(
                f"--overwrite: {out} is not empty and does not look like an hpcprep run "
                "directory (no manifest.json); refusing to delete it"
            )
        shutil.rmtree(out)
        out.mkdir(parents=True)
        return "overwrite"
    raise RunError(f"output directory {out} is not empty: pass --overwrite to replace it or --resume to continue it")


# Ray keeps about one idle worker process per CPU and kills the rest after one idle
# second. Write tasks take no CPU slot, so their workers sit above that limit: between
# two blocks the worker was killed and the next block paid for a new Python process
# (about a CPU-second of imports each, a tenth of a 2-core machine's time on the runner
# benchmark). On a Ray we start, idle workers live for a minute instead.
LOCAL_RAY_SYSTEM_CONFIG = {"idle_worker_killing_time_threshold_ms": 60_000}


def start_local_ray(num_cpus: int | None = None) -> None:
    """A local Ray the way ``hpcprep run`` starts one: ``num_cpus`` (default: all), no
    dashboard, worker logs kept out of the terminal."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=False,
        log_to_driver=False,
        _system_config=LOCAL_RAY_SYSTEM_CONFIG,
    )


def start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Join ``address`` or start a local Ray sized for the machine; True if we started it."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        start_local_ray(num_cpus)
    return True


def decide_placements(resolved: ResolvedSpec, registry: PluginRegistry, cluster: ClusterInfo) -> list[Placement]:
    out = []
    for cs in resolved.encoders:
        placement = registry.place(cs.stage, cluster)
        if placement is None:  # only if someone unregistered the default policy
            placement = Placement(batch_size=cs.stage.batch_size, reason="no policy answered")
        try:
            out.append(apply_override(placement, cs.placement, cs.stage))
        except ValueError as exc:
            raise SpecError([f"{cs.where} ({cs.name}): {exc}"], resolved.source) from None
    return out


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[hpcprep] {msg}", file=sys.stderr, flush=True)


def _register_by_value(resolved: ResolvedSpec, registry: PluginRegistry) -> None:
    """Stages of in-process plugins (not installed packages) travel to workers by value."""
    from ray import cloudpickle

    for cs in resolved.stages():
        info = registry.plugins.get(cs.entry.plugin)
        module = sys.modules.get(cs.entry.cls.__module__)
        if info and info.distribution == "(in process)" and module and module.__name__ != "__main__":
            cloudpickle.register_pickle_by_value(module)


def run(
    spec,
    *,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    address: str | None = None,
    plugins: list | None = None,
    registry: PluginRegistry | None = None,
    progress: bool = True,
    stop_after_groups: int | None = None,
) -> RunResult:
    """Validate ``spec`` (a TOML path or a dict), run it, and return the manifest.

    ``stop_after_groups`` stops after that many commit groups, as an interruption
    would (used to test ``resume``).
    """
    import uuid

    import ray

    from .run_stats import RunStats

    entered = time.perf_counter()
    registry = registry or PluginRegistry(extra_plugins=plugins)
    resolved = resolve(spec, registry, overrides)
    out = resolved.output_dir.absolute()
    address = address or resolved.run.address
    mode = prepare_output(out, overwrite, resume)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()

    state = RunState(out)
    fp = fingerprint(resolved)
    if mode == "resume":
        plan = state.read_plan()
        if plan["fingerprint"] != fp:
            raise RunError(
                f"--resume: the spec or its inputs changed since the interrupted run in {out}; "
                "use --overwrite to start again"
            )
        state.load()
        started = plan.get("started", started)

    we_started = start_ray(address, resolved.run.num_cpus)
    try:
        cluster = ClusterInfo.from_ray(address)
        placements = decide_placements(resolved, registry, cluster)
        groups = commit_groups(resolved.inputs, resolved.run.commit_every, cluster.cpus)
        if mode != "resume":
            state.write_plan({"fingerprint": fp, "started": started, "groups": [[i.source for i in g] for g in groups]})
        _register_by_value(resolved, registry)

        attempt = uuid.uuid4().hex[:10]
        sink_ctx = SinkContext(run_dir=str(out), run_name=resolved.run.name or out.name, mode=mode, attempt=attempt)
        for cs in resolved.sinks:
            try:
                cs.stage.prepare(sink_ctx)
            except Exception as exc:
                raise RunError(f"{cs.where} ({cs.name}): {exc}") from exc

        manifest_args = dict(
            resolved=resolved,
            registry=registry,
            cluster=cluster,
            placements=placements,
            started=started,
            mode=mode,
            inputs=input_listing(resolved),
        )
        done_before = len(state.commits)
        _log(
            f"{len(resolved.inputs)} input(s) in {len(groups)} commit group(s) on "
            f"{cluster.cpus:g} CPU(s), {cluster.gpus:g} GPU(s)"
            + (f"; resuming, {done_before} group(s) already committed" if mode == "resume" else ""),
            progress,
        )
        stats = RunStats.remote()
        startup = time.perf_counter() - entered

        def progress_manifest(finished=None, finish_seconds=None, sink_reports=None) -> dict:
            total = time.perf_counter() - entered if finished else None
            timings = run_timings(state, startup, finish_seconds, total)
            manifest = build_manifest(
                state=state, finished=finished, timings=timings, sink_reports=sink_reports, **manifest_args
            )
            write_manifest(out, manifest)
            return manifest

        ran = 0
        for g, items in enumerate(groups):
            if g in state.commits:
                continue
            if stop_after_groups is not None and ran >= stop_after_groups:
                progress_manifest()
                return RunResult(out, json.loads((out / "manifest.json").read_text()), out / "errors")
            _run_group(g, items, resolved, placements, stats, state, sink_ctx, cluster.cpus)
            ran += 1
            rec = state.commits[g]
            _log(
                f"group {g + 1}/{len(groups)} committed: {rec['stages'].get('sinks', {}).get('rows_in', 0):.0f} "
                f"rows, {sum(s.get('errors', 0) for s in rec['stages'].values()):.0f} errors "
                f"({time.perf_counter() - t0:.1f} s)",
                progress,
            )
            progress_manifest()

        finishing = time.perf_counter()
        # Workers of an interrupted run may have written late; keep only committed attempts.
        for g, rec in state.commits.items():
            errors_table.discard_group(str(out), g, keep_attempt=rec["attempt"])
            for cs in resolved.sinks:
                cs.stage.discard_group(replace(sink_ctx, group=g, attempt=rec["attempt"]), rec["sources"])
        sink_reports = {}
        for cs in resolved.sinks:
            sink_ctx.group = len(groups)
            sink_reports[cs.where] = cs.stage.finish(sink_ctx) or {}
        finished = datetime.now(UTC).isoformat(timespec="seconds")
        manifest = progress_manifest(finished, time.perf_counter() - finishing, sink_reports)
        c = manifest["counts"]
        _log(
            f"done: inputs {c['inputs']} = outputs {c['outputs']} + errors {c['errors']}"
            + (" (balanced)" if c["balanced"] else " (NOT balanced: see manifest stages)")
            + f"; {out / 'manifest.json'}",
            progress,
        )
        for note in manifest["notes"]:
            _log(f"note: {note}", progress)
        return RunResult(out, manifest, out / errors_table.ERRORS_DIR)
    finally:
        if we_started:
            ray.shutdown()


def _run_group(g, items, resolved: ResolvedSpec, placements, stats, state: RunState, sink_ctx, cpus: float):
    import ray
    import ray.data

    from .execution import (
        EncoderRunner,
        FanOutDatasink,
        GroupContext,
        map_batches_args,
        write_results,
    )
    from .reading import StageDatasource

    out = str(resolved.output_dir.absolute())
    attempt = sink_ctx.attempt
    sources = [i.source for i in items]
    sink_ctx.group = g

    def discard_others():
        errors_table.discard_group(out, g, keep_attempt=attempt)
        for cs in resolved.sinks:
            cs.stage.discard_group(sink_ctx, sources)

    discard_others()
    ray.get(stats.take.remote())

    ctx = GroupContext(run_dir=out, group=g, attempt=attempt, stats=stats)
    reader_label = f"reader:{resolved.reader.name}"
    source = StageDatasource(resolved.reader.stage, items, ctx, reader_label, cpus)
    ds = ray.data.read_datasource(source, override_num_blocks=len(source.bundles))
    sinks = [(cs.where, cs.stage) for cs in resolved.sinks]
    pools = fuse_cpu_runs(placements)
    # A last pool of CPU actors writes its own output (see WritingChainActor).
    actors_write = bool(pools) and pools[-1][1].compute == "actors" and not pools[-1][1].num_gpus
    write_cpus = 1.0  # as the read tasks ask, when there is no encoder
    for n, (indices, pool) in enumerate(pools):
        stages = [(resolved.encoders[i], placements[i]) for i in indices]
        runners = [EncoderRunner(cs.stage, p, ctx, f"{cs.where}:{cs.name}") for cs, p in stages]
        writing = (sinks, ctx, sink_ctx) if actors_write and n == len(pools) - 1 else None
        fn, kwargs = map_batches_args(runners, pool, writing)
        ds = ds.map_batches(fn, **kwargs)
        write_cpus = pool.num_cpus if pool.compute == "tasks" and not pool.num_gpus else 0.0
    t = time.perf_counter()
    if actors_write:
        results = write_results(ds.iter_rows())
    else:
        sink = FanOutDatasink(sinks, ctx, sink_ctx)
        # After GPU actors, writers take no CPU slot of their own: they mostly wait on
        # storage, and a slot held by each would keep a small cluster from running one actor
        # per GPU stage. After tasks, they ask for what the tasks ask for, so that Ray fuses
        # read, encoders and write into one task and no block travels through the object store.
        ds.write_datasink(sink, ray_remote_args={"num_cpus": write_cpus})
        results = sink.results
    wall = time.perf_counter() - t

    committing = time.perf_counter()
    sink_results: dict[str, list] = {cs.where: [] for cs in resolved.sinks}
    for res in results:
        for where, r in res["results"].items():
            sink_results[where].append(r)
    commits = {cs.where: cs.stage.commit(sink_ctx, sink_results[cs.where]) or {} for cs in resolved.sinks}
    stage_rows = ray.get(stats.take.remote())
    discard_others()
    state.record(
        {
            "group": g,
            "attempt": attempt,
            "sources": sources,
            "stages": stage_rows,
            "sinks": commits,
            "wall_seconds": wall,
            "commit_seconds": time.perf_counter() - committing,
        }
    )
