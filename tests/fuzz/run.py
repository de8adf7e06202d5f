"""Run the fuzz targets, each in its own process for a fixed time, and summarise.

    .venv/bin/python tests/fuzz/run.py --seconds 600 [--target stl --target pdb ...] [--out build/fuzz/summary.json]

Each target fuzzes for ``--seconds`` (wall clock, restarts included) from its seeds
(``tests/fuzz/seeds/<target>``) and the corpus it grew on earlier runs
(``build/fuzz/<target>/corpus``). What the run finds:

- a property violation or an unexpected exception is saved by the harness without
  stopping the run; afterwards each is minimised and copied to
  ``tests/fuzz/crashes/<target>/`` (one file per crash signature, the smaller input kept),
  where ``test_regressions.py`` replays it;
- a hang (an input running past ``--timeout`` seconds), a memory blow-up (past
  ``--rss-limit-mb``) or a deadly signal ends the process with a libFuzzer artifact; it is
  copied there too (not minimised) and the target starts again for the time left.

The JSON summary (``--out``) has, per target: seconds, executions, corpus size, the
coverage libFuzzer reports, restarts, and the crashes with their signature, file and the
last lines of their traceback; it is what docs/reliability.md quotes. The exit status is
1 when anything was found.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.fuzz.targets import MAX_LEN, TARGETS  # noqa: E402

SEEDS = REPO / "tests" / "fuzz" / "seeds"
#: libFuzzer dictionaries (tokens of each format), ``dicts/<target>.dict``
DICTS = REPO / "tests" / "fuzz" / "dicts"
CRASHES = REPO / "tests" / "fuzz" / "crashes"
#: libFuzzer artifacts that end a run, by file name prefix
ARTIFACT_KINDS = ("crash-", "timeout-", "oom-", "leak-")
#: Restarts after artifacts are capped, so that an input that hangs at once cannot spin.
MAX_RESTARTS = 20

_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")


def parse_log(text: str) -> dict:
    """Executions and the last coverage figures of one libFuzzer run."""
    out = {"executions": 0, "coverage": None, "features": None, "corpus": None}
    for line in text.splitlines():
        m = _STATUS.match(line)
        if m:
            out["executions"] = max(out["executions"], int(m.group(1)))
            out["coverage"], out["features"], out["corpus"] = int(m.group(2)), int(m.group(3)), int(m.group(4))
        m = _EXECUTED.search(line)
        if m:
            out["executions"] = max(out["executions"], int(m.group(1)))
    return out


def harness_command(target: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "tests.fuzz.harness", target, *args]


def traceback_tail(text: str, lines: int = 6) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def save_crash(target: str, data: bytes, name: str, save: bool) -> str:
    """Copy a crash input to tests/fuzz/crashes/<target>/ (kept smaller where one exists)."""
    if not save:
        return ""
    folder = CRASHES / target
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / name
    if not dest.exists() or dest.stat().st_size > len(data):
        dest.write_bytes(data)
    return str(dest.relative_to(REPO))


def fuzz_target(target: str, seconds: float, args, work: Path) -> dict:
    spec = TARGETS[target]
    corpus, found, artifacts = work / "corpus", work / "found", work / "artifacts"
    if found.exists():
        shutil.rmtree(found)  # findings of this run only; earlier ones are in tests/fuzz/crashes
    for folder in (corpus, found, artifacts):
        folder.mkdir(parents=True, exist_ok=True)
    initial = {p.name for p in artifacts.iterdir()}
    before = set(initial)
    log_path = work / "fuzz.log"
    totals = {"executions": 0, "coverage": None, "features": None, "corpus": None}
    start = time.monotonic()
    restarts = 0
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
    with open(log_path, "w") as log:
        while True:
            left = seconds - (time.monotonic() - start)
            if left < 5 or restarts > MAX_RESTARTS:
                break
            command = harness_command(
                target,
                "--found",
                str(found),
                f"-max_total_time={int(left)}",
                f"-timeout={args.timeout}",
                f"-rss_limit_mb={args.rss_limit_mb}",
                f"-max_len={MAX_LEN}",
                "-print_final_stats=1",
                f"-artifact_prefix={artifacts}/",
                *([f"-dict={DICTS / f'{target}.dict'}"] if (DICTS / f"{target}.dict").exists() else []),
                str(corpus),
                str(SEEDS / target),
            )
            # the harness' own warm-up and libFuzzer's exit get a margin past -max_total_time
            proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=left + 300)
            log.write(proc.stdout + proc.stderr)
            stats = parse_log(proc.stderr)
            totals["executions"] += stats["executions"]
            for key in ("coverage", "features", "corpus"):
                if stats[key] is not None:
                    totals[key] = stats[key]
            new_artifacts = any(p.name.startswith(ARTIFACT_KINDS) and p.name not in before for p in artifacts.iterdir())
            if proc.returncode == 0 or not new_artifacts:
                if proc.returncode != 0:
                    print(
                        f"[{target}] harness exited {proc.returncode} without an artifact; see {log_path}",
                        file=sys.stderr,
                    )
                break
            before |= {p.name for p in artifacts.iterdir()}
            restarts += 1
    elapsed = time.monotonic() - start

    crashes = []
    # in-process findings: minimise, then keep under tests/fuzz/crashes
    for path in sorted(found.glob(f"*{spec.suffix}")):
        minimised = work / f"min-{path.name}"
        minimised.unlink(missing_ok=True)
        try:
            subprocess.run(
                harness_command(
                    target, "--minimize", str(path), "--out", str(minimised), "--seconds", str(args.minimize_seconds)
                ),
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=args.minimize_seconds + 300,
            )
        except subprocess.TimeoutExpired:
            pass  # one candidate hung: keep the input as found
        data = minimised.read_bytes() if minimised.exists() else path.read_bytes()
        info = path.with_suffix(".txt").read_text() if path.with_suffix(".txt").exists() else ""
        signature = info.splitlines()[0].removeprefix("signature: ") if info else "?"
        crashes.append(
            {
                "kind": "exception",
                "signature": signature,
                "size": len(data),
                "file": save_crash(target, data, path.name, args.save),
                "traceback_tail": traceback_tail(info),
            }
        )
    # libFuzzer artifacts: hangs, memory, deadly signals
    for path in sorted(artifacts.iterdir()):
        if not path.name.startswith(ARTIFACT_KINDS) or path.name in initial:
            continue
        kind = path.name.split("-", 1)[0]
        data = path.read_bytes()
        name = f"{kind}-{hashlib.sha1(data).hexdigest()[:12]}{spec.suffix}"
        crashes.append(
            {
                "kind": kind,
                "signature": kind,
                "size": len(data),
                "file": save_crash(target, data, name, args.save),
                "traceback_tail": "",
            }
        )
    return {
        "target": target,
        "doc": spec.doc,
        "seconds": round(elapsed, 1),
        "executions": totals["executions"],
        "corpus_size": totals["corpus"],
        "corpus_files_added": sum(1 for p in corpus.iterdir() if p.is_file()),
        "seeds": sum(1 for p in (SEEDS / target).iterdir() if p.is_file()) if (SEEDS / target).is_dir() else 0,
        "coverage": totals["coverage"],
        "features": totals["features"],
        "restarts": restarts,
        "crashes": crashes,
        "log": str(log_path),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the atheris fuzz targets of the readers.")
    parser.add_argument("--seconds", type=float, required=True, help="fuzzing time per target")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="target(s) to run; default all")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "fuzz" / "summary.json", help="JSON summary")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "fuzz", help="corpora, logs, artifacts")
    parser.add_argument("--timeout", type=int, default=20, help="seconds one input may take before it is a hang")
    parser.add_argument("--rss-limit-mb", type=int, default=4096, help="memory one fuzzing process may use")
    parser.add_argument("--minimize-seconds", type=float, default=60.0, help="time to shrink each crash input")
    parser.add_argument(
        "--no-save", dest="save", action="store_false", help="do not copy crashes into tests/fuzz/crashes/"
    )
    args = parser.parse_args(argv)
    targets = args.target or list(TARGETS)
    results = []
    for target in targets:
        print(f"[{target}] fuzzing for {args.seconds:g} s", file=sys.stderr, flush=True)
        result = fuzz_target(target, args.seconds, args, args.work / target)
        results.append(result)
        print(
            f"[{target}] {result['executions']} executions in {result['seconds']} s, corpus {result['corpus_size']}, "
            f"coverage {result['coverage']}, {len(result['crashes'])} crash(es)",
            file=sys.stderr,
            flush=True,
        )
        for crash in result["crashes"]:
            print(f"    {crash['kind']}: {crash['signature']} -> {crash['file'] or '(not saved)'}", file=sys.stderr)
    summary = {
        "generated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "seconds_per_target": args.seconds,
        "input_timeout_s": args.timeout,
        "rss_limit_mb": args.rss_limit_mb,
        "targets": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"summary: {args.out}", file=sys.stderr)
    return 1 if any(r["crashes"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
