"""One commit group: its span of inputs through reader, encoders and sinks as one Ray
Data execution, then the sinks' commit and the record in ``_state/commits.jsonl``.

A group's books live in the ``RunStats`` actor (``run_stats``), which also ends the
group by time; if the actor dies under a group, the group runs again under a fresh
attempt before anything of it is committed (``run_group``).
"""

from __future__ import annotations

import time

from . import errors_table
from .placement import fuse_cpu_runs
from .spec import ResolvedSpec
from .state import RunState

#: Name of the ``RunStats`` actor that the commands on a kept local Ray share.
SHARED_STATS = ("hpcprep-run-stats", "hpcprep")  # (name, namespace)


def stats_actor(shared: bool = False):
    """The run's ``RunStats`` actor. The group's books live beside the driver: a worker
    node lost mid-run must not take them along (the driver's own node going ends the run
    anyway). With ``shared`` (a local Ray kept for the next command, which runs one
    command at a time) the actor outlives the run and the next command reuses it instead
    of starting a process for its own; books are opened per attempt, so nothing of one run
    reaches another's."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from .run_stats import RunStatsActor

    here = ray.get_runtime_context().get_node_id()
    options = {"scheduling_strategy": NodeAffinitySchedulingStrategy(here, soft=False)}
    if shared:
        name, namespace = SHARED_STATS
        options.update(name=name, namespace=namespace, lifetime="detached", get_if_exists=True)
    return RunStatsActor.options(**options).remote()


class BooksLost(RuntimeError):
    """The ``RunStats`` actor died and came back empty while a group ran (see run_stats)."""


class BooksKeepDying(RuntimeError):
    """A group lost its books ``BOOKS_RETRIES + 1`` times: the run cannot go on."""


#: How many times one group is run again after losing its books before the run gives up
#: (an actor that keeps dying, say of memory, would otherwise loop for ever).
BOOKS_RETRIES = 3


def new_attempt() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


def run_group(g, span, resolved, placements, stats, state: RunState, sink_ctx, cpus: float, live) -> int:
    """Commit group ``g`` and return where it ended, running it again under a fresh
    attempt when its books were lost. Nothing of a lost attempt was committed; the next
    attempt's start discards its files. ``live`` (``progress.LiveProgress``) shows the
    group's books as they grow."""
    for tries in range(BOOKS_RETRIES + 1):
        state.write_running({"group": g, "inputs": list(span), "attempt": sink_ctx.attempt})
        committed = None
        try:
            end = _run_group(g, span, resolved, placements, stats, state, sink_ctx, cpus, tries, live)
            committed = state.commits[g]["stages"]
            return end
        except BooksLost:
            if tries == BOOKS_RETRIES:
                raise BooksKeepDying(
                    f"commit group {g + 1} lost its books {tries + 1} times: hpcprep's RunStats actor "
                    "keeps dying (see Ray's logs for why); nothing of the group was committed, "
                    "run again with --resume"
                ) from None
            live.say(
                f"group {g + 1}: hpcprep's RunStats actor restarted and lost the group's books; running the group again"
            )
            sink_ctx.attempt = new_attempt()
        finally:
            live.group_done(committed)


def _run_group(
    g, span, resolved: ResolvedSpec, placements, stats, state, sink_ctx, cpus: float, redone=0, live=None
) -> int:
    """Commit group ``g``: the inputs ``resolved.inputs[span[0]:span[1]]`` that its read
    tasks were admitted for (see ``run_stats``); returns the end of what it covered.
    Raises ``BooksLost`` before committing anything when the books did not survive;
    ``redone`` says how many times that already happened to this group."""
    import ray
    import ray.data

    from .execution import (
        EncoderRunner,
        EverySinkDatasink,
        GroupContext,
        map_batches_args,
        write_results,
    )
    from .reading import StageDatasource

    out = str(resolved.output_dir.absolute())
    attempt = sink_ctx.attempt
    items = resolved.inputs[span[0] : span[1]]
    sources = sorted({i.source for i in items})
    sink_ctx.group = g

    def discard_others():
        errors_table.discard_group(out, g, keep_attempt=attempt)
        for cs in resolved.sinks:
            cs.stage.discard_group(sink_ctx, sources)

    discard_others()
    seconds = 0.0 if resolved.run.commit_every else resolved.run.commit_seconds
    incarnation = ray.get(stats.open_group.remote(seconds, attempt))
    if live is not None:
        live.group_started(lambda: ray.get(stats.peek.remote(attempt), timeout=10))

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
        sink = EverySinkDatasink(sinks, ctx, sink_ctx)
        # After GPU actors, writers take no CPU slot of their own: they mostly wait on
        # storage, and a slot held by each would keep a small cluster from running one actor
        # per GPU stage. After tasks, they ask for what the tasks ask for, so that Ray fuses
        # read, encoders and write into one task and no block travels through the object store.
        ds.write_datasink(sink, ray_remote_args={"num_cpus": write_cpus})
        results = sink.results
    wall = time.perf_counter() - t

    committing = time.perf_counter()
    books = ray.get(stats.take.remote())
    if books["incarnation"] != incarnation:
        raise BooksLost(g)
    if books["cut"] is not None:
        items = [item for bundle in source.bundles[: books["cut"]] for item in bundle]
        sources = sorted({i.source for i in items})
    end = span[0] + len(items)
    sink_results: dict[str, list] = {cs.where: [] for cs in resolved.sinks}
    for res in results:
        for where, r in res["results"].items():
            sink_results[where].append(r)
    commits = {cs.where: cs.stage.commit(sink_ctx, sink_results[cs.where]) or {} for cs in resolved.sinks}
    _add_writes(books, results)
    errors_table.keep_keys(out, g, attempt, set(books["error_keys"]))
    discard_others()
    state.record(
        {
            "group": g,
            "attempt": attempt,
            "inputs": [span[0], end],
            "sources": sources,
            "sha256": books["sha256"],
            "stages": books["stages"],
            "nodes": books["nodes"],
            "sinks": commits,
            "wall_seconds": wall,
            "commit_seconds": time.perf_counter() - committing,
            "redone": redone,
        }
    )
    return end


def _add_writes(books: dict, results: list[dict]) -> None:
    """The writers' rows and seconds into the group's books, as the stage ``sinks``.
    They come from the results Ray delivered, one per written block."""
    for res in results:
        for row in (
            books["stages"].setdefault("sinks", {}),
            books["nodes"].setdefault(res["node"], {}).setdefault("sinks", {}),
        ):
            row["rows_in"] = row.get("rows_in", 0) + res["rows"]
            row["seconds"] = row.get("seconds", 0.0) + res["seconds"]
