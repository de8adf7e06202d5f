"""The files that the keeper's worker processes import, each noted with its time and size
when it is imported, for the keeper's check that the code it runs is still the code on
disk (``hosted_runs``).

The keeper's own imports are not enough: a stage may import a module only where it
encodes (inside ``encode``, or in ``setup`` on an actor), that is only in a worker, and
the keeper's workers outlive commands. So every worker of the keeper's job (Ray's
``worker_process_setup_hook``) puts a finder in front of ``sys.meta_path`` that appends a
line per file it finds, ``mtime_ns size path``, to a file of its own in ``DIR_ENV``'s
directory; the keeper reads these lines after each run (``Notes.read``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Where a worker writes its notes: set in the keeper's job's environment.
DIR_ENV = "HPCPREP_WORKER_CODE"
#: ``worker_process_setup_hook`` for the keeper's job.
HOOK = f"{__name__}.install"


def runtime_env(folder: Path) -> dict:
    """The job ``runtime_env`` under which workers note their imports in ``folder``."""
    return {"worker_process_setup_hook": HOOK, "env_vars": {DIR_ENV: str(folder)}}


class _Noting:
    """A finder that asks the finders after it and notes the file of what they find."""

    def __init__(self, fd: int):
        self.fd = fd

    def find_spec(self, name, path, target=None):
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                if spec.has_location and isinstance(spec.origin, str):
                    self.note(spec.origin)
                return spec
        return None

    def note(self, path: str) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        # one write per line on an O_APPEND descriptor: the keeper never reads half a line
        os.write(self.fd, f"{st.st_mtime_ns} {st.st_size} {path}\n".encode())


def install() -> None:
    """Note, in this worker, the files of the modules it has imported and of those it imports."""
    folder = os.environ.get(DIR_ENV)
    if not folder or any(isinstance(f, _Noting) for f in sys.meta_path):
        return
    try:
        fd = os.open(Path(folder) / str(os.getpid()), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return  # (the keeper is gone; a hook that raised would keep the worker from starting)
    noting = _Noting(fd)
    sys.meta_path.insert(0, noting)
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            noting.note(path)


class Notes:
    """The keeper's reader of its workers' notes, each file read from where it stopped."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.offsets: dict[str, int] = {}

    def read(self) -> list[tuple[str, int, int]]:
        """``(path, mtime_ns, size)`` of the files noted since the last call."""
        out = []
        try:
            names = os.listdir(self.folder)
        except OSError:
            return out
        for name in names:
            try:
                with open(self.folder / name, "rb") as f:
                    f.seek(self.offsets.get(name, 0))
                    data = f.read()
            except OSError:
                continue
            whole = data[: data.rfind(b"\n") + 1]  # a line being written is read next time
            self.offsets[name] = self.offsets.get(name, 0) + len(whole)
            for line in whole.decode(errors="surrogateescape").splitlines():
                mtime, size, path = line.split(" ", 2)
                out.append((path, int(mtime), int(size)))
        return out
