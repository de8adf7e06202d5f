"""The atheris entry point of one fuzz target, and the tools the runner needs around it.

    python -m tests.fuzz.harness TARGET [--found DIR] [libFuzzer flags and corpus dirs]
    python -m tests.fuzz.harness TARGET --replay FILE...
    python -m tests.fuzz.harness TARGET --minimize FILE --out FILE [--seconds S]

Fuzzing: the target's pure-Python modules are instrumented for coverage, the Numba
kernels are compiled once on the seeds, then libFuzzer drives the target. A property
violation or an unexpected exception does not stop the run: the input is written to
``--found`` (the smallest input per crash signature, with its traceback beside it) and
fuzzing goes on, so one run reports every distinct crash it meets. Hangs (``-timeout``),
memory blow-ups (``-rss_limit_mb``) and deadly signals are libFuzzer's to catch; they end
the process with an artifact, and ``run.py`` starts it again.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import time
import traceback
import types
from pathlib import Path

# Run as a module from the repository root: ``tests`` is a package there.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one fuzzer, one core: no kernel thread pools
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from tests.fuzz.targets import MAX_LEN, TARGETS, Target, signature  # noqa: E402

SEEDS = REPO / "tests" / "fuzz" / "seeds"
CRASHES = REPO / "tests" / "fuzz" / "crashes"


def instrument(modules: tuple[str, ...]) -> int:
    """Instrument every plain Python function and method defined in ``modules``.

    Function by function rather than ``atheris.instrument_imports``: those modules hold
    Numba kernels too, and Numba cannot compile bytecode that calls into atheris. A
    kernel is a Numba dispatcher, not a function, so it is left alone here.
    """
    import atheris

    done: set[int] = set()

    def one(fn) -> None:
        if isinstance(fn, (staticmethod, classmethod)):
            fn = fn.__func__
        if isinstance(fn, property):
            for part in (fn.fget, fn.fset, fn.fdel):
                if part is not None:
                    one(part)
            return
        if isinstance(fn, types.FunctionType) and id(fn) not in done:
            done.add(id(fn))
            atheris.instrument_func(fn)

    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in list(vars(module).values()):
            if getattr(obj, "__module__", None) != name:
                continue
            if isinstance(obj, type):
                for attr in list(vars(obj).values()):
                    one(attr)
            else:
                one(obj)
    return len(done)


def seed_files(target: str) -> list[Path]:
    folder = SEEDS / target
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")) if folder.is_dir() else []


class CrashLog:
    """The smallest input seen for each crash signature, kept in ``folder``."""

    def __init__(self, folder: Path, target: Target):
        self.folder = folder
        self.target = target
        self.smallest: dict[str, int] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def record(self, data: bytes, exc: BaseException) -> None:
        sig = signature(exc)
        if sig in self.smallest and self.smallest[sig] <= len(data):
            return
        first = sig not in self.smallest
        self.smallest[sig] = len(data)
        stem = hashlib.sha1(sig.encode()).hexdigest()[:12]
        (self.folder / f"{stem}{self.target.suffix}").write_bytes(data)
        text = "".join(traceback.format_exception(exc))
        (self.folder / f"{stem}.txt").write_text(f"signature: {sig}\nsize: {len(data)}\n\n{text}")
        if first:
            print(
                f"\n== NEW CRASH [{self.target.name}] {sig} ({len(data)} bytes) -> {stem}", file=sys.stderr, flush=True
            )


def fuzz(target: Target, found: Path, libfuzzer_args: list[str]) -> None:
    import atheris

    count = instrument(target.modules)
    log = CrashLog(found, target)
    # Compile the kernels (or load them from Numba's cache) before the clock of -timeout
    # runs: the first call of a kernel can take longer than any input should.
    start = time.perf_counter()
    for path in seed_files(target.name)[:4]:
        try:
            target.run(path.read_bytes()[:MAX_LEN])
        except Exception as exc:
            log.record(path.read_bytes()[:MAX_LEN], exc)
    print(
        f"[{target.name}] instrumented {count} functions; warm-up {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
        flush=True,
    )

    def test_one_input(data: bytes) -> None:
        try:
            target.run(data)
        except Exception as exc:  # every exception here is a finding; keep fuzzing
            log.record(data, exc)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def reproduces(target: Target, data: bytes, sig: str) -> bool:
    try:
        target.run(data)
    except Exception as exc:
        return signature(exc) == sig
    return False


def minimize(target: Target, data: bytes, seconds: float) -> tuple[bytes, str | None]:
    """A smaller input with the same crash signature: chunks removed while it still
    crashes the same way (delta debugging over bytes, halving the chunk size)."""
    try:
        target.run(data)
        return data, None
    except Exception as exc:
        sig = signature(exc)
    deadline = time.monotonic() + seconds
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        i, shrunk = 0, False
        while i < len(data) and time.monotonic() < deadline:
            candidate = data[:i] + data[i + chunk :]
            if candidate and reproduces(target, candidate, sig):
                data, shrunk = candidate, True
            else:
                i += chunk
        if not shrunk:
            chunk //= 2
    return data, sig


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TARGETS:
        print(f"usage: python -m tests.fuzz.harness TARGET ...; targets: {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    target = TARGETS[argv[0]]
    args = argv[1:]
    if args[:1] == ["--replay"]:
        status = 0
        for name in args[1:]:
            data = Path(name).read_bytes()
            try:
                outcome = target.run(data)
                print(f"{name}: ok, {outcome}")
            except Exception as exc:
                status = 1
                print(f"{name}: {signature(exc)}")
                traceback.print_exc()
        return status
    if args[:1] == ["--minimize"]:
        source, out = Path(args[1]), Path(args[args.index("--out") + 1])
        seconds = float(args[args.index("--seconds") + 1]) if "--seconds" in args else 60.0
        data, sig = minimize(target, source.read_bytes(), seconds)
        if sig is None:
            print(f"{source}: does not crash", file=sys.stderr)
            return 1
        out.write_bytes(data)
        print(f"{sig}\t{len(data)}")
        return 0
    found = Path("build/fuzz") / target.name / "found"
    if args[:1] == ["--found"]:
        found, args = Path(args[1]), args[2:]
    fuzz(target, found, args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
