"""How long does ``hpcprep run`` of a one-record spec take, from the command to the prompt?

One 1 kb FASTA record -> ``genomics.kmer_counts`` k = 4 -> Parquet, through the real
command, timed as a whole (Python start, imports, plugin loading, planning, Ray, the
run, the exit), in two ways:

- **own Ray** (``--keep-ray 0``): the command starts a local Ray and stops it;
- **kept Ray, joined**: after an untimed command from the same directory left its local
  Ray kept (``--keep-ray``), each command joins it as a driver of its own
  (``HPCPREP_KEEPER_RUNS=0``), as every command did before the keeper drove runs;
- **kept Ray, run by its keeper**: the same, as a user's next command goes by default: the
  keeper drives the run, in workers that outlive commands (``hpcprep.hosted_runs``).

Each way runs ``--repeat`` times after an untimed run that fills Numba's cache; before
each command the script waits for the machine to be quiet. The JSON has every
command's seconds, the median, and each run's manifest ``timings`` and the time outside
``run()`` (``rest``: Python start, imports, plugin loading, exit).

    .venv/bin/python benchmarks/one_record.py              # 5 of each
    .venv/bin/python benchmarks/one_record.py --repeat 10
    .venv/bin/python benchmarks/one_record.py --bytecode-ab   # kept Ray, with and without bytecode

``--bytecode-ab`` times the kept-Ray command alternately with hpcprep's compiled bytecode
(``make bytecode``) and without it (its ``.pyc`` files moved aside for that command and
put back after it): an editable install gets none from pip, and where Python is told not
to write any (``PYTHONDONTWRITEBYTECODE``, set on these machines) the command and the
run's new worker compile hpcprep's modules from source. Results go to
``one_record_bytecode.json``. (It times joined commands: a keeper imports once, so the
bytecode only matters to the command's own few imports there.)

Writes benchmarks/results/one_record.json and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import cpu_model, tail, timed_command, wait_until_quiet  # noqa: E402
from pipelines import hpcprep_command, stop_kept_ray  # noqa: E402

RESULTS = HERE / "results" / "one_record.json"
BYTECODE_RESULTS = HERE / "results" / "one_record_bytecode.json"
SOURCES = [HERE.parent / "core", HERE.parent / "plugins"]
KEEP_SECONDS = 600


def write_spec(work: Path) -> Path:
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    seq = ("ACGTTGCAAGGCTTAACCGT" * 50)[:1000]
    (data / "one.fa").write_text(f">one\n{seq}\n")
    spec = work / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{work / "out"}"\n'
        f'[reader]\nstage = "genomics.fasta"\npaths = ["{data / "one.fa"}"]\n'
        '[[encoders]]\nstage = "genomics.kmer_counts"\nk = 4\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{work / "out" / "table"}"\n'
    )
    return spec


#: How each series' commands are told to hand the run to the keeper or not.
JOINED = {"HPCPREP_KEEPER_RUNS": "0"}
BY_KEEPER = {"HPCPREP_KEEPER_RUNS": "1"}


def one_command(spec: Path, work: Path, keep: float, n: int, env: dict | None = None) -> dict:
    log = work / f"run{n}.log"
    cmd = [hpcprep_command(), "run", str(spec), "--overwrite", "--keep-ray", f"{keep:g}"]
    res = timed_command(cmd, log, work, env=env)
    if res["returncode"] != 0:
        raise SystemExit(f"hpcprep run failed:\n{tail(res['log'])}")
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    if manifest["counts"]["outputs"] != 1 or not manifest["counts"]["balanced"]:
        raise SystemExit(f"hpcprep run: expected one balanced record, got {manifest['counts']}")
    timings = manifest["timings"]
    return {
        "seconds": res["seconds"],
        "timings": timings,
        "rest_seconds": round(res["seconds"] - timings["total"], 3),
        "joined_kept_ray": "joined the local Ray kept by an earlier command" in log.read_text(errors="replace"),
        "run_by_keeper": "run by the keeper of the local Ray" in log.read_text(errors="replace"),
        "foreign_cores_mean": res["cpu"]["foreign_cores_mean"],
        "keeper_rss_max_mib": res["keeper_rss_max_mib"],
    }


def series(spec: Path, work: Path, keep: float, repeat: int, wait_quiet: float, env: dict | None = None) -> list[dict]:
    out = []
    for n in range(repeat):
        wait_until_quiet(wait_quiet, threshold=0.25)
        out.append(one_command(spec, work, keep, n, env))
        print(f"[one_record] keep={keep:g} {env or ''}: {out[-1]['seconds']:.2f} s", flush=True)
    return out


def hide_bytecode(aside: Path) -> list[tuple[Path, Path]]:
    """Move hpcprep's compiled modules into ``aside``; returns (where it was, where it is)."""
    moved = []
    for root in SOURCES:
        for pyc in root.rglob("__pycache__/*.pyc"):
            to = aside / f"{len(moved)}.pyc"
            pyc.rename(to)
            moved.append((pyc, to))
    return moved


