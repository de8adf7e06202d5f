"""How long does ``hpcprep run`` of a one-record spec take, from the command to the prompt?

One 1 kb FASTA record -> ``genomics.kmer_counts`` k = 4 -> Parquet, through the real
command, timed as a whole (Python start, imports, plugin loading, planning, Ray, the
run, the exit), in two ways:

- **own Ray** (``--keep-ray 0``): the command starts a local Ray and stops it;
- **kept Ray**: after an untimed command from the same directory left its local Ray kept
  (``--keep-ray``), each command joins it, as a user's next command does.

Each way runs ``--repeat`` times after an untimed run that fills Numba's cache; before
each command the script waits for the machine to be quiet. The JSON has every
command's seconds, the median, and each run's manifest ``timings`` and the time outside
``run()`` (``rest``: Python start, imports, plugin loading, exit).

    .venv/bin/python benchmarks/one_record.py              # 5 of each
    .venv/bin/python benchmarks/one_record.py --repeat 10

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


def one_command(spec: Path, work: Path, keep: float, n: int) -> dict:
    log = work / f"run{n}.log"
    res = timed_command([hpcprep_command(), "run", str(spec), "--overwrite", "--keep-ray", f"{keep:g}"], log, work)
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
        "foreign_cores_mean": res["cpu"]["foreign_cores_mean"],
    }


def series(spec: Path, work: Path, keep: float, repeat: int, wait_quiet: float) -> list[dict]:
    out = []
    for n in range(repeat):
        wait_until_quiet(wait_quiet, threshold=0.25)
        out.append(one_command(spec, work, keep, n))
        print(f"[one_record] keep={keep:g}: {out[-1]['seconds']:.2f} s", flush=True)
    return out


def summary(runs: list[dict]) -> dict:
    secs = [r["seconds"] for r in runs]
    return {"median_seconds": round(statistics.median(secs), 2), "min_seconds": min(secs), "max_seconds": max(secs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--wait-quiet", type=float, default=60.0)
    ap.add_argument("--results", default=str(RESULTS))
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="hpcprep-one-record-"))
    os.environ["HPCPREP_RUNTIME_DIR"] = str(work / "local-ray")  # this script's own kept Ray
    try:
        spec = write_spec(work)
        one_command(spec, work, 0, -1)  # Numba's cache, untimed
        own = series(spec, work, 0, args.repeat, args.wait_quiet)
        one_command(spec, work, KEEP_SECONDS, -2)  # leaves the kept Ray, untimed
        kept = series(spec, work, KEEP_SECONDS, args.repeat, args.wait_quiet)
        if not all(r["joined_kept_ray"] for r in kept):
            raise SystemExit("a command of the kept series did not join the kept Ray")
    finally:
        stop_kept_ray()
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "benchmark": "one_record",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model()},
        "what_is_timed": "the command `hpcprep run SPEC --overwrite --keep-ray K` from start to exit; "
        "one 1 kb FASTA record -> genomics.kmer_counts k=4 -> parquet",
        "own_ray": {**summary(own), "runs": own},
        "kept_ray": {**summary(kept), "runs": kept},
    }
    Path(args.results).write_text(json.dumps(result, indent=1) + "\n")
    for name in ("own_ray", "kept_ray"):
        s = result[name]
        rest = statistics.median(r["rest_seconds"] for r in s["runs"])
        startup = statistics.median(r["timings"]["startup"] for r in s["runs"])
        execution = statistics.median(r["timings"]["execution"] for r in s["runs"])
        print(
            f"{name:<9} median {s['median_seconds']:.2f} s (min {s['min_seconds']:.2f}, max {s['max_seconds']:.2f}); "
            f"medians: startup {startup:.2f}, execution {execution:.2f}, outside run() {rest:.2f}"
        )
    print(f"results: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
