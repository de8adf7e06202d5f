"""Runs a resolved spec on Ray Data, one commit group at a time: the run's checks and
start-up, the loop over groups, the finish and the manifest. One group's pipeline and
commit live in ``commit_group``; connecting to Ray (an address, a kept local Ray or one of
the run's own) in ``ray_connection``.

Inputs are cut into commit groups as the run goes: ``state.GroupPacer`` offers each
group a span of inputs, and the group ends by time (``run_stats``: read tasks are
admitted for ``commit_seconds``). Each group streams through reader, encoders and sinks
as one Ray Data pipeline; when it has been written, the sinks commit and the group is
recorded in ``_state/commits.jsonl``.
``--resume`` goes on after the committed inputs and discards whatever an unfinished
group left behind, so an interrupted run resumed ends with the same outputs as one
that never stopped.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from . import errors_table, run_dir, warm_workers
from . import progress as progress_lines
from .commit_group import BooksKeepDying, new_attempt, run_group, stats_actor
from .manifest import build_manifest, run_timings, write_manifest
from .placement import ClusterInfo, decide_placements, reads_in_actors
from .plugins import PluginRegistry
from .ray_connection import start_ray
from .ray_start import shutdown_ray
from .run_log import RayLog
from .spec import ResolvedSpec, planned, resolve
from .stages import SinkContext
from .state import GroupPacer, RunState, fingerprint


class RunError(RuntimeError):
    pass


class OutputDirError(RunError, run_dir.RunDirError):
    """``run.output`` cannot be used as asked (see ``run_dir``)."""


class UnbalancedRun(RunError):
    """The run ended but its books do not balance: records were lost or counted twice.
    ``result`` holds the manifest, which names the stages at fault."""

    def __init__(self, message: str, result: RunResult):
        super().__init__(message)
        self.result = result


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


def _log(msg: str, progress: bool) -> None:
    if progress:
        print(f"[hpcprep] {msg}", file=sys.stderr, flush=True)


def _quiet_ray_data(ray_log: RayLog) -> None:
    """Ray Data's logger exists once Ray Data is imported (it configures its own handlers
    then): route it like Ray's, and keep its progress bars off the terminal unless verbose."""
    import ray.data

    ray_log.start()
    ray.data.DataContext.get_current().enable_progress_bars = ray_log.verbose


def _installed_modules(resolved: ResolvedSpec, registry: PluginRegistry) -> list[str]:
    """The modules of the spec's stages that workers import by name (not in-process plugins)."""
    out = []
    for cs in resolved.stages():
        info = registry.plugins.get(cs.entry.plugin)
        if not (info and info.distribution == "(in process)"):
            out.append(cs.entry.cls.__module__)
    return sorted(set(out))


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
    keep_ray: float = 0.0,
    verbose: bool = False,
) -> RunResult:
    """Validate ``spec`` (a TOML path or a dict), run it, and return the manifest.

    Without an address, a local Ray is started for the run and stopped with it; with
    ``keep_ray`` > 0 it is kept that many seconds after the run for the next one to
    join (``hpcprep run`` does this by default, see ``local_ray``). Ray's own log lines
    go to ``RUN_DIR/_logs/ray.log``; ``verbose`` shows them on the terminal as well
    (``run_log``).
    """
    return _run(
        spec,
        overrides=overrides,
        overwrite=overwrite,
        resume=resume,
        address=address,
        plugins=plugins,
        registry=registry,
        progress=progress,
        keep_ray=keep_ray,
        verbose=verbose,
    )


