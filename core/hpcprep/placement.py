"""Device placement: where and how each encoder runs, and why.

The ``hpcprep_place`` hook asks every plugin in turn; the first non-None answer
wins and the default policy below answers last. The spec's ``placement`` table for
a stage then overrides single fields, and the reason records that it did.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Literal

from pydantic import ConfigDict, Field

from .hookspecs import hookimpl
from .stages import StrictScalars


@dataclass(frozen=True)
class ClusterInfo:
    """What the Ray cluster offers, as the placement policy sees it."""

    cpus: float
    gpus: float = 0.0
    nodes: int = 1
    resources: dict = field(default_factory=dict)
    address: str | None = None
    #: The live nodes: ``{"node_id", "address", "hostname", "cpus", "gpus"}`` each.
    node_list: tuple = ()

    @classmethod
    def from_ray(cls, address: str | None = None) -> ClusterInfo:
        import ray

        res = ray.cluster_resources()
        live = [n for n in ray.nodes() if n.get("Alive")]
        return cls(
            cpus=float(res.get("CPU", 0.0)),
            gpus=float(res.get("GPU", 0.0)),
            nodes=len(live),
            resources={k: v for k, v in res.items() if not k.startswith("node:")},
            address=address,
            node_list=tuple(
                {
                    "node_id": n["NodeID"],
                    "address": n.get("NodeManagerAddress", ""),
                    "hostname": n.get("NodeManagerHostname", ""),
                    "cpus": float(n.get("Resources", {}).get("CPU", 0.0)),
                    "gpus": float(n.get("Resources", {}).get("GPU", 0.0)),
                }
                for n in live
            ),
        )

    @classmethod
    def local(cls, num_cpus: int | None = None, num_gpus: float = 0.0) -> ClusterInfo:
        """The machine itself, as a local Ray started by the runner would see it."""
        cpus = float(num_cpus or os.cpu_count() or 1)
        return cls(cpus=cpus, gpus=num_gpus, nodes=1, resources={"CPU": cpus}, address=None)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Placement:
    """How an encoder stage runs on the cluster."""

    compute: Literal["tasks", "actors"] = "tasks"
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    #: Number of actors (actors) or maximum concurrent tasks (tasks); None lets Ray choose.
    concurrency: int | None = None
    #: Most rows per ``encode`` call.
    batch_size: int = 1024
    #: Gather rows from several blocks into full batches before encoding. GPUs want
    #: full batches; without it the encoder runs inside the read tasks (Ray fuses
    #: them), which saves a pass through the object store.
    coalesce: bool = False
    variant: str = "cpu"
    reason: str = ""
    decided_by: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def unsatisfiable(placement: Placement, cluster: ClusterInfo) -> str | None:
    """Why the cluster can never run ``placement`` (Ray would wait for it forever), or None."""
    nodes = cluster.node_list or ({"cpus": cluster.cpus, "gpus": cluster.gpus},)
    unit = "actor" if placement.compute == "actors" else "task"
    for resource, asked in (("gpus", placement.num_gpus), ("cpus", placement.num_cpus)):
        most = max(float(n[resource]) for n in nodes)
        if asked > most:
            name = resource[:-1].upper()
            has = f"no {name}" if most == 0 else f"at most {most:g} {name}(s) on a node"
            return f"asks for {asked:g} {name}(s) per {unit}, but the cluster has {has}"
    if placement.compute == "actors" and placement.concurrency:
        for resource, asked in (("gpus", placement.num_gpus), ("cpus", placement.num_cpus)):
            total = getattr(cluster, resource)
            if asked * placement.concurrency > total:
                name = resource[:-1].upper()
                return (
                    f"asks for {placement.concurrency} actors of {asked:g} {name}(s) each, "
                    f"but the cluster has {total:g} {name}(s) in all"
                )
    return None


class PlacementOverride(StrictScalars):
    """Fields of a stage's ``placement`` table in the spec; any subset may be given."""

    model_config = ConfigDict(extra="forbid")

    compute: Literal["tasks", "actors"] | None = Field(None, description="tasks or actors")
    num_cpus: float | None = Field(None, ge=0, description="CPUs per task or actor")
    num_gpus: float | None = Field(None, ge=0, description="GPUs per task or actor (fractions allowed)")
    concurrency: int | None = Field(None, ge=1, description="actors, or concurrent tasks")
    batch_size: int | None = Field(None, ge=1, description="most rows per encode call")
    coalesce: bool | None = Field(None, description="gather full batches across blocks (GPU stages)")
    variant: str | None = Field(None, description="kernel variant, e.g. cpu or cuda")


def apply_override(placement: Placement, override: PlacementOverride | None, stage) -> Placement:
    if override is None:
        return placement
    given = override.model_dump(exclude_none=True)
    if not given:
        return placement
    if "variant" in given and given["variant"] not in stage.variants:
        raise ValueError(
            f"placement.variant {given['variant']!r} is not one of the stage's variants {list(stage.variants)}"
        )
    if given.get("compute") == "tasks" and placement.compute == "actors" and "concurrency" not in given:
        # An actor count is not a cap on tasks: let Ray run as many tasks as fit.
        given["concurrency"] = None
    if given.get("variant") == "cuda" and "num_gpus" not in given and placement.num_gpus == 0:
        given["num_gpus"] = float(getattr(stage, "gpu_share", 1.0))
    if given.get("variant") == "cpu" and "num_gpus" not in given:
        # The CPU variant holds no GPU: a GPU reserved for it would sit idle.
        given["num_gpus"] = 0.0
    note = "overridden by spec: " + ", ".join(f"{k}={v}" for k, v in given.items())
    reason = f"{placement.reason}; {note}" if placement.reason else note
    return replace(placement, **given, reason=reason)


