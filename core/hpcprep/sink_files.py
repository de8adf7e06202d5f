"""Bookkeeping for sinks that write files: which files belong to which commit group and attempt.

A run writes in commit groups; a run that was cut off leaves files of its unfinished group
behind, and Ray may retry a write task whose worker died, leaving a file no result names.
A sink that names every file it writes with :meth:`GroupFiles.name` (``part-g<group>-
<attempt>-<unique><suffix>``) can then keep exactly the committed ones:

- ``discard_group`` (driver, before and after a group runs, and at the end):
  :meth:`GroupFiles.discard_other_attempts` removes the group's files of every attempt
  but this run's;
- ``commit`` (driver, with the writers' results): :meth:`GroupFiles.keep_only` removes this
  attempt's files of the group that no writer reported.

Only files named this way are ever removed, so nothing hpcprep did not write is touched.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

import pyarrow.fs as pafs

from .errors_table import group_prefix, parse_name
from .stages import SinkContext


class GroupFiles:
    """The files of one sink under ``root`` on ``fs`` (local or S3, see ``hpcprep.storage.filesystem_for``)."""

    def __init__(self, fs: pafs.FileSystem, root: str):
        self.fs = fs
        self.root = root.rstrip("/")

    @staticmethod
    def name(ctx: SinkContext, suffix: str) -> str:
        """A new file name for a writer of ``ctx.group`` in this attempt, e.g. ``part-g00003-<attempt>-<hex>.jsonl``."""
        return f"part-{group_prefix(ctx.group)}{ctx.attempt}-{uuid.uuid4().hex}{suffix}"

    def discard_other_attempts(self, ctx: SinkContext) -> int:
        """Remove the group's files written by any attempt but ``ctx.attempt``; returns how many."""
        return self._remove(ctx, lambda path, attempt: attempt != ctx.attempt)

    def keep_only(self, ctx: SinkContext, kept: Iterable[str]) -> int:
        """Remove this attempt's files of the group whose paths are not in ``kept`` (writes that Ray
        retried); returns how many."""
        keep = set(kept)
        return self._remove(ctx, lambda path, attempt: attempt == ctx.attempt and path not in keep)

    def _remove(self, ctx: SinkContext, unwanted: Callable[[str, str], bool]) -> int:
        removed = 0
        selector = pafs.FileSelector(self.root, recursive=True, allow_not_found=True)
        for info in self.fs.get_file_info(selector):
            if info.type != pafs.FileType.File or not info.base_name.startswith("part-"):
                continue
            parsed = parse_name(info.base_name)
            if parsed and parsed[0] == ctx.group and unwanted(info.path, parsed[1]):
                self.fs.delete_file(info.path)
                removed += 1
        return removed
