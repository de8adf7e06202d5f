"""The local Ray of ``hpcprep run``, and the keeper that lets it outlive a command.

Starting a local Ray costs 2-3 s on a small machine and stopping it another 0.5 s:
most of a command that has a few seconds of work to do. So unless told otherwise
(``--keep-ray 0``), ``hpcprep run`` without an address starts Ray in a small keeper
process that outlives the command, and the next commands hand their runs to the keeper,
which drives them in workers that stay warm (``hosted_runs``; where it cannot, a command
joins the kept Ray as a driver of its own). The keeper stops
Ray once no run has used it for the last run's ``keep`` seconds, when told to
(``hpcprep local-ray stop``), or when it is killed: the reaper then stops Ray's
processes, as it does for a run's own Ray.

A kept Ray is joined only where it is the Ray the command would have started: same
Python, Ray and hpcprep, same CPU count, working directory and environment (Ray's
workers take the last two from the process that started Ray, not from the driver that
joins it). Otherwise an idle kept Ray is replaced; a busy one is left to its run and
the command starts a Ray of its own, stopped when it ends.

How Ray is started and stopped in a process (the command's own Ray, or the keeper's) is
``ray_start``'s; this module decides which Ray a command uses and keeps it.

Files, in a directory only this user can read (``$HPCPREP_RUNTIME_DIR``, else
``$TMPDIR/hpcprep-UID``):

- ``local-ray.json``: how to join (address, token) and who keeps it (pid, key);
- ``local-ray.lock``: held while a command joins or starts a keeper, and while the
  keeper decides to stop, so neither races the other;
- ``local-ray.use``: every run holds a shared lock on it while it runs; its time of
  change is the last use and it holds the seconds to keep Ray after that.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .ray_start import shutdown_ray, start_local_ray

DEFAULT_KEEP_SECONDS = 300.0
START_TIMEOUT = 120.0
# Variables that differ between two shells of the same user without changing what a
# worker does; any other difference means a kept Ray is not the one this command wants.
_VOLATILE_ENV = {
    "_", "PWD", "OLDPWD", "SHLVL", "COLUMNS", "LINES", "PS1", "PS2", "PROMPT_COMMAND",
    "TERM", "COLORTERM", "TERM_PROGRAM", "TERM_PROGRAM_VERSION", "WINDOWID", "TMUX_PANE",
    "SSH_TTY", "SSH_CLIENT", "SSH_CONNECTION", "SSH_AUTH_SOCK", "HPCPREP_KEEP_RAY",
    "RAY_AUTH_MODE", "RAY_AUTH_TOKEN",  # set by joining; the keeper's own mode is in its state
    "RAY_CLIENT_MODE",  # set by importing Ray, which a command may not have done yet
    "HPCPREP_KEEPER_RUNS",  # read by the command only (hosted_runs)
}  # fmt: skip


def keep_seconds(option: float | None) -> float:
    """Seconds to keep a local Ray after a run: the option, else ``HPCPREP_KEEP_RAY``, else 300."""
    if option is not None:
        return max(0.0, float(option))
    raw = os.environ.get("HPCPREP_KEEP_RAY", "").strip()
    if not raw:
        return DEFAULT_KEEP_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        raise ValueError(f"HPCPREP_KEEP_RAY={raw!r} is not a number of seconds") from None


def state_path() -> Path:
    """The runtime directory, which may not exist yet."""
    return Path(os.environ.get("HPCPREP_RUNTIME_DIR") or Path(tempfile.gettempdir()) / f"hpcprep-{os.getuid()}")


def state_dir() -> Path:
    d = state_path()
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    if d.stat().st_uid != os.getuid() or d.stat().st_mode & 0o077:
        raise RuntimeError(f"{d} must belong to you and be private (mode 700) to keep a local Ray in it")
    return d


def wanted_key(num_cpus: int) -> str:
    """What a kept Ray must match to stand in for the Ray this command would start."""
    from importlib.metadata import version

    from . import __version__

    env = {k: v for k, v in os.environ.items() if k not in _VOLATILE_ENV and not k.startswith("PYTEST_")}
    what = {
        "python": sys.executable,
        "ray": version("ray"),  # (importing Ray for it would cost a command 0.3 s)
        "hpcprep": __version__,
        "cpus": num_cpus,
        "cwd": os.getcwd(),
        "env": sorted(env.items()),
    }
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]


@dataclass
class Kept:
    """A kept local Ray this command has joined; ``release()`` when the run ends."""

    address: str
    keeper_pid: int
    started_now: bool
    _use_fd: int
    _keep: float

    def release(self) -> None:
        if self._use_fd < 0:
            return
        _mark_use(self._use_fd, self._keep)
        os.close(self._use_fd)  # drops the shared lock
        self._use_fd = -1


def join(num_cpus: int, keep: float, log=lambda msg: None) -> Kept | None:
    """Join the kept local Ray, starting a keeper if there is none; None where this
    command should start a Ray of its own (a kept Ray that differs is busy)."""
    d = state_dir()
    key = wanted_key(num_cpus)
    with _locked(d / "local-ray.lock"):
        info = _read_state(d)
        started_now = False
        if info and info["key"] != key:
            if not _stop_if_idle(d, info):
                log(
                    "the local Ray kept by an earlier command differs from this one's and is busy; starting one for this run"
                )
                return None
            log(
                "the local Ray kept by an earlier command was started elsewhere (environment, directory or version differ); replacing it"
            )
            info = None
        if info is None:
            info = _start_keeper(d, num_cpus, key)
            started_now = True
        fd = os.open(d / "local-ray.use", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _mark_use(fd, keep)
    if info.get("token"):
        _use_token(info["token"])
    return Kept(info["address"], info["pid"], started_now, fd, keep)


def _use_token(token: str) -> None:
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = token
    if "ray" in sys.modules:
        # Ray reads the mode and the token once; a driver that imported it already must
        # have it read them again (as Ray does itself when it turns token mode on).
        from ray._raylet import AuthenticationTokenLoader, Config

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()


def status() -> dict | None:
    """The kept local Ray, or None."""
    d = state_dir()
    with _locked(d / "local-ray.lock"):
        info = _read_state(d)
    if info is None:
        return None
    use = d / "local-ray.use"
    info = {k: v for k, v in info.items() if k != "token"}
    info["idle_seconds"] = round(time.time() - use.stat().st_mtime, 1) if use.exists() else None
    info["in_use"] = _busy(d)
    info["runs_commands"] = (d / "local-ray.sock").exists()  # (see hosted_runs)
    return info


def stop(wait: float = 30.0) -> int | None:
    """Stop the kept local Ray (runs on it fail); the keeper's pid, or None if there was none."""
    d = state_dir()
    with _locked(d / "local-ray.lock"):
        info = _read_state(d)
        if info is None:
            return None
        _terminate(info["pid"], wait)
    return info["pid"]


