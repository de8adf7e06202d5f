"""The CUDA variants against their CPU kernels on a machine with a GPU; results in ``results/gpu.json``.

    .venv/bin/python benchmarks/gpu.py prepare --inputs DIR        # where the Debian data lies
    python benchmarks/gpu.py kernels --inputs DIR [--out FILE]      # on the GPU machine
    python benchmarks/gpu.py pipelines --inputs DIR [--out FILE]    # on the GPU machine (needs Ray)

``prepare`` writes the CPU benchmark rows' inputs to DIR as plain NumPy files, so that a GPU
node without the Debian packages (or any network) measures the same work: the M. tuberculosis
H37Rv genome (``genomics.py``), the 200 distinct 350-residue CA chains (``protein.py``: 100
windows of real chains turned and moved, 100 random walks) and the DTC hull (``cfd.py``, 116 062
triangles), plus the structure and geometry files of ``pipelines.py``.

``kernels``: each CUDA kernel on those inputs, timed as a pipeline calls it, against its CPU
kernel on one thread and on all cores:

- one thread: the CPU kernel with ``numba.set_num_threads(1)``, one record after another;
- all cores: kernels with a parallel loop (the cfd ones) get every core through Numba; the
  single-threaded ones (k-mers, one-hot, contacts) run on a thread pool of one thread per core
  over the records (they release the GIL);
- GPU: the batched CUDA function, copies to and from the device included; the first call
  (which compiles) is reported apart as ``gpu_first_s``.

Every figure is the best of ``--repeat`` runs; GPU outputs are compared with the CPU's (exact for
counts, one-hot and contacts; 1e-9 relative for distances and winding numbers) and the row says
which. ``pipelines``: one pipeline per domain (``pipelines.py``'s) through ``hpcprep run`` on the
machine's local Ray, once as placed by default (the CUDA stage on the GPU) and once with that
stage forced to its CPU variant, outputs compared, after an untimed run that fills Numba's on-disk
cache (the CUDA kernels are compiled in each run's GPU actors, and that is timed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from machine import best  # noqa: E402

WINDOW = 1000  # the pipelines' window: the batched rows cut the genome into these


# -- prepare (where the Debian data lies) ---------------------------------------------------------


def prepare(inputs: Path) -> None:
    import cfd as cfd_bench
    import genomics as genomics_bench
    import pipelines
    import protein as protein_bench

    inputs.mkdir(parents=True, exist_ok=True)
    genome = genomics_bench.read_fasta_joined(genomics_bench.mtb_genome())
    np.savez_compressed(inputs / "genome.npz", genome=np.frombuffer(genome, dtype=np.uint8))
    rng = np.random.default_rng(0)
    compact = [ca for _, _, _, _, ca, _, _ in protein_bench.windows(rng, 350, 100)]
    extended = [protein_bench.random_walk(rng, 350) for _ in range(100)]
    np.save(inputs / "chains.npy", np.stack(compact + extended))
    v, f = cfd_bench.load_mesh()
    np.savez_compressed(inputs / "hull.npz", vertices=v, faces=f)
    for name, files in (("protein_files", pipelines.PROTEIN_FILES), ("cfd_files", pipelines.CFD_FILES)):
        (inputs / name).mkdir(exist_ok=True)
        for src in files:
            if src.endswith(".gz"):
                shutil.copyfile(src, inputs / name / os.path.basename(src))
            else:  # the readers take gzipped files as they are; they travel smaller
                with open(src, "rb") as fin, gzip.open(inputs / name / (os.path.basename(src) + ".gz"), "wb") as fout:
                    shutil.copyfileobj(fin, fout)
    print(f"inputs in {inputs}: {sum(p.stat().st_size for p in inputs.rglob('*') if p.is_file()) / 1e6:.1f} MB")


# -- kernels ------------------------------------------------------------------------------------


def pooled(fn, records: list, threads: int) -> list:
    """``fn`` over ``records`` on ``threads`` threads, in order (the kernels release the GIL)."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, records, chunksize=max(1, len(records) // (threads * 4))))


