"""Runs that the keeper of a local Ray drives for the command that asks it to.

Ray gives every job worker processes of its own. A command that joins a kept Ray as a
driver of its own therefore still waits for new workers to start and to import Ray Data,
the plugins and Numba (about 1.3 s on 2 cores), after importing Ray, Ray Data and the
plugins itself (about 0.7 s): most of a small run. The keeper (``local_ray``) has all of
that done once, in its own job, whose workers outlive commands. So a command that would
join the kept Ray sends the run to the keeper instead, over a Unix socket in the runtime
directory, together with its standard output and error: the run prints to the
command's terminal as its own would, and the command exits with the run's exit code.
Ctrl-C (or SIGTERM, SIGHUP) on the command interrupts the run in the keeper.

The command runs the spec itself, joining or starting a Ray as before, where the keeper
cannot stand in for it:

- ``HPCPREP_KEEPER_RUNS=0`` is set;
- the kept Ray is not the one the command would start (``local_ray.wanted_key``);
- the spec names a cluster, or a CPU count other than the kept Ray's (the keeper says so);
- another command's run is in the keeper now;
- a file the keeper or its workers imported changed on disk since (a plugin edited or
  upgraded; ``worker_code``): an idle keeper is then replaced, so the next command gets
  the new code and a keeper again;
- a run in the keeper was interrupted or failed unexpectedly: that keeper drives no more
  runs (its Ray is still joined as before), since such a run may leave state behind in it.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import signal
import socket
import sys
import traceback
from pathlib import Path

from . import local_ray, reaper, worker_code

#: ``HPCPREP_KEEPER_RUNS=0``: the command drives its run itself even where the keeper could.
OFF = "HPCPREP_KEEPER_RUNS"
SOCKET = "local-ray.sock"
#: Modules the keeper and its workers have imported, with their files' times and sizes (see ``_stale``).
CODE = "local-ray.code.json"
#: Followed by the keeper's pid: the folder of its workers' notes (``worker_code``).
WORKER_CODE = "local-ray.worker-code."
NOT_READY = "(not ready)"
#: Held by the command whose run the keeper drives: one such run at a time.
DRIVER_LOCK = "local-ray.driver.lock"
#: Variables that may differ between the command and the keeper (``local_ray._VOLATILE_ENV``)
#: and that change how a run prints.
_TERMINAL_ENV = ("TERM", "COLUMNS", "LINES", "NO_COLOR")
#: The signal a command sends the keeper to interrupt the run it drives for it.
INTERRUPT = signal.SIGUSR1


# --- the command's side -----------------------------------------------------------------


def delegate(params: dict, keep: float, say=lambda msg: None) -> int | None:
    """Have the kept Ray's keeper run ``params`` (``cli.run_and_report``'s arguments);
    its exit code, or None where this command must run the spec itself."""
    if os.environ.get(OFF) == "0" or not (local_ray.state_path() / SOCKET).exists():
        return None
    try:
        d = local_ray.state_dir()  # (checks that it is private)
    except (OSError, RuntimeError):
        return None
    driver = os.open(d / DRIVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(driver, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(driver)
        return None
    try:
        kept = _claim(d, keep, say)
        if kept is None:
            return None
        try:
            return _ask(d, kept, params)
        finally:
            kept.release()
    finally:
        os.close(driver)


def _claim(d: Path, keep: float, say) -> local_ray.Kept | None:
    """The kept Ray, marked in use, where its keeper can drive this command's run."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # as the command's own path sets it, before its key
    with local_ray._locked(d / "local-ray.lock"):
        info = local_ray._read_state(d)
        if info is None or info["key"] != local_ray.wanted_key(os.cpu_count()):
            return None  # the command's own path replaces it or starts one (``local_ray.join``)
        changed = _stale(d, info["pid"])
        if changed and changed != NOT_READY:  # (one not ready yet imports the files as they are now)
            if not local_ray._busy(d):
                say(f"{changed} changed since the local Ray's keeper or its workers imported it; replacing the keeper")
                local_ray._terminate(info["pid"], 30.0)
            return None
        fd = os.open(d / "local-ray.use", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        local_ray._mark_use(fd, keep)
    return local_ray.Kept(info["address"], info["pid"], False, fd, keep)


def _stale(d: Path, keeper: int) -> str | None:
    """A file among those the keeper or its workers imported that is not as it was then,
    ``NOT_READY`` while the keeper has not readied itself (``Host.prepare``), else None."""
    try:
        code = json.loads((d / CODE).read_text())
    except (OSError, ValueError):
        return NOT_READY
    if code.get("pid") != keeper:
        return NOT_READY
    for path, mtime, size in code["files"]:
        try:
            st = os.stat(path)
        except OSError:
            return path
        if st.st_mtime_ns != mtime or st.st_size != size:
            return path
    return None


def _ask(d: Path, kept: local_ray.Kept, params: dict) -> int | None:
    request = {
        "params": {**params, "keep": kept._keep},
        "cwd": os.getcwd(),
        "umask": _umask(),
        "env": {k: os.environ[k] for k in _TERMINAL_ENV if k in os.environ},
    }
    interrupts = []

    def forward(signum, _frame):
        interrupts.append(signum)
        if len(interrupts) >= 3:  # the keeper does not answer: leave it to its run
            raise SystemExit(128 + signum)
        try:
            os.kill(kept.keeper_pid, INTERRUPT)
        except ProcessLookupError:
            pass

    before = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            try:
                conn.connect(str(d / SOCKET))
                sys.stdout.flush()
                sys.stderr.flush()
                socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], [1, 2])
            except OSError:
                return None
            with conn.makefile("rb") as replies:
                reply = replies.readline()
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    if not reply:
        print(
            "error: the local Ray's keeper ended during the run; see "
            f"{d / 'local-ray.log'} (hpcprep run --resume goes on from the last committed group)",
            file=sys.stderr,
        )
        return 1
    answer = json.loads(reply)
    if "decline" in answer:
        return None
    return int(answer["exit"])


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- the keeper's side ------------------------------------------------------------------


