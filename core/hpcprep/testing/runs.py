"""``interrupted_run``: a run cut off after some commit groups, for tests of ``--resume``."""

from __future__ import annotations


def interrupted_run(spec, groups: int = 1, **kwargs):
    """Run ``spec`` as ``hpcprep.run`` does (the same keyword arguments) but stop after
    ``groups`` commit groups, as an interruption would: those groups are committed and
    the rest is not, so ``hpcprep.run(spec, resume=True)`` carries on from there. Returns
    the ``RunResult`` of what ran."""
    from ..runner import _run

    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    return _run(spec, stop_after_groups=groups, **kwargs)