def bytecode_ab(spec: Path, work: Path, repeat: int, wait_quiet: float) -> dict:
    """The kept-Ray command alternately without and with hpcprep's bytecode."""
    if not any(SOURCES[0].rglob("__pycache__/*.pyc")):
        raise SystemExit("no compiled bytecode under core/: run `make bytecode` first")
    aside = work / "pyc-aside"
    aside.mkdir()
    runs = {"with_bytecode": [], "without_bytecode": []}
    for n in range(repeat):
        for name in ("without_bytecode", "with_bytecode"):
            moved = hide_bytecode(aside) if name == "without_bytecode" else []
            try:
                wait_until_quiet(wait_quiet, threshold=0.25)
                runs[name].append(one_command(spec, work, KEEP_SECONDS, n, JOINED))
            finally:
                for was, now in moved:
                    now.rename(was)
            print(f"[one_record] {name}: {runs[name][-1]['seconds']:.2f} s", flush=True)
    return {name: {**summary(r), "runs": r} for name, r in runs.items()}


def summary(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    return {"median_seconds": round(statistics.median(secs), 2), "min_seconds": min(secs), "max_seconds": max(secs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wait-quiet", type=float, default=60.0)
    ap.add_argument("--results", default=None, help="default: results/one_record.json (one_record_bytecode.json)")
    ap.add_argument("--bytecode-ab", action="store_true", help="kept Ray only, with and without bytecode")
    args = ap.parse_args(argv)
    results = Path(args.results or (BYTECODE_RESULTS if args.bytecode_ab else RESULTS))

    work = Path(tempfile.mkdtemp(prefix="hpcprep-one-record-"))
    os.environ["HPCPREP_RUNTIME_DIR"] = str(work / "local-ray")  # this script's own kept Ray
    try:
        spec = write_spec(work)
        if args.bytecode_ab:
            one_command(spec, work, KEEP_SECONDS, -1)  # Numba's cache and the kept Ray, untimed
            ab = bytecode_ab(spec, work, args.repeat, args.wait_quiet)
            own = kept = by_keeper = None
        else:
            one_command(spec, work, 0, -1)  # Numba's cache, untimed
            own = series(spec, work, 0, args.repeat, args.wait_quiet)
            one_command(spec, work, KEEP_SECONDS, -2)  # leaves the kept Ray, untimed
            kept = series(spec, work, KEEP_SECONDS, args.repeat, args.wait_quiet, JOINED)
            one_command(spec, work, KEEP_SECONDS, -3, BY_KEEPER)  # the keeper's first run, untimed
            by_keeper = series(spec, work, KEEP_SECONDS, args.repeat, args.wait_quiet, BY_KEEPER)
            ab = {}
        for r in (kept or []) + [r for s in ab.values() for r in s["runs"]]:
            if not r["joined_kept_ray"]:
                raise SystemExit("a command of the kept series did not join the kept Ray")
        for r in by_keeper or []:
            if not r["run_by_keeper"]:
                raise SystemExit("a command of the keeper's series was not run by the keeper")
    finally:
        stop_kept_ray()
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "one_record",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model()},
        "what_is_timed": "the command `hpcprep run SPEC --overwrite --keep-ray K` from start to exit; "
        "one 1 kb FASTA record -> genomics.kmer_counts k=4 -> parquet",
    }
    if own is not None:
        result.update(
            {
                "own_ray": {**summary(own), "runs": own},
                "kept_ray": {**summary(kept), "runs": kept},
                "run_by_keeper": {**summary(by_keeper), "runs": by_keeper},
            }
        )
    result.update(ab)
    results.write_text(json.dumps(result, indent=1) + "\n")
    for name in [k for k in result if isinstance(result[k], dict) and "runs" in result[k]]:
        s = result[name]
        rest = statistics.median(r["rest_seconds"] for r in s["runs"])
        startup = statistics.median(r["timings"]["startup"] for r in s["runs"])
        execution = statistics.median(r["timings"]["execution"] for r in s["runs"])
        print(
            f"{name:<13} median {s['median_seconds']:.2f} s (min {s['min_seconds']:.2f}, max {s['max_seconds']:.2f}); "
            f"medians: startup {startup:.2f}, execution {execution:.2f}, outside run() {rest:.2f}"
        )
    print(f"results: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