def _on_gpus(stage, cluster: ClusterInfo, share: float) -> Placement:
    """Actors of the CUDA variant: ``1 / share`` per GPU, each with one CPU to feed it, and
    never so many that nothing is left for the reads and the CPU stages."""
    wanted = max(1, int(cluster.gpus / share + 1e-9))
    cpu_cap = max(1, int(cluster.cpus) - 1)
    actors = min(wanted, cpu_cap)
    reason = f"has a CUDA variant and the cluster has {cluster.gpus:g} GPU(s): "
    if share < 1:
        reason += f"{actors} actor(s) of {share:g} GPU each ({int(1 / share + 1e-9)} can share a GPU)"
    else:
        reason += f"{actors} actor(s) of one GPU each"
    if actors < wanted:
        reason += f", {wanted} would fit the GPUs but the cluster's {cluster.cpus:g} CPUs leave room for {actors}"
    return Placement(
        compute="actors",
        num_cpus=1.0,
        num_gpus=share,
        concurrency=actors,
        batch_size=getattr(stage, "gpu_batch_size", None) or stage.batch_size,
        coalesce=True,
        variant="cuda",
        reason=reason,
        decided_by="hpcprep (default policy)",
    )


class DefaultPlacementPolicy:
    """The core's policy; it always answers, and it answers last."""

    @hookimpl(trylast=True)
    def hpcprep_place(self, stage, cluster: ClusterInfo):
        batch_size = stage.batch_size
        share = float(getattr(stage, "gpu_share", 1.0))
        if "cuda" in stage.variants and cluster.gpus >= share:
            return _on_gpus(stage, cluster, share)
        gpu_note = ""
        if "cuda" in stage.variants:
            gpu_note = "has a CUDA variant but the cluster has no GPU, so its CPU variant; "
        if stage.needs_setup:
            actors = max(1, int(cluster.cpus))
            return Placement(
                compute="actors",
                num_cpus=1.0,
                concurrency=actors,
                batch_size=batch_size,
                variant="cpu",
                reason=gpu_note + f"needs setup (models, compiled kernels or files), so "
                f"{actors} actor(s) that set up once, one per CPU",
                decided_by="hpcprep (default policy)",
            )
        return Placement(
            compute="tasks",
            num_cpus=1.0,
            batch_size=batch_size,
            variant="cpu",
            reason=gpu_note + "stateless CPU stage: Ray tasks, one CPU each",
            decided_by="hpcprep (default policy)",
        )


def decide_placements(resolved, registry, cluster: ClusterInfo) -> list[Placement]:
    """Each encoder's placement (``resolved``: a ``ResolvedSpec``; ``registry``: the
    ``PluginRegistry`` whose ``hpcprep_place`` hooks answer first); a spec asking for what the cluster cannot give is refused
    here, with the reason, rather than left waiting for resources that never come."""
    from .spec import SpecError  # spec.py imports this module for PlacementOverride

    out, problems = [], []
    for cs in resolved.encoders:
        placement = registry.place(cs.stage, cluster)
        if placement is None:  # only if someone unregistered the default policy
            placement = Placement(batch_size=cs.stage.batch_size, reason="no policy answered")
        try:
            placement = apply_override(placement, cs.placement, cs.stage)
        except ValueError as exc:
            problems.append(f"{cs.where} ({cs.name}): {exc}")
            continue
        why = unsatisfiable(placement, cluster)
        if why:
            problems.append(f"{cs.where} ({cs.name}): placement {why}")
        out.append(placement)
    if problems:
        raise SpecError(problems, resolved.source)
    return out


def fuse_cpu_runs(placements: list[Placement]) -> list[tuple[list[int], Placement]]:
    """Group consecutive CPU encoders into one pool each: ``[(stage indices, pool placement)]``.

    Each actor stage on its own would ask for one actor per CPU, so a pipeline of several
    such stages asks for more CPUs than a small cluster has, and Ray waits forever for
    actors that cannot start. Run one after another in the same worker, consecutive CPU
    stages need one pool and no object-store hop between them. The pool is actors if any
    of them needs setup, with the largest ``num_cpus`` and ``concurrency`` among them;
    stages on GPUs or that coalesce batches keep pools of their own.
    """
    segments: list[tuple[list[int], Placement]] = []
    run: list[int] = []

    def close():
        if run:
            members = [placements[i] for i in run]
            actors = any(p.compute == "actors" for p in members)
            counts = [p.concurrency for p in members if p.concurrency]
            pool = replace(
                members[0],
                compute="actors" if actors else "tasks",
                num_cpus=max(p.num_cpus for p in members),
                concurrency=max(counts) if counts else None,
            )
            segments.append((list(run), pool))
            run.clear()

    for i, p in enumerate(placements):
        if p.num_gpus or p.coalesce:
            close()
            segments.append(([i], p))
        else:
            run.append(i)
    close()
    return segments


def reads_in_actors(placements: list[Placement]) -> bool:
    """Whether the read runs inside actors: Ray Data fuses the read tasks into a first
    pool of CPU actors, so such a run starts no task at all."""
    pools = fuse_cpu_runs(placements)
    return bool(pools) and pools[0][1].compute == "actors" and not pools[0][1].num_gpus
