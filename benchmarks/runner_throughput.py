"""Does the runner's throughput and the driver's memory stay flat as the input grows?

The genomics light pipeline of ``pipelines.py`` (FASTA -> 1 kb windows -> k-mer counts
k = 4 -> Parquet) through the real ``hpcprep run`` command at 10 MB, 100 MB and 1 GB of
simulated FASTA. For each size: the whole command's wall seconds, the manifest's
``timings`` (``execution`` is the Ray Data part: read, encoders, write), MB/s over the
whole command and over the execution alone, and the driver's peak resident memory
(VmHWM of the ``hpcprep`` process) and the largest total over all its Ray processes.

    .venv/bin/python benchmarks/runner_throughput.py                 # 10 MB, 100 MB, 1 GB
    .venv/bin/python benchmarks/runner_throughput.py --mb 10 100     # a quicker check
    .venv/bin/python benchmarks/runner_throughput.py --small-files 20000   # many one-record files
    .venv/bin/python benchmarks/runner_throughput.py --kept-ray      # joining a kept local Ray

``--kept-ray`` runs every size as a user's second and later commands run: after an untimed
command left its local Ray kept, the keeper of that Ray drives each command's run
(``hpcprep.hosted_runs``) instead of the command starting and stopping a Ray; the driver's
memory is then the keeper's (results/runner_throughput_kept_ray.json).

``--small-files N`` instead writes N one-record FASTA files of 1 kb and runs them through
k-mer counts, one-hot and a 5-mer spectrum into Parquet and LanceDB: files per second
over the execution, Parquet files written, and the LanceDB table's size on disk against
its data's (results/runner_small_files.json).

Writes benchmarks/results/runner_throughput.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import pipelines  # noqa: E402
from machine import step  # noqa: E402

RESULTS = HERE / "results" / "runner_throughput.json"
RECORD_MB = pipelines.GENOMICS["record_bases"] / 1e6


def one_size(mb: float, work: Path, wait_quiet: float, kept: bool = False) -> dict:
    records = max(1, round(mb / RECORD_MB))
    inputs = work / f"in{mb:g}"
    step("runner_throughput", f"{mb:g} MB: making the input")
    files = pipelines.make_genomics(inputs, records)
    size = sum(f.stat().st_size for f in files)
    pipelines.wait_until_quiet(wait_quiet)
    step("runner_throughput", f"{mb:g} MB: hpcprep run")
    # A kept Ray is joined only from the directory that started it: every size runs from there.
    run_in = work / ("kept" if kept else f"run{mb:g}")
    keep = pipelines.KEEP_SECONDS if kept else 0
    res = pipelines.run_runner("genomics", inputs, run_in, f"throughput_{mb:g}mb", keep=keep)
    t = res["manifest_timings"]
    row = {
        "input_mb": round(size / 1e6, 1),
        "rows": res["rows"],
        "command_seconds": res["seconds"],
        "timings": t,
        "mb_per_s_command": round(size / 1e6 / res["seconds"], 2),
        "mb_per_s_execution": round(size / 1e6 / t["execution"], 2),
        "driver_peak_rss_mib": res["keeper_rss_max_mib"] if kept else res["peak_rss_mib"],
        "all_processes_rss_max_mib": res["tree_rss_max_mib"],
        "foreign_cores_mean": res["cpu"]["foreign_cores_mean"],
        "stage_worker_seconds": res["stage_worker_seconds"],
    }
    shutil.rmtree(inputs)
    shutil.rmtree(run_in / "run")
    return row


SMALL_FILES_SPEC = """[run]
name = "small_files"
output = "{out}"
[reader]
stage = "genomics.fasta"
paths = ["{inputs}"]
window = 1024
[[encoders]]
stage = "genomics.kmer_counts"
k = 4
[[encoders]]
stage = "genomics.onehot"
[[encoders]]
stage = "genomics.kmer_spectrum"
k = 5
[[sinks]]
stage = "parquet"
path = "{out}/table"
[[sinks]]
stage = "lancedb"
uri = "{out}/vectors"
table = "spectra"
vector_column = "spectrum"
metric = "cosine"
"""


def small_files(n: int, work: Path, wait_quiet: float) -> dict:
    import lancedb
    import numpy as np

    inputs = work / "small"
    inputs.mkdir(parents=True)
    step("runner_throughput", f"writing {n} one-record FASTA files")
    rng = np.random.default_rng(2)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    for i in range(n):
        seq = letters[rng.integers(0, 4, 1024)].tobytes().decode()
        lines = "\n".join(seq[j : j + 60] for j in range(0, len(seq), 60))
        (inputs / f"s{i:06d}.fa").write_text(f">gene{i}\n{lines}\n")
    out = work / "run"
    spec = work / "small_files.toml"
    spec.write_text(SMALL_FILES_SPEC.format(out=out, inputs=inputs))
    pipelines.wait_until_quiet(wait_quiet)
    step("runner_throughput", f"hpcprep run over the {n} files")
    res = pipelines.timed_command(
        [pipelines.hpcprep_command(), "run", str(spec), "--keep-ray", "0"], work / "run.log", work
    )
    if res["returncode"]:
        raise SystemExit(f"hpcprep run failed: see {work / 'run.log'}")
    manifest = json.loads((out / "manifest.json").read_text())
    table = lancedb.connect(str(out / "vectors")).open_table("spectra")
    on_disk = sum(f.stat().st_size for f in (out / "vectors").rglob("*") if f.is_file())
    t = manifest["timings"]
    return {
        "files": n,
        "counts": manifest["counts"],
        "command_seconds": res["seconds"],
        "timings": t,
        "files_per_s_execution": round(n / t["execution"], 1),
        "files_per_s_command": round(n / res["seconds"], 1),
        "parquet_files": len(list((out / "table").glob("*.parquet"))),
        "lancedb_bytes_on_disk": on_disk,
        "lancedb_arrow_bytes": table.to_arrow().nbytes,
        "lancedb_columns": table.schema.names,
        "parquet_bytes_on_disk": sum(f.stat().st_size for f in (out / "table").rglob("*") if f.is_file()),
        "lancedb_versions": len(table.list_versions()),
        "driver_peak_rss_mib": res["peak_rss_mib"],
        "foreign_cores_mean": res["cpu"]["foreign_cores_mean"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, nargs="+", default=[10, 100, 1000], help="input sizes in MB")
    ap.add_argument("--results", default=str(RESULTS))
    ap.add_argument("--wait-quiet", type=float, default=120.0)
    ap.add_argument("--small-files", type=int, default=0, help="run N one-record files instead of the sizes")
    ap.add_argument("--kept-ray", action="store_true", help="each command joins a local Ray kept by an earlier one")
    args = ap.parse_args(argv)
    if args.kept_ray and args.small_files:
        ap.error("--kept-ray times the sizes; --small-files runs with its own Ray")
    if args.kept_ray and args.results == str(RESULTS):
        args.results = str(RESULTS.with_name("runner_throughput_kept_ray.json"))
    if args.small_files:
        with tempfile.TemporaryDirectory(prefix="hpcprep-small-files-") as tmp:
            row = small_files(args.small_files, Path(tmp), args.wait_quiet)
        path = (
            Path(args.results).with_name("runner_small_files.json")
            if args.results == str(RESULTS)
            else Path(args.results)
        )
        path.write_text(
            json.dumps(
                {
                    "benchmark": "runner_small_files",
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": {"cpu": pipelines.cpu_model()},
                    "versions": pipelines.versions(),
                    **row,
                },
                indent=1,
            )
        )
        print(json.dumps(row, indent=1))
        return 0
    rows = []
    with tempfile.TemporaryDirectory(prefix="hpcprep-throughput-") as tmp:
        if args.kept_ray:
            os.environ["HPCPREP_RUNTIME_DIR"] = str(Path(tmp) / "local-ray")  # this script's own kept Ray
            pipelines.start_kept_ray(Path(tmp) / "kept")
        try:
            for mb in args.mb:
                print(f"[throughput] {mb:g} MB ...", file=sys.stderr, flush=True)
                rows.append(one_size(mb, Path(tmp), args.wait_quiet, args.kept_ray))
        finally:
            if args.kept_ray:
                pipelines.stop_kept_ray()
    result = {
        "benchmark": "runner_throughput",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": pipelines.cpu_model(), "cores": pipelines.os.cpu_count()},
        "versions": pipelines.versions(),
        "pipeline": "genomics.fasta window=1000 -> genomics.kmer_counts k=4 -> parquet",
        "ray": "the keeper of a local Ray kept by an earlier command drove each run (driver memory: the keeper's)"
        if args.kept_ray
        else "its own local Ray per command",
        "sizes": rows,
    }
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=1))
    print(
        f"{'MB':>7} {'command s':>10} {'exec s':>7} {'MB/s cmd':>9} {'MB/s exec':>10} {'driver MiB':>11} {'all MiB':>8}"
    )
    for r in rows:
        print(
            f"{r['input_mb']:7.1f} {r['command_seconds']:10.1f} {r['timings']['execution']:7.1f} "
            f"{r['mb_per_s_command']:9.2f} {r['mb_per_s_execution']:10.2f} {r['driver_peak_rss_mib']:11.0f} "
            f"{r['all_processes_rss_max_mib']:8.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