def _run(
    spec,
    *,
    overrides: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    address: str | None = None,
    plugins: list | None = None,
    registry: PluginRegistry | None = None,
    progress: bool = True,
    keep_ray: float = 0.0,
    verbose: bool = False,
    stop_after_groups: int | None = None,
    disconnect: bool = True,
) -> RunResult:
    """``run``; ``stop_after_groups`` ends the run after that many commit groups, as an
    interruption would (``hpcprep.testing.interrupted_run``, for tests of ``--resume``).
    ``disconnect=False`` leaves a kept local Ray without disconnecting from it, for a
    caller that ends its process right after (``hpcprep run``): Ray ends the job when the
    driver's process is gone, and the disconnect would only cost that process about 0.3 s."""
    import ray

    entered = time.perf_counter()
    registry = registry or PluginRegistry(extra_plugins=plugins)
    resolved = resolve(spec, registry, overrides, plan_inputs=False)
    out = resolved.output_dir.absolute()
    address = address or resolved.run.address
    mode = _output_mode(out, overwrite, resume)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t0 = time.perf_counter()

    # The reader lists its inputs (which may mean indexing gigabytes) while Ray starts.
    planner = ThreadPoolExecutor(1, thread_name_prefix="hpcprep-plan")
    planning = planner.submit(planned, resolved)
    planner.shutdown(wait=False)
    ray_log = RayLog(verbose)
    ray_log.start()
    try:
        we_started, after_ray, kept = start_ray(
            address, resolved.run.num_cpus, keep_ray, lambda msg: _log(msg, progress)
        )
    except BaseException:
        ray_log.close()
        raise
    stats = None
    try:
        _register_by_value(resolved, registry)
        cluster = ClusterInfo.from_ray(address)
        if cluster.nodes > 1:
            from .cluster_checks import check_nodes, needed_distributions

            problems = check_nodes(out, cluster, needed_distributions(resolved, registry))
            if problems:
                raise RunError("the cluster cannot run this spec:\n  " + "\n  ".join(problems))
        placements = decide_placements(resolved, registry, cluster)
        # A warm worker serves only a read that runs as tasks: Ray never hands an actor a
        # worker that has run a task, and a first pool of CPU actors takes the read in.
        warm = we_started and not address and not reads_in_actors(placements)
        warming = warm_workers.start(_installed_modules(resolved, registry)) if warm else None
        resolved = planning.result()
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

        if we_started:
            warm_workers.start_ray_data_actors(actor_pools=any(p.compute == "actors" for p in placements))
        # Everything that can refuse the run has been checked; only now is run.output touched.
        _prepare_output(out, mode)
        ray_log.open(out)
        if mode != "resume":
            state.write_plan({"fingerprint": fp, "started": started, "inputs": len(resolved.inputs)})

        sink_ctx = SinkContext(
            run_dir=str(out), run_name=resolved.run.name or out.name, mode=mode, attempt=new_attempt()
        )
        for cs in resolved.sinks:
            try:
                cs.stage.prepare(sink_ctx)
            except Exception as exc:
                raise RunError(f"{cs.where} ({cs.name}): {exc}") from exc
        run_dir.record_created(out)

        manifest_args = dict(
            resolved=resolved,
            registry=registry,
            cluster=cluster,
            placements=placements,
            started=started,
            mode=mode,
        )
        items = resolved.inputs
        try:
            done = state.inputs_done()
        except ValueError as exc:
            raise RunError(f"--resume: {exc}") from None
        _log(
            f"{len(items)} input(s) on {cluster.cpus:g} CPU(s), {cluster.gpus:g} GPU(s), {cluster.nodes} node(s)"
            + (f"; resuming after {done} committed input(s)" if mode == "resume" else ""),
            progress,
        )
        stats = stats_actor(shared=kept)
        warm_workers.wait(warming)
        _quiet_ray_data(ray_log)
        startup = time.perf_counter() - entered

        def progress_manifest(finished=None, finish_seconds=None, sink_reports=None) -> dict:
            total = time.perf_counter() - entered if finished else None
            timings = run_timings(state, startup, finish_seconds, total)
            manifest = build_manifest(
                state=state, finished=finished, timings=timings, sink_reports=sink_reports, **manifest_args
            )
            write_manifest(out, manifest)
            return manifest

        live = progress_lines.for_run(progress, verbose, items[done:])
        pacer = GroupPacer(items, resolved.run.commit_every, resolved.run.commit_seconds, cluster.cpus)
        ran = 0
        while done < len(items):
            if stop_after_groups is not None and ran >= stop_after_groups:
                progress_manifest()
                return RunResult(out, json.loads((out / "manifest.json").read_text()), out / "errors")
            g, end = len(state.commits), pacer.next_end(done)
            try:
                end = run_group(g, (done, end), resolved, placements, stats, state, sink_ctx, cluster.cpus, live)
            except BooksKeepDying as exc:
                raise RunError(str(exc)) from None
            rec = state.commits[g]
            pacer.observe(done, end, rec["wall_seconds"])
            done, ran = end, ran + 1
            live.say(
                f"group {g + 1} committed: inputs {done}/{len(items)}, "
                f"{rec['stages'].get('sinks', {}).get('rows_in', 0):.0f} rows, "
                f"{sum(s.get('errors', 0) for s in rec['stages'].values()):.0f} errors "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            run_dir.record_created(out)
            progress_manifest()

        finishing = time.perf_counter()
        # Workers of an interrupted run may have written late; keep only committed attempts.
        for g, rec in state.commits.items():
            errors_table.discard_group(str(out), g, keep_attempt=rec["attempt"])
            for cs in resolved.sinks:
                cs.stage.discard_group(replace(sink_ctx, group=g, attempt=rec["attempt"]), rec["sources"])
        sink_reports = {}
        for cs in resolved.sinks:
            sink_ctx.group = len(state.commits)
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
        result = RunResult(out, manifest, out / errors_table.ERRORS_DIR)
        if not c["balanced"]:
            raise UnbalancedRun(
                "the books do not balance: " + "; ".join(c["problems"]) + f" (see {out / 'manifest.json'})", result
            )
        return result
    finally:
        try:
            if stats is not None and not we_started and not kept:
                # a Ray that outlives the run (--address) must not keep its actor
                ray.kill(stats, no_restart=True)
            if we_started and (disconnect or not kept):
                shutdown_ray()
            elif we_started:
                # The process ends right after; Ray's own exit hook would sleep 0.5 s, then disconnect.
                atexit.unregister(ray.shutdown)
            if after_ray is not None:
                after_ray()
        finally:
            ray_log.close()


def _output_mode(out: Path, overwrite: bool, resume: bool) -> str:
    try:
        return run_dir.output_mode(out, overwrite, resume)
    except run_dir.RunDirError as exc:
        raise OutputDirError(str(exc)) from None


def _prepare_output(out: Path, mode: str) -> None:
    try:
        run_dir.prepare(out, mode)
    except run_dir.RunDirError as exc:
        raise OutputDirError(str(exc)) from None
