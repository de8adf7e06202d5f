"""Runner scaling: a CPU-bound Numba encoder through ``hpcprep.run`` vs a plain loop.

Both paths see the same records (``bench_plugin``: deterministic chunks of synthetic
records), run the same JIT-compiled kernel (warmed before timing), and write the same
columns (source, record_id, offset, x, y) to zstd Parquet. The runner uses a local Ray
with ``--num-cpus`` CPUs (default 2), started before the timed run (its start-up time is
reported separately); the plain loop is one process, one thread. The kernel output of
the two paths is compared record by record, so neither can skip work.

    .venv/bin/python benchmarks/runner_scaling.py               # 10 M records
    .venv/bin/python benchmarks/runner_scaling.py --records 1000000

Writes benchmarks/results/runner_scaling.json and prints a one-line summary.

One module, one job (one measurement, its two sides and their check): the spec, the
plain loop and the output check exist only for this comparison and read best beside
each other; what it shares with the other benchmarks (the CPU and memory monitor,
waiting for a quiet machine) is in ``machine.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# Ray workers inherit this, so they import bench_kernel by name (see bench_plugin)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)

import bench_kernel  # noqa: E402
import bench_plugin  # noqa: E402
import hpcprep  # noqa: E402
from hpcprep.ray_start import shutdown_ray, start_local_ray  # noqa: E402
from machine import Monitor, cpu_model, step, wait_until_quiet  # noqa: E402

RESULTS = HERE / "results" / "runner_scaling.json"


def peak_rss_mib() -> float:
    """Peak resident memory of this (driver) process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def versions() -> dict:
    import numba
    import ray

    return {
        "python": platform.python_version(),
        "hpcprep": hpcprep.__version__,
        "ray": ray.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "pyarrow": pa.__version__,
    }


# -- the two paths -------------------------------------------------------------------


def commit_every(args) -> int:
    """-1 (the default): every input in one commit group, i.e. one Ray Data execution."""
    if args.core_defaults:
        return 0
    if args.commit_every < 0:
        return len(bench_plugin.chunk_bounds(args.records, args.records_per_item))
    return args.commit_every


def spec_for(args, out: Path) -> dict:
    return {
        "run": {
            "name": "runner_scaling",
            "output": str(out),
            "commit_every": commit_every(args),
            "num_cpus": args.num_cpus,
            **({"commit_seconds": args.commit_seconds} if args.commit_seconds else {}),
        },
        "reader": {
            "stage": "bench.synthetic",
            "n_records": args.records,
            "records_per_item": args.records_per_item,
            "batch_rows": args.batch_size,
            "seed": args.seed,
        },
        "encoders": [
            {
                "stage": "bench.kernel",
                "iterations": args.iterations,
                "kick": args.kick,
                "placement": placement_for(args),
            }
        ],
        "sinks": [{"stage": "parquet", "path": str(out / "table")}],
    }


def placement_for(args) -> dict:
    """The encoder's placement override: only what the command line sets."""
    placement = {"batch_size": args.batch_size}
    if args.core_defaults:
        return placement
    for key in ("compute", "num_cpus", "concurrency"):
        value = getattr(args, "encoder_" + key)
        if value is not None:
            placement[key] = value
    return placement


def run_runner(args, out: Path) -> dict:
    spec = spec_for(args, out)
    mon = Monitor().start()
    t = time.perf_counter()
    try:
        result = hpcprep.run(spec, plugins=[bench_plugin], overwrite=True, progress=args.verbose)
    finally:
        seconds = time.perf_counter() - t
        mon.stop()
    m = result.manifest
    c = m["counts"]
    if not c["balanced"] or c["errors"]:
        raise SystemExit(f"runner: books do not balance or errors: {c}")
    groups = [json.loads(line) for line in (out / "_state" / "commits.jsonl").read_text().splitlines() if line]
    return {
        "seconds": seconds,
        "commit_groups": len(groups),
        "group_wall_seconds": [round(g["wall_seconds"], 3) for g in groups],
        "stage_seconds": {s["where"] + ":" + s["stage"]: s.get("seconds") for s in m.get("stages", [])},
        "placement": next((s.get("placement") for s in m.get("stages", []) if "placement" in s), None),
        "counts": c,
        "cpu": cpu(mon, seconds),
        "table": str(out / "table"),
    }


