"""What a crash costs: the genomics light pipeline of ``pipelines.py`` (FASTA -> 1 kb
windows -> k-mer counts -> Parquet) run to the end, then run again and its driver
killed (kill -9) once 60 % of the inputs are committed, then ``--resume``d.

The driver is killed at ``--at`` (60 %) of the undisturbed run's time. Reports: the
undisturbed run's seconds, the work lost to the kill (from the last
commit to the kill: the group under way), the resumed run's seconds, the Ray processes
of the killed run still alive after it, and whether the resumed output equals the
undisturbed one. Default commit sizing (the core's ``run.commit_seconds``).

    python benchmarks/crash_resume.py [--records 3200] [--links 2] [--at 0.6]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hpcprep.reaper import alive, descendants  # noqa: E402
from machine import cpu_model, step  # noqa: E402
from output_check import check_digests  # noqa: E402
from pipelines import COMPARED, hpcprep_command, make_genomics, spec_toml  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "crash_resume.json"


def committed(out: Path) -> list[dict]:
    path = out / "_state" / "commits.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines() if x] if path.exists() else []


def run(cmd: list[str], log: Path) -> float:
    t = time.perf_counter()
    with open(log, "w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=3200, help="2 Mb FASTA records (3200: the pipelines' large size)")
    ap.add_argument("--links", type=int, default=2, help="each FASTA file is an input this many times (links)")
    ap.add_argument("--at", type=float, default=0.6, help="kill the driver at this share of the undisturbed time")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--results", default=str(RESULTS))
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpcprep-crash-"))
    files = work / "files"
    if not files.exists():
        make_genomics(files, args.records)
    # the same files under other names: more work, not more disk
    inputs = work / f"input{args.links}"
    if not inputs.exists():
        inputs.mkdir()
        for k in range(args.links):
            for f in sorted(files.glob("*.fa")):
                (inputs / f"l{k}_{f.name}").symlink_to(f)
    hpcprep = hpcprep_command()
    env_note = {"RAY_USAGE_STATS_ENABLED": os.environ.get("RAY_USAGE_STATS_ENABLED")}

    calm_out, hit_out = work / "calm", work / "hit"
    for name, out in (("calm", calm_out), ("hit", hit_out)):
        (work / f"{name}.toml").write_text(spec_toml("genomics", f"crash_{name}", inputs.absolute(), out.absolute()))
    step("crash_resume", f"the undisturbed run over {len(list(inputs.iterdir()))} inputs")
    calm_seconds = run([hpcprep, "run", str(work / "calm.toml"), "--overwrite", "--keep-ray", "0"], work / "calm.log")
    step("crash_resume", f"undisturbed {calm_seconds:.1f} s; the run killed at {args.at:.0%} of that, then --resume")
    calm = json.loads((calm_out / "manifest.json").read_text())
    n_inputs = len(calm["inputs"])

    log = open(work / "hit.log", "w")
    t0 = time.perf_counter()
    driver = subprocess.Popen(
        [hpcprep, "run", str(work / "hit.toml"), "--overwrite", "--keep-ray", "0"], stdout=log, stderr=subprocess.STDOUT
    )
    ray_procs: set[int] = set()
    last_commit_at = t0
    seen = 0
    while time.perf_counter() - t0 < args.at * calm_seconds:
        if driver.poll() is not None:
            raise SystemExit(f"the run ended (exit {driver.returncode}) before {args.at:.0%} of its time")
        ray_procs |= descendants(driver.pid)
        commits = committed(hit_out)
        if len(commits) > seen:
            seen, last_commit_at = len(commits), time.perf_counter()
        time.sleep(0.2)
    commits = committed(hit_out)
    if len(commits) > seen:
        last_commit_at = time.perf_counter()
    done = max((c["inputs"][1] for c in commits), default=0)
    running = json.loads((hit_out / "_state" / "running.json").read_text())
    ray_procs |= descendants(driver.pid)
    killed_at = time.perf_counter()
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    lost_seconds = killed_at - last_commit_at
    time.sleep(10)
    left = sorted(p for p in ray_procs if alive(p))

    resume_seconds = run([hpcprep, "run", str(work / "hit.toml"), "--resume", "--keep-ray", "0"], work / "resume.log")
    hit = json.loads((hit_out / "manifest.json").read_text())
    check = check_digests(
        str(hit_out / "table"), str(calm_out / "table"), calm["counts"]["outputs"], COMPARED["genomics"]
    )
    result = {
        "benchmark": "crash_resume",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model()},
        "pipeline": "genomics light: FASTA -> 1 kb windows -> kmer_counts k=4 -> Parquet (benchmarks/pipelines.py)",
        "records": args.records,
        "links": args.links,
        "inputs": n_inputs,
        "commit_seconds": calm["spec"]["run"].get("commit_seconds"),
        "undisturbed": {"seconds": round(calm_seconds, 1), "commit_groups": calm["groups"]["committed"]},
        "killed_after_seconds": round(killed_at - t0, 1),
        "inputs_committed_at_kill": done,
        "group_under_way": running,
        "work_lost_seconds": round(lost_seconds, 1),
        "ray_processes_of_killed_run": len(ray_procs),
        "ray_processes_left_alive_10s_after_kill": left,
        "resume": {"seconds": round(resume_seconds, 1), "commit_groups": hit["groups"]["committed"]},
        "books": hit["counts"],
        "outputs_equal_to_undisturbed": check,
        "env": env_note,
    }
    path = Path(args.results)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)  # inputs and outputs: about 20 GB by default
    print(
        f"crash_resume: undisturbed {calm_seconds:.0f} s in {calm['groups']['committed']} groups; killed at "
        f"{killed_at - t0:.0f} s with {done}/{n_inputs} inputs committed, {lost_seconds:.0f} s of work lost; "
        f"{len(left)} Ray processes left; resumed in {resume_seconds:.0f} s; books "
        f"{'balanced' if hit['counts']['balanced'] else 'NOT balanced'}; outputs "
        f"{'equal' if check.get('equal') else 'DIFFER'}; {path}"
    )
    return 0 if check.get("equal") and not left and hit["counts"]["balanced"] else 1


if __name__ == "__main__":
    sys.exit(main())