def split(records: list, parts: int) -> list[list]:
    """``records`` in ``parts`` consecutive batches of about equal length."""
    step = -(-len(records) // max(1, parts))
    return [records[i : i + step] for i in range(0, len(records), step)]


class Kernels:
    def __init__(self, inputs: Path, repeat: int, threads: int, small: bool):
        self.repeat, self.threads = repeat, threads
        self.genome = np.load(inputs / "genome.npz")["genome"]
        self.chains = list(np.load(inputs / "chains.npy"))
        hull = np.load(inputs / "hull.npz")
        self.v, self.f = hull["vertices"], hull["faces"]
        if small:  # a quick check of the script itself (e.g. under the CUDA simulator)
            from hpcprep_cfd.shapes import sphere

            self.genome, self.chains = self.genome[:4_000], [c[:60] for c in self.chains[:4]]
            self.v, self.f = sphere(1.0, 2)
        self.windows = [self.genome[i : i + WINDOW] for i in range(0, len(self.genome), WINDOW)]
        self.small = small
        self.rows: list[dict] = []

    def row(self, name, work, cpu1, cpu_all, gpu, check, **extra) -> None:
        """Time ``cpu1`` (one thread), ``cpu_all`` (all cores; None: same as one thread) and ``gpu``; a row
        that fails is recorded with its error and the others still run."""
        try:
            self._row(name, work, cpu1, cpu_all, gpu, check, **extra)
        except Exception as exc:
            self.rows.append({"kernel": name, "work": work, "error": traceback.format_exc()})
            print(f"{name:<34} FAILED: {type(exc).__name__}: {exc}", flush=True)

    def _row(self, name, work, cpu1, cpu_all, gpu, check, **extra) -> None:
        import numba

        numba.set_num_threads(1)
        cpu_out = cpu1()
        t1 = best(cpu1, self.repeat)
        numba.set_num_threads(self.threads)
        ta = best(cpu_all, self.repeat) if cpu_all else None
        numba.set_num_threads(1)
        t = time.perf_counter()
        gpu_out = gpu()
        first = time.perf_counter() - t
        tg = best(gpu, self.repeat)
        verdict = check(cpu_out, gpu_out)
        r = {
            "kernel": name,
            "work": work,
            "cpu_1_thread_s": round(t1, 5),
            "cpu_all_cores_s": round(ta, 5) if ta else None,
            "gpu_s": round(tg, 5),
            "gpu_first_s": round(first, 3),
            "gpu_vs_1_thread": round(t1 / tg, 2),
            "gpu_vs_all_cores": round(ta / tg, 2) if ta else None,
            "outputs": verdict,
            **extra,
        }
        self.rows.append(r)
        print(
            f"{name:<34} 1 thread {t1:8.4f} s  {self.threads} cores {ta or float('nan'):8.4f} s  GPU {tg:8.4f} s  "
            f"x{r['gpu_vs_1_thread']:<7} ({verdict})",
            flush=True,
        )

    def genomics(self) -> None:
        from hpcprep_genomics import kernels as cpu
        from hpcprep_genomics.kernels import cuda as gpu

        g, w, n = self.genome, self.windows, self.threads
        self.row(
            "kmer_counts k=12 (genome)",
            f"{len(g)} bases, one sequence",
            lambda: cpu.kmer_counts(g, 12),
            None,
            lambda: gpu.kmer_counts(g, 12),
            exact,
            note="the CPU kernel is single-threaded on one sequence",
        )
        # The batch rows' CPU side is the CPU batch kernel the encoders call on a CPU (one
        # compiled loop per batch), on one thread and on every core (a batch per thread).
        recs = cpu.join_records(w)
        for k in (4, 6):
            self.row(
                f"kmer_counts_batch k={k}",
                f"{len(w)} windows of {WINDOW} bases",
                lambda k=k: cpu.kmer_counts_batch(recs, k),
                lambda k=k: np.concatenate(pooled(lambda part: cpu.kmer_counts_batch(part, k), split(w, n), n)),
                lambda k=k: gpu.kmer_counts_batch(recs, k),
                exact_rows,
            )
        self.row(
            "onehot (genome)",
            f"{len(g)} bases",
            lambda: cpu.onehot(g),
            None,
            lambda: gpu.onehot(g),
            exact,
        )
        self.row(
            "onehot_batch",
            f"{len(w)} windows of {WINDOW} bases",
            lambda: cpu.onehot_batch(recs),
            lambda: [x for part in pooled(cpu.onehot_batch, split(w, n), n) for x in part],
            lambda: gpu.onehot_batch(recs),
            exact_rows,
        )

    def protein(self) -> None:
        from hpcprep_protein import kernels as cpu
        from hpcprep_protein.kernels import cuda as gpu

        c, n = self.chains, self.threads
        self.row(
            "contact_edges_batch 8 A",
            f"{len(c)} distinct chains of {len(c[0])} residues",
            lambda: [cpu.contact_edges(x, 8.0) for x in c],
            lambda: pooled(lambda x: cpu.contact_edges(x, 8.0), c, n),
            lambda: gpu.contact_edges_batch(c, 8.0),
            exact_tuples,
        )
        self.row(
            "distance_map_batch",
            f"{len(c)} distinct chains of {len(c[0])} residues",
            lambda: [cpu.distance_map(x) for x in c],
            lambda: pooled(cpu.distance_map, c, n),
            lambda: gpu.distance_map_batch(c),
            exact_rows,
        )

    def cfd(self) -> None:
        from hpcprep_cfd import kernels as cpu
        from hpcprep_cfd.kernels import cuda as gpu

        v, f = self.v, self.f
        rng = np.random.default_rng(1)
        lo, hi = v.min(0), v.max(0)
        pad = 0.1 * (hi - lo)
        sizes = (200,) if self.small else (50_000, 200_000)
        for size in sizes:
            p = rng.uniform(lo - pad, hi + pad, (size, 3))
            sd = lambda fn, p=p: fn(v, f, p)  # noqa: E731  tree build included, as cfd.sdf_points calls it
            self.row(
                f"signed_distance {size} points",
                f"{len(f)}-triangle hull, tree build included",
                lambda sd=sd: sd(cpu.signed_distance),
                lambda sd=sd: sd(cpu.signed_distance),
                lambda sd=sd: sd(gpu.signed_distance),
                close_distances,
            )
        p = rng.uniform(lo - pad, hi + pad, (sizes[0], 3))
        self.row(
            f"winding_number {sizes[0]} points",
            "default accuracy, tree build included",
            lambda: cpu.winding_number(v, f, p),
            lambda: cpu.winding_number(v, f, p),
            lambda: gpu.winding_number(v, f, p),
            close,
        )
        res = 6 if self.small else 128
        self.row(
            f"sdf_grid {res}^3",
            f"{len(f)}-triangle hull, tree build included",
            lambda: cpu.sdf_grid(v, f, res)[0],
            lambda: cpu.sdf_grid(v, f, res)[0],
            lambda: gpu.sdf_grid(v, f, res)[0],
            close,
        )


def exact(a, b) -> str:
    return "equal" if np.array_equal(a, b) else "DIFFER"


def exact_rows(a, b) -> str:
    return "equal" if len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True)) else "DIFFER"


