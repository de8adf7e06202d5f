"""Soak: `hpcprep run` over and over on all three plugins while Ray workers are killed.

For about ``--minutes`` minutes in all: each plugin's pipeline (tests/soak/workload.py)
runs once undisturbed, as the reference; then the three run in turn, each as the
``hpcprep run SPEC --overwrite`` command a user types, while a killer thread SIGKILLs a
Ray worker process that is running a task or an actor of that run (never the driver,
the raylet, the GCS or Ray's agents; see chaos.py) every 5-20 s, drawn at random. New
disturbed runs start until the time is spent, and every plugin gets at least one.

Each disturbed run must end as its reference did (compare.py): exit status 0, books
balanced with the same counts, no record lost or duplicated, the output identical row
by row and column by column. The RSS of the driver and of every Ray worker is sampled
each second. The JSON (``--results``) holds the figures; the exit status is 1 when any
run failed, lost, duplicated, differed or did not balance, 2 when a reference run failed.

    .venv/bin/python tests/soak/soak.py --minutes 10          # make soak MINUTES=10
    .venv/bin/python tests/soak/soak.py --minutes 2 --only genomics --kinds tasks,actors
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import chaos  # noqa: E402
from chaos import Killer, Watch, worker_name  # noqa: E402
from compare import compare, read_run  # noqa: E402
from machine import Monitor, cpu_model, tail  # noqa: E402
from workload import DOMAINS, make_inputs, spec_toml  # noqa: E402

#: --kinds choices -> chaos.kind() groups
KINDS = {
    "tasks": {chaos.TASK},
    "actors": {chaos.ACTOR},
    "runstats": {chaos.BOOKS},
    "ray-data": {chaos.RAY_DATA},
}


def say(text: str) -> None:
    print(text, flush=True)


def hpcprep_command() -> str:
    here = Path(sys.executable).parent / "hpcprep"
    return str(here) if here.exists() else (shutil.which("hpcprep") or "hpcprep")


def run_once(spec: Path, log: Path, killer_args: dict | None, timeout: float) -> dict:
    """One ``hpcprep run SPEC --overwrite``; with ``killer_args``, under the killer. A run
    still going after ``timeout`` seconds is taken as hung and its driver killed (hpcprep's
    reaper then stops its Ray)."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    t0 = time.monotonic()
    hung = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [hpcprep_command(), "run", str(spec), "--overwrite", "--quiet", "--keep-ray", "0"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        watch = Watch(proc.pid).start()
        killer = Killer(watch, log=say, **killer_args).start(t0) if killer_args else None
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            hung = True
            proc.kill()
            rc = proc.wait()
    seconds = time.monotonic() - t0
    if killer:
        killer.stop()
    watch.stop()
    return {
        "returncode": rc,
        "hung": hung,
        "seconds": round(seconds, 1),
        "rss": watch.rss(),
        "kills": killer.kills if killer else [],
        "processes_left_behind": watch.left_behind(),
    }


def mib(rss: dict) -> dict:
    return {k: round(v / 2**20, 1) for k, v in rss.items()}


def merge_rss(runs: list[dict]) -> dict:
    """Min/max over all runs' samples, in MiB."""
    out = {}
    for part in ("driver", "worker", "workers_total"):
        found = [r["rss"][part] for r in runs if r["rss"]["samples"] and r["rss"][part]["max"]]
        out[part] = mib(
            {"min": min((f["min"] for f in found), default=0), "max": max((f["max"] for f in found), default=0)}
        )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="time for the whole soak, reference runs included")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every workload's inputs by this")
    ap.add_argument("--kill-every", default="5-20", help="seconds between kills, LOW-HIGH, drawn uniformly")
    ap.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"which workers may be killed, comma-separated of {', '.join(KINDS)} (default: all)",
    )
    ap.add_argument("--only", default=",".join(DOMAINS), help="plugins to run, comma-separated")
    ap.add_argument("--seed", type=int, default=None, help="seed of the kill times and targets (default: random)")
    ap.add_argument("--run-timeout", type=float, default=3600.0, help="seconds after which any run counts as hung")
    ap.add_argument("--workdir", default=str(ROOT / "build" / "soak"))
    ap.add_argument("--results", default=None, help="JSON written here (default: WORKDIR/soak.json)")
    args = ap.parse_args(argv)

    t0 = time.monotonic()
    deadline = t0 + args.minutes * 60
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    low, high = (float(x) for x in args.kill_every.split("-"))
    chosen = [k.strip() for k in args.kinds.split(",") if k.strip()]
    domains = [d.strip() for d in args.only.split(",") if d.strip()]
    unknown = [k for k in chosen if k not in KINDS] + [d for d in domains if d not in DOMAINS]
    if unknown or not chosen or not domains:
        ap.error(f"--kinds takes {', '.join(KINDS)}; --only takes {', '.join(DOMAINS)} (unknown: {unknown})")
    kinds = set().union(*(KINDS[k] for k in chosen))
    work = Path(args.workdir).absolute()
    results = Path(args.results) if args.results else work / "soak.json"
    for old in ("inputs", "logs"):  # an earlier soak's, which this one's would mix with
        shutil.rmtree(work / old, ignore_errors=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    monitor = Monitor(interval=2.0).start()
    say(
        f"[soak] {args.minutes:g} min, plugins {', '.join(domains)}, a kill every {low:g}-{high:g} s "
        f"(seed {seed}), on {os.cpu_count()} CPUs, load average {load_before[0]:.1f}; {work}"
    )

    refs: dict[str, dict] = {}
    workloads: dict[str, dict] = {}
    for domain in domains:
        inputs = make_inputs(domain, work / "inputs" / domain, args.scale)
        files = sorted(p for p in inputs.iterdir() if p.is_file())
        for name, out in (("calm", work / "calm" / domain), ("hit", work / "hit" / domain)):
            (work / f"{domain}_{name}.toml").write_text(spec_toml(domain, inputs, out))
        say(f"[soak] {domain}: undisturbed reference run ({len(files)} input files) ...")
        ref = run_once(work / f"{domain}_calm.toml", work / "logs" / f"{domain}_calm.log", None, args.run_timeout)
        calm = read_run(work / "calm" / domain)
        m = calm["manifest"]
        if ref["returncode"] != 0 or m is None or not m["counts"].get("balanced") or calm["table"] is None:
            say(f"[soak] the undisturbed {domain} run failed (exit {ref['returncode']}); its log ends:")
            say(tail(str(work / "logs" / f"{domain}_calm.log")))
            return 2
        refs[domain] = calm
        workloads[domain] = {
            "input_files": len(files),
            "input_bytes": sum(p.stat().st_size for p in files),
            "counts": m["counts"],
            "commit_groups": m["groups"]["committed"],
            "undisturbed_seconds": ref["seconds"],
            "undisturbed_rss_mib": merge_rss([ref]),
        }
        say(f"[soak]   {m['counts']} in {ref['seconds']:.0f} s, {m['groups']['committed']} commit groups")

    runs: list[dict] = []
    i = 0
    while time.monotonic() < deadline or i < len(domains):
        domain = domains[i % len(domains)]
        i += 1
        log = work / "logs" / f"{domain}_hit{i:03d}.log"
        left = (deadline - time.monotonic()) / 60
        say(f"[soak] run {i}: {domain} with kills ({f'{left:.1f} min left' if left > 0 else 'time is up'})")
        # a run that takes five times its reference (and at least 10 min) is taken as hung
        timeout = max(600.0, 5 * workloads[domain]["undisturbed_seconds"])
        killer_args = {"rng": rng, "low": low, "high": high, "kinds": kinds}
        r = run_once(work / f"{domain}_hit.toml", log, killer_args, min(timeout, args.run_timeout))
        check = compare(refs[domain], read_run(work / "hit" / domain), r["returncode"])
        if r["hung"]:
            check["problems"].insert(0, f"hung: killed after {r['seconds']:.0f} s")
        if r["processes_left_behind"]:
            check["problems"].append(f"processes of the run still alive after it: {r['processes_left_behind']}")
        check["ok"] = not check["problems"]
        busy = sum(k["busy"] for k in r["kills"])
        runs.append({"run": i, "domain": domain, **r, **check, "log": str(log)})
        verdict = "ok" if check["ok"] else "FAILED: " + "; ".join(check["problems"])
        say(
            f"[soak]   {r['seconds']:.0f} s, {len(r['kills'])} kills ({busy} busy), {check['records']} records, "
            f"lost {check['lost']}, duplicated {check['duplicated']}, identical {check['identical']}: {verdict}"
        )
        if not check["ok"]:
            say(f"[soak]   the log ({log}) ends:\n" + tail(str(log), 20))

    seconds = time.monotonic() - t0
    monitor.stop()
    kills = [k for r in runs for k in r["kills"]]
    by_kind: dict[str, dict] = {}
    for k in kills:
        entry = by_kind.setdefault(k["kind"], {"delivered": 0, "busy": 0, "actors": {}})
        entry["delivered"] += 1
        entry["busy"] += k["busy"]
        if k["kind"] in (chaos.BOOKS, chaos.RAY_DATA):  # which of Ray's or hpcprep's named actors
            name = worker_name(k["process"])
            entry["actors"][name] = entry["actors"].get(name, 0) + 1
    failed = [r for r in runs if not r["ok"]]
    summary = {
        "soak": "hpcprep run under random SIGKILLs of Ray workers (tests/soak/soak.py)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpu_model": cpu_model(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            # other jobs' CPU use while the soak ran (machine.Monitor: busy CPU not ours)
            "other_jobs": monitor.report(seconds),
        },
        "minutes_requested": args.minutes,
        "minutes": round(seconds / 60, 2),
        "seed": seed,
        "kill_every_s": [low, high],
        "kinds_targeted": sorted(kinds),
        "scale": args.scale,
        "workloads": workloads,
        "runs": len(runs),
        "runs_by_plugin": {d: sum(r["domain"] == d for r in runs) for d in domains},
        "records_processed": sum(r["records"] for r in runs),
        "kills_delivered": len(kills),
        "kills_busy": sum(k["busy"] for k in kills),
        "kills_by_kind": by_kind,
        "rss_mib": merge_rss(runs),
        "lost": sum(r["lost"] for r in runs),
        "duplicated": sum(r["duplicated"] for r in runs),
        "identical": [r["identical"] for r in runs],
        # runs that wrote a manifest whose books do not balance (a run that failed before
        # its first commit writes none: it is among the failed runs)
        "unbalanced": sum(bool(r["counts"]) and not r["counts"].get("balanced") for r in runs),
        "lost_in_runs_that_exited_0": sum(r["lost"] for r in runs if r["returncode"] == 0),
        "failed_runs": [
            {
                "run": r["run"],
                "domain": r["domain"],
                "exit": r["returncode"],
                "problems": r["problems"],
                "log": r["log"],
            }
            for r in failed
        ],
        "passed": not failed,
        "per_run": runs,
    }
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(summary, indent=1) + "\n")

    rss = summary["rss_mib"]
    say(
        f"\n[soak] {summary['minutes']:.1f} min, {len(runs)} disturbed runs "
        f"({', '.join(f'{n} {d}' for d, n in summary['runs_by_plugin'].items())}), "
        f"{summary['records_processed']} records"
    )
    say(f"[soak] kills delivered {len(kills)}, {summary['kills_busy']} of them on a busy worker:")
    for name, entry in sorted(by_kind.items()):
        which = f": {entry['actors']}" if entry["actors"] else ""
        say(f"[soak]   {entry['delivered']:4d} {name}, {entry['busy']} busy{which}")
    say(
        f"[soak] RSS MiB: driver {rss['driver']['min']:.0f}-{rss['driver']['max']:.0f}, one worker "
        f"{rss['worker']['min']:.0f}-{rss['worker']['max']:.0f}, all workers "
        f"{rss['workers_total']['min']:.0f}-{rss['workers_total']['max']:.0f}"
    )
    say(
        f"[soak] lost {summary['lost']}, duplicated {summary['duplicated']}, identical "
        f"{sum(summary['identical'])}/{len(runs)}, unbalanced {summary['unbalanced']}, failed {len(failed)}: "
        f"{'PASSED' if not failed else 'FAILED'}; {results}"
    )
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