# --- the keeper process ---------------------------------------------------------------


def keep_ray(d: Path, num_cpus: int, key: str) -> None:
    """Body of the keeper: start Ray, publish how to join it, stop it when idle."""
    import select

    import ray

    from . import reaper
    from .hosted_runs import Host

    host = Host(d, num_cpus)
    stopping = []

    def stop(*_):
        stopping.append(True)
        if host.running:
            raise KeyboardInterrupt  # ends the run it drives; that command reports it

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    token = os.environ.get("RAY_AUTH_TOKEN") if os.environ.get("RAY_AUTH_MODE") == "token" else None
    watcher = start_local_ray(num_cpus, host.workers_runtime_env())
    # Ray's own processes (GCS, raylet, its monitors): if one dies, this Ray is no use.
    ray_roots = reaper.children_of(os.getpid()) - {watcher.pid if watcher else -1}
    state = d / "local-ray.json"
    try:
        info = {
            "address": ray.get_runtime_context().gcs_address,
            "token": token,
            "pid": os.getpid(),
            "key": key,
            "cpus": num_cpus,
            "started": time.time(),
        }
        tmp = d / f"local-ray.json.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.replace(tmp, state)
        server = host.listen()
        while not stopping:
            if host.server is not None and select.select([server], [], [], 1.0)[0]:
                host.serve()
                continue
            if host.server is None:
                time.sleep(1.0)
            elif not host.prepared and not _busy(d):
                host.prepare()  # once the command that started this keeper is done with the machine
            if not all(reaper.alive(p) for p in ray_roots):
                print(
                    f"a process of the kept Ray ended ({sorted(p for p in ray_roots if not reaper.alive(p))}); stopping it"
                )
                break
            if _idle_long_enough(d):
                with _locked(d / "local-ray.lock"):
                    if _idle_long_enough(d) and not _busy(d):
                        # unpublished before the lock goes, so no command joins a Ray that is stopping
                        _unpublish(state)
                        break
    finally:
        # Told to stop (SIGTERM): whoever told us holds the lock and waits for this
        # process to end, so taking the lock here would only deadlock.
        host.close()
        _unpublish(state)
        shutdown_ray()
        if watcher is not None:
            watcher.terminate()