def exact_tuples(a, b) -> str:
    same = len(a) == len(b) and all(
        all(np.array_equal(x, y) for x, y in zip(ta, tb, strict=True)) for ta, tb in zip(a, b, strict=True)
    )
    return "equal" if same else "DIFFER"


def close(a, b, rtol: float = 1e-9) -> str:
    a, b = np.asarray(a), np.asarray(b)
    scale = np.maximum(np.abs(a), 1e-12)
    worst = float(np.nanmax(np.abs(a - b) / scale)) if a.size else 0.0
    same_nan = np.array_equal(np.isnan(a), np.isnan(b))
    return f"{'within' if worst <= rtol and same_nan else 'BEYOND'} 1e-9 (worst {worst:.1e})"


def close_distances(a, b) -> str:
    signs = int(np.count_nonzero(np.sign(a[0]) != np.sign(b[0])))
    return f"{close(a[0], b[0])}, {signs} sign(s) differ"


def run_kernels(args) -> dict:
    bench = Kernels(args.inputs, args.repeat, args.threads, args.small)
    for domain in args.only or ("genomics", "protein", "cfd"):
        try:
            getattr(bench, domain)()
        except Exception:  # e.g. the domain's CUDA module does not import: the others still run
            bench.rows.append({"kernel": domain, "error": traceback.format_exc()})
            print(traceback.format_exc(), flush=True)
    return {"kernels": bench.rows}


