"""How a command's driver gets its Ray: a cluster by address, the local Ray an earlier command kept
(``local_ray``), or a local Ray of its own; and what to do once it disconnects."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import NamedTuple

from . import local_ray, ray_start


class Hosted(NamedTuple):
    """Set (as ``HOSTED``) while the keeper of a local Ray drives a command's run (``hosted_runs``)."""

    num_cpus: int


class NotHosted(Exception):
    """The run in the keeper needs a Ray other than the keeper's: the command runs it itself."""


#: The kept Ray this process keeps, while it drives a command's run; else None.
HOSTED: Hosted | None = None


class RayConnection(NamedTuple):
    connected: bool  # this run connected to Ray (and disconnects at its end)
    after: Callable[[], None] | None  # to call once disconnected
    kept: bool = False  # a local Ray kept for the next command (one command at a time)


def start_ray(address: str | None, num_cpus: int | None, keep_ray: float = 0.0, say=lambda msg: None):
    """Join ``address``, or the local Ray kept by an earlier command (``keep_ray`` > 0,
    see ``local_ray``), or start a local Ray sized for the machine."""
    import ray

    if HOSTED is not None:
        if address:
            raise NotHosted(f"the spec names a cluster ({address})")
        if (num_cpus or os.cpu_count()) != HOSTED.num_cpus:
            raise NotHosted(f"the spec asks for {num_cpus} CPUs; the kept Ray has {HOSTED.num_cpus}")
        say(
            f"run by the keeper of the local Ray (its workers are warm); kept {keep_ray:g} s after the run "
            "for the next command (hpcprep local-ray stop)"
        )
        return RayConnection(False, None, kept=True)
    if ray.is_initialized():
        return RayConnection(False, None)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address:
        ray.init(address=address, log_to_driver=False)
        return RayConnection(True, None)
    if keep_ray > 0:
        try:
            kept = local_ray.join(num_cpus or os.cpu_count(), keep_ray, say)
        except (OSError, RuntimeError) as exc:
            say(f"cannot keep a local Ray ({exc}); starting one for this run")
            kept = None
        if kept is not None:
            try:
                ray.init(address=kept.address, log_to_driver=False)
            except BaseException:
                kept.release()
                raise
            say(
                ("started a local Ray" if kept.started_now else "joined the local Ray kept by an earlier command")
                + f"; kept {keep_ray:g} s after the run for the next one (hpcprep local-ray stop)"
            )
            return RayConnection(True, kept.release, kept=True)
    watcher = ray_start.start_local_ray(num_cpus)
    return RayConnection(True, None if watcher is None else watcher.terminate)