class Host:
    """The keeper's server: ``listen``, then ``serve`` each time the socket is readable."""

    def __init__(self, d: Path, num_cpus: int):
        self.d, self.num_cpus = d, num_cpus
        self.server: socket.socket | None = None
        self.prepared = False
        self.running = False
        self.cancelled = False  # interrupted before its run began
        self.code: dict[str, tuple[int, int]] = {}  # see note_code
        self.notes = worker_code.Notes(d / f"{WORKER_CODE}{os.getpid()}")

    def workers_runtime_env(self) -> dict:
        """The ``runtime_env`` of the keeper's job: its workers note what they import."""
        for old in self.d.glob(f"{WORKER_CODE}*"):  # of keepers that were killed
            pid = old.name[len(WORKER_CODE) :]
            if pid.isdigit() and not reaper.alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        self.notes.folder.mkdir(mode=0o700, exist_ok=True)
        return worker_code.runtime_env(self.notes.folder)

    def listen(self) -> socket.socket:
        path = self.d / SOCKET
        path.unlink(missing_ok=True)  # a socket of a keeper that died (only one keeper runs per directory)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        signal.signal(INTERRUPT, self._interrupt)
        return self.server

    def close(self) -> None:
        """Drive no more runs (the kept Ray stays for commands that join it)."""
        if self.server is not None:
            self.server.close()
            self.server = None
            (self.d / SOCKET).unlink(missing_ok=True)
            (self.d / CODE).unlink(missing_ok=True)
        shutil.rmtree(self.notes.folder, ignore_errors=True)

    def _interrupt(self, _signum, _frame):
        if self.running:
            raise KeyboardInterrupt
        self.cancelled = True

    def prepare(self) -> None:
        """Import what runs need, in the keeper and in one warm worker per CPU; then note
        the files imported (``_stale``). A keeper that cannot drives no runs."""
        if self.prepared:
            return
        self.prepared = True
        try:
            import ray

            from . import cli, runner, warm_workers  # noqa: F401
            from .plugins import PluginRegistry

            registry = PluginRegistry()
            modules = {
                e.cls.__module__
                for e in registry.stages.values()
                if registry.plugins[e.plugin].distribution != "hpcprep"
            }
            refs = [warm_workers.start(sorted(modules), hold=0.5) for _ in range(self.num_cpus)]
            ray.wait(refs, num_returns=len(refs), timeout=warm_workers.WAIT_SECONDS)
            self.note_code()
        except Exception:
            traceback.print_exc()
            self.close()

    def note_code(self) -> None:
        """Publish the files of the modules imported here and in the workers. A file keeps
        the time and size it had when first noted, soon after its import (here: in
        ``prepare``, or at the end of the run that imported it; a worker notes it as it
        imports it): noting it again later would take in an edit made since."""
        for path, mtime, size in self.notes.read():
            self.code.setdefault(path, (mtime, size))
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and path not in self.code:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                self.code[path] = (st.st_mtime_ns, st.st_size)
        tmp = self.d / f"{CODE}.{os.getpid()}"
        files = [(path, mtime, size) for path, (mtime, size) in self.code.items()]
        tmp.write_text(json.dumps({"pid": os.getpid(), "files": files}))
        os.replace(tmp, self.d / CODE)

    def serve(self) -> None:
        """Take one command's request and drive its run."""
        conn, _ = self.server.accept()
        self.cancelled = False
        with conn:
            fds: list[int] = []
            try:
                data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 2)
                while data and not data.endswith(b"\n"):
                    data += conn.recv(1 << 20) or b"\n"  # (a command gone mid-request sends nothing more)
                request = json.loads(data)
                self.prepare()
                if self.server is None or request["cwd"] != os.getcwd() or len(fds) != 2:
                    answer = {"decline": "this keeper drives no runs for it"}
                else:
                    answer, reusable = self._drive(request, fds)
                    # before the answer, which the command's next step may follow at once
                    if reusable:
                        self.note_code()  # (an edit made after the answer is then seen as one)
                    else:
                        self.close()
                conn.sendall(json.dumps(answer).encode() + b"\n")
            except (OSError, ValueError, KeyError):
                pass  # the command went away or sent something else; it runs the spec itself
            finally:
                for fd in fds:
                    os.close(fd)

    def _drive(self, request: dict, fds: list[int]) -> tuple[dict, bool]:
        """Run the request with the command's output and terminal; (the answer: its exit
        code or a decline, whether this keeper may drive another run)."""
        from . import cli, ray_connection
        from .plugins import PluginRegistry

        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        streams = sys.stdout, sys.stderr
        env = {k: os.environ.get(k) for k in _TERMINAL_ENV}
        mask = os.umask(request["umask"])
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        sys.stdout = _text(1, line_buffering=os.isatty(1))
        sys.stderr = _text(2, line_buffering=True)
        for k in _TERMINAL_ENV:
            os.environ.pop(k, None)
        os.environ.update(request["env"])
        ray_connection.HOSTED = ray_connection.Hosted(self.num_cpus)
        self.running = True
        reusable = True
        try:
            if self.cancelled:  # (nothing of the run began)
                print("Aborted!", file=sys.stderr)
                answer = {"exit": 1}
            else:
                answer = {"exit": cli.run_and_report(registry=PluginRegistry(), **request["params"])}
        except ray_connection.NotHosted as exc:
            answer = {"decline": str(exc)}
        except KeyboardInterrupt:
            print("Aborted!", file=sys.stderr)
            answer, reusable = {"exit": 1}, False
        except BaseException:
            traceback.print_exc()
            answer, reusable = {"exit": 1}, False
        finally:
            self.running = False
            ray_connection.HOSTED = None
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except OSError:
                    pass  # the command's terminal is gone
            sys.stdout, sys.stderr = streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            os.umask(mask)
            for k, v in env.items():
                os.environ.pop(k, None)
                if v is not None:
                    os.environ[k] = v
        return answer, reusable


def _text(fd: int, line_buffering: bool) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=line_buffering
    )