# -- pipelines ----------------------------------------------------------------------------------


def run_pipelines(args) -> dict:
    import pipelines

    pipelines.PROTEIN_FILES = sorted(str(p) for p in (args.inputs / "protein_files").iterdir())
    pipelines.CFD_FILES = sorted(str(p) for p in (args.inputs / "cfd_files").iterdir())
    plain_spec = pipelines.spec_toml

    def cpu_only(domain, name, inputs, out):
        # the last encoder of each pipeline is its CUDA-capable stage
        text = plain_spec(domain, name, inputs, out)
        return text.replace("\n[[sinks]]", '[encoders.placement]\nvariant = "cpu"\n\n[[sinks]]', 1)

    rows = []
    for domain in args.only or pipelines.DOMAINS:
        work = args.work / domain
        shutil.rmtree(work, ignore_errors=True)
        units = args.units.get(domain, 1)
        pipelines.make_inputs(domain, work / "input", units)
        results = {}
        try:
            if not args.no_warm_up:
                # compiles the CPU kernels into Numba's on-disk cache, so neither timed run pays for that
                pipelines.spec_toml = cpu_only
                pipelines.run_runner(domain, work / "input", work / "warm_up", f"gpu_{domain}_warm_up")
            for mode, spec in (("cpu_only", cpu_only), ("cpu_and_gpu", plain_spec)):
                pipelines.spec_toml = spec
                results[mode] = pipelines.run_runner(domain, work / "input", work / mode, f"gpu_{domain}_{mode}")
        except (Exception, SystemExit) as exc:  # run_runner exits on a failed command: record it, go on
            rows.append({"domain": domain, "error": f"{type(exc).__name__}: {exc}"})
            print(f"[gpu pipelines] {domain}: FAILED {exc}", flush=True)
            continue
        finally:
            pipelines.spec_toml = plain_spec
        check = pipelines.check_outputs(
            pipelines.COMPARED[domain],
            results["cpu_and_gpu"].pop("table"),
            results["cpu_only"].pop("table"),
            results["cpu_only"]["rows"],
        )
        row = {
            "domain": domain,
            "units": units,
            "seconds": {m: r["seconds"] for m, r in results.items()},
            "speedup": round(results["cpu_only"]["seconds"] / results["cpu_and_gpu"]["seconds"], 2),
            "placements": {m: r["placements"] for m, r in results.items()},
            "stage_worker_seconds": {m: r["stage_worker_seconds"] for m, r in results.items()},
            "outputs_equal": check,
        }
        rows.append(row)
        print(
            f"[gpu pipelines] {domain}: CPU only {row['seconds']['cpu_only']:.1f} s, CPU + GPU "
            f"{row['seconds']['cpu_and_gpu']:.1f} s (x{row['speedup']}), outputs: {check}",
            flush=True,
        )
    return {"pipelines": rows}


# -- main ---------------------------------------------------------------------------------------


def machine() -> dict:
    info = {"cpus": os.cpu_count(), "processor": platform.processor(), "python": platform.python_version()}
    try:
        from numba import cuda

        dev = cuda.get_current_device()
        info["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        info["compute_capability"] = list(dev.compute_capability)
    except Exception as exc:  # a CPU-only machine or the simulator: say so in the results
        info["gpu"] = f"none ({type(exc).__name__})"
    import numba

    info["numba"] = numba.__version__
    return info


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("prepare", "kernels", "pipelines"))
    ap.add_argument("--inputs", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu.json")
    ap.add_argument("--only", nargs="*", choices=("genomics", "protein", "cfd"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--small", action="store_true", help="tiny inputs: check the script, not the speed")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hpcprep-gpu-bench"))
    ap.add_argument("--no-warm-up", action="store_true", help="pipelines: no untimed first run")
    ap.add_argument(
        "--units",
        type=json.loads,
        default={"genomics": 16, "protein": 20, "cfd": 4},
        help="pipelines' input size per domain, in pipelines.py's units (JSON)",
    )
    args = ap.parse_args(argv)
    if args.what == "prepare":
        prepare(args.inputs)
        return 0
    result = run_kernels(args) if args.what == "kernels" else run_pipelines(args)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    old.update(result, machine=machine(), date=datetime.now(UTC).isoformat(timespec="seconds"), repeat=args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(old, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