def run_plain(args, out: Path) -> dict:
    """The same records, kernel and Parquet output, one process, one thread."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "plain.parquet"
    # warm the JIT (loads Numba's cache) outside the timed part, as the runner's setup does
    bench_kernel.warm()
    mon = Monitor().start()
    t = time.perf_counter()
    writer = None
    rows = 0
    for index, (start, stop) in enumerate(bench_plugin.chunk_bounds(args.records, args.records_per_item)):
        for batch in bench_plugin.make_chunk(args.seed, index, start, stop, args.batch_size):
            y = bench_kernel.standard_map_mean_cos(batch["x"], args.iterations, args.kick, np.empty_like(batch["x"]))
            table = pa.table({**batch, "y": y})
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=65536)
            rows += table.num_rows
    writer.close()
    seconds = time.perf_counter() - t
    mon.stop()
    return {"seconds": seconds, "rows": rows, "cpu": cpu(mon, seconds), "table": str(path)}


def cpu(mon: Monitor, seconds: float) -> dict:
    """The CPU report of a timed side, with the driver's (this process's) largest resident set."""
    return {**mon.report(seconds), "driver_rss_max_mib": round(mon.own_rss_max / 2**20, 1)}


# -- checking ------------------------------------------------------------------------


def load_sorted(path: str) -> pa.Table:
    table = pq.read_table(path, columns=["offset", "record_id", "y"])
    return table.take(np.argsort(table["offset"].to_numpy(), kind="stable"))


def check_equal(runner_table: str, plain_table: str, n: int) -> dict:
    a, b = load_sorted(runner_table), load_sorted(plain_table)
    problems = []
    if a.num_rows != n or b.num_rows != n:
        problems.append(f"row counts: runner {a.num_rows}, plain {b.num_rows}, expected {n}")
    else:
        if not np.array_equal(a["offset"].to_numpy(), np.arange(n)):
            problems.append("runner offsets are not exactly 0..n-1")
        if not a["record_id"].equals(b["record_id"]):
            problems.append("record_id differs")
        ya, yb = a["y"].to_numpy(), b["y"].to_numpy()
        if not np.array_equal(ya.view(np.int64), yb.view(np.int64)):
            problems.append(f"y differs in {int(np.sum(ya != yb))} records")
    digest = hashlib.blake2b(b["y"].to_numpy().tobytes(), digest_size=16).hexdigest()
    return {
        "equal": not problems,
        "problems": problems,
        "y_sum": float(np.sum(b["y"].to_numpy())),
        "y_blake2b_by_offset": digest,
    }


# -- main ----------------------------------------------------------------------------


def one_pair(args, work: Path, k: int) -> dict:
    """Runner, then plain loop, then the output check; Ray runs only during the first."""

    quiet_wait = wait_until_quiet(args.wait_quiet) if args.wait_quiet else 0.0
    t = time.perf_counter()
    watcher = start_local_ray(args.num_cpus)
    ray_start = time.perf_counter() - t
    step("runner_scaling", f"pair {k}: the runner over {args.records:,} records")
    try:
        runner = run_runner(args, work / f"runner{k}")
    finally:
        shutdown_ray()
        if watcher is not None:
            watcher.terminate()
    rss_runner = peak_rss_mib()
    if args.skip_plain:
        return {"runner": runner, "ray_init_seconds": ray_start}
    step("runner_scaling", f"pair {k}: runner {runner['seconds']:.1f} s; the plain loop")
    plain = run_plain(args, work / f"plain{k}")
    rss_plain = peak_rss_mib()
    check = check_equal(runner.pop("table"), plain.pop("table"), args.records)
    shutil.rmtree(work / f"runner{k}", ignore_errors=True)
    shutil.rmtree(work / f"plain{k}", ignore_errors=True)
    return {
        "seconds": {"runner": round(runner["seconds"], 3), "plain_loop": round(plain["seconds"], 3)},
        "ratio_plain_over_runner": round(plain["seconds"] / runner["seconds"], 3),
        "ray_init_seconds_not_in_runner_time": round(ray_start, 3),
        "waited_for_quiet_seconds": round(quiet_wait, 1),
        "runner": runner,
        "plain_loop": plain,
        # getrusage's peak is for the whole process life so far (the output check of an
        # earlier pair included); each phase's own peak is in runner/plain_loop.cpu
        "driver_peak_rss_mib_getrusage": {
            "after_runner": round(rss_runner, 1),
            "after_plain_loop": round(rss_plain, 1),
        },
        "outputs_equal": check,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=10_000_000, help="records in total (default 10 M)")
    ap.add_argument("--records-per-item", type=int, default=250_000, help="records per input item / read task")
    ap.add_argument("--batch-size", type=int, default=65_536, help="rows per batch (reader and encoder)")
    ap.add_argument(
        "--commit-every",
        type=int,
        default=-1,
        help="inputs per commit group: -1 all in one group (default), 0 the runner's automatic sizing",
    )
    ap.add_argument("--encoder-compute", choices=["tasks", "actors"], default=None, help="placement compute")
    ap.add_argument(
        "--encoder-num-cpus",
        type=float,
        default=None,
        help="placement num_cpus per encoder actor (default: the core's placement)",
    )
    ap.add_argument("--encoder-concurrency", type=int, default=None, help="placement concurrency")
    ap.add_argument(
        "--core-defaults",
        action="store_true",
        help="no tuning: the runner's automatic commit groups and the default placement (batch size only)",
    )
    ap.add_argument(
        "--also-core-defaults",
        action="store_true",
        help="after the pairs, time the runner once more with --core-defaults, for comparison",
    )
    ap.add_argument(
        "--also-auto-commits",
        action="store_true",
        help="after the pairs, time the runner once more with automatic commit groups (run.commit_seconds), "
        "everything else the same: the cost of committing as a crash-safe run does",
    )
    ap.add_argument(
        "--commit-seconds",
        type=float,
        default=None,
        help="run.commit_seconds of the automatic groups (default: the core's); a small value cuts a run "
        "into several groups, to see what each one costs",
    )
    ap.add_argument("--iterations", type=int, default=128, help="standard-map iterations per record")
    ap.add_argument("--kick", type=float, default=1.3, help="standard-map kick K")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray")
    ap.add_argument("--repeat", type=int, default=1, help="runner/plain pairs to time; the summary is the median")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each pair, wait up to this many seconds for other processes to leave the CPUs (0: don't)",
    )
    ap.add_argument("--workdir", default=None, help="where outputs go (default: a temporary directory)")
    ap.add_argument("--skip-plain", action="store_true", help="time the runner only (for tuning)")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file to write")
    ap.add_argument("--verbose", action="store_true", help="show the runner's progress lines")
    args = ap.parse_args(argv)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpcprep-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    # fill Numba's on-disk cache with both variants, as the first use of an installed
    # plugin does: the runner's workers then load the kernel, and nobody compiles it
    # inside a timed run
    bench_kernel.warm()
    bench_kernel.warm(readonly=True)
    try:
        pairs = [one_pair(args, work, k) for k in range(args.repeat)]
        auto = None
        if args.also_auto_commits:
            auto = one_pair(argparse.Namespace(**{**vars(args), "commit_every": 0, "skip_plain": True}), work, 98)
        untuned = None
        if args.also_core_defaults and not args.skip_plain:
            untuned = one_pair(
                argparse.Namespace(**{**vars(args), "core_defaults": True, "skip_plain": True}), work, 99
            )
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    if args.skip_plain:
        for p in pairs:
            r = p["runner"]
            print(
                f"runner_scaling (runner only): {args.records:,} records, {r['seconds']:.1f} s "
                f"({args.records / r['seconds']:,.0f}/s), cpu {r['cpu']}, stages {r['stage_seconds']}"
            )
        return 0

    ratios = sorted(p["ratio_plain_over_runner"] for p in pairs)
    median_pair = min(pairs, key=lambda p: abs(p["ratio_plain_over_runner"] - ratios[len(ratios) // 2]))
    plain_s = median_pair["seconds"]["plain_loop"]
    runner_s = median_pair["seconds"]["runner"]
    ratio = median_pair["ratio_plain_over_runner"]
    equal = all(p["outputs_equal"]["equal"] for p in pairs)
    result = {
        "benchmark": "runner_scaling",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
        },
        "versions": versions(),
        "n_records": args.records,
        "parameters": {
            "records_per_item": args.records_per_item,
            "batch_size": args.batch_size,
            "commit_every": commit_every(args),
            "commit_seconds": args.commit_seconds,
            "encoder_placement_override": placement_for(args),
            "core_defaults": args.core_defaults,
            "iterations": args.iterations,
            "kick": args.kick,
            "seed": args.seed,
            "ray_num_cpus": args.num_cpus,
            "repeat": args.repeat,
        },
        "what_is_timed": (
            "runner: hpcprep.run() on an already started local Ray (ray.init time listed apart); "
            "plain loop: generate the same chunks, run the same JIT-warmed kernel, write Parquet, one thread. "
            "Both write Parquet (runner: core parquet sink; plain: pyarrow ParquetWriter, zstd, 65536-row groups)."
        ),
        "seconds": {"plain_loop": plain_s, "runner": runner_s},
        "records_per_second": {
            "plain_loop": round(args.records / plain_s),
            "runner": round(args.records / runner_s),
        },
        "ratio_plain_over_runner": ratio,
        "ratios_all_pairs": [p["ratio_plain_over_runner"] for p in pairs],
        "outputs_equal": equal,
        "pairs": pairs,
    }
    if untuned is not None:
        u = untuned["runner"]
        u.pop("table", None)
        result["runner_with_core_defaults"] = {
            "note": "no tuning: automatic commit groups, default placement (batch_size only)",
            "seconds": round(u["seconds"], 3),
            "ratio_plain_over_runner": round(plain_s / u["seconds"], 3),
            "runner": u,
        }
    if auto is not None:
        a = auto["runner"]
        a.pop("table", None)
        one_group = min(p["runner"]["seconds"] for p in pairs)
        result["commit_overhead"] = {
            "note": "the same runner with automatic commit groups against all inputs in one group",
            "one_group_seconds": round(one_group, 3),
            "automatic_groups_seconds": round(a["seconds"], 3),
            "commit_groups": a["commit_groups"],
            "group_wall_seconds": a["group_wall_seconds"],
            "overhead_fraction": round(a["seconds"] / one_group - 1, 4),
            "runner": a,
        }
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    foreign = median_pair["runner"]["cpu"]["foreign_cores_mean"], median_pair["plain_loop"]["cpu"]["foreign_cores_mean"]
    print(
        f"runner_scaling: {args.records:,} records on {args.num_cpus} CPUs: plain loop {plain_s:.1f} s "
        f"({args.records / plain_s:,.0f}/s), runner {runner_s:.1f} s ({args.records / runner_s:,.0f}/s), "
        f"speed-up {ratio:.2f}x"
        + (f" (median of {len(pairs)}: {', '.join(f'{r:.2f}' for r in ratios)})" if len(pairs) > 1 else "")
        + (
            f"; untuned runner {untuned['runner']['seconds']:.1f} s ({plain_s / untuned['runner']['seconds']:.2f}x)"
            if untuned is not None
            else ""
        )
        + (
            f"; automatic commit groups {result['commit_overhead']['commit_groups']}: "
            f"{result['commit_overhead']['automatic_groups_seconds']:.1f} s "
            f"({100 * result['commit_overhead']['overhead_fraction']:+.1f} %)"
            if auto is not None
            else ""
        )
        + f"; other jobs used {foreign[0]:.2f}/{foreign[1]:.2f} cores; "
        f"outputs {'equal' if equal else 'DIFFER'}; {path}"
    )
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