def _unpublish(state: Path) -> None:
    try:
        if json.loads(state.read_text())["pid"] == os.getpid():
            state.unlink()
    except (OSError, ValueError, KeyError):
        pass


def _idle_long_enough(d: Path) -> bool:
    use = d / "local-ray.use"
    try:
        keep = float(use.read_text().strip() or 0)
        return time.time() - use.stat().st_mtime > keep
    except (OSError, ValueError):
        return True


# --- helpers ----------------------------------------------------------------------------


class _locked:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        os.close(self.fd)


def _mark_use(fd: int, keep: float) -> None:
    """Record a use now, with the seconds to keep Ray after it."""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{keep:g}\n".encode(), 0)
    os.utime(fd)


def _busy(d: Path) -> bool:
    """Whether some run holds the kept Ray now."""
    fd = os.open(d / "local-ray.use", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _keeper_alive(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"hpcprep.local_ray" in cmd


def _read_state(d: Path, check_alive: bool = True) -> dict | None:
    try:
        info = json.loads((d / "local-ray.json").read_text())
    except (OSError, ValueError):
        return None
    if check_alive and not _keeper_alive(info.get("pid", -1)):
        (d / "local-ray.json").unlink(missing_ok=True)  # its keeper died; the reaper stopped its Ray
        return None
    return info


def _stop_if_idle(d: Path, info: dict) -> bool:
    if _busy(d):
        return False
    _terminate(info["pid"], 30.0)
    return True


def _terminate(pid: int, wait: float) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + wait
    while _keeper_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _keeper_alive(pid):
        os.kill(pid, signal.SIGKILL)  # its reaper stops Ray's processes


def _start_keeper(d: Path, num_cpus: int, key: str) -> dict:
    (d / "local-ray.json").unlink(missing_ok=True)
    env = dict(os.environ)
    if env.get("RAY_AUTH_MODE", "").lower() != "disabled":
        # A token of its own, set before Ray is imported there: Ray reads the mode once.
        env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    log = open(d / "local-ray.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcprep.local_ray", str(d), str(num_cpus), key],
        env=env,
        start_new_session=True,  # Ctrl-C on this command does not reach it
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        info = _read_state(d, check_alive=False)
        if info and info["pid"] == proc.pid:
            return info
        if proc.poll() is not None:
            raise RuntimeError(f"the local Ray did not start (exit {proc.returncode}); see {d / 'local-ray.log'}")
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"the local Ray did not start within {START_TIMEOUT:.0f} s; see {d / 'local-ray.log'}")


if __name__ == "__main__":
    keep_ray(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
