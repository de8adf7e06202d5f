"""Genomics kernels vs the tools scientists use, single thread, in one script run.

    .venv/bin/python benchmarks/genomics.py                 # everything, ~2-4 minutes
    .venv/bin/python benchmarks/genomics.py --only kmer_counts --copies 2

Inputs: the complete M. tuberculosis H37Rv genome from Debian ``kmer-examples`` (4.41 Mb,
``genome``) and a multi-record FASTA of ``--copies`` copies of it (``large``; the kernels see
the records joined by one ``N``, so both sides count exactly the same k-mers). Each figure
is the best of ``--repeat`` runs after a JIT warm-up; peers are timed as whole commands
(wall clock, ``-t 1``), best of ``--repeat`` on ``genome`` and of one run on ``large``.

Kernel figures are for in-memory sequences; ``jellyfish``/``kmc`` also parse the FASTA and
write their database, so the ``end_to_end`` rows add our own FASTA reading (a plain
``bytes.split``) to the kernel time for a like-for-like ratio.

Writes ``benchmarks/results/genomics.json`` and prints a summary table.

Adding a measurement: write ``def my_figure(bench: Bench) -> list[Row]`` decorated with
``@measurement`` (it is appended to ``MEASUREMENTS`` and runs in that order; ``--only``
selects by function name). ``Bench`` gives the inputs, ``bench.best(fn)``, ``bench.tool()``
and ``bench.run_tool()``; return ``Row`` objects (``ratio`` = ours / peer as a speed-up).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import hpcprep_genomics  # noqa: E402
from hpcprep_genomics import kernels as K  # noqa: E402

from tests.genomics.genome_data import mtb_genome  # noqa: E402

RESULTS = HERE / "results" / "genomics.json"


# -- framework -------------------------------------------------------------------------


@dataclass
class Row:
    """One figure: ``value`` in ``unit``; a peer and the speed-up over it if there is one."""

    name: str
    value: float
    unit: str
    input: str = ""
    target: str = ""
    peer: str = ""
    peer_seconds: float | None = None
    seconds: float | None = None
    ratio: float | None = None
    met: bool | None = None
    note: str = ""


@dataclass
class Bench:
    """Inputs and helpers shared by the measurements."""

    repeat: int
    copies: int
    work: Path
    genome_path: Path = field(init=False)
    genome: bytes = field(init=False)
    large_path: Path = field(init=False)
    large: bytes = field(init=False)

    def __post_init__(self):
        self.genome_path = mtb_genome()
        self.genome = read_fasta_joined(self.genome_path)
        text = self.genome_path.read_bytes()
        body = text[text.index(b"\n") + 1 :]
        self.large_path = self.work / f"mtb_x{self.copies}.fna"
        with open(self.large_path, "wb") as f:
            for i in range(self.copies):
                f.write(f">copy{i} M. tuberculosis H37Rv\n".encode() + body)
        self.large = read_fasta_joined(self.large_path)
        assert self.large == b"N".join([self.genome] * self.copies)

    def inputs(self):
        """``(label, path, sequence)`` for the genome and the large input."""
        return [("genome", self.genome_path, self.genome), (f"x{self.copies}", self.large_path, self.large)]

    def best(self, fn: Callable[[], object], repeat: int | None = None) -> float:
        """Best wall time of ``fn()`` over ``repeat`` runs (after one untimed run)."""
        fn()
        times = []
        for _ in range(repeat or self.repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    @staticmethod
    def tool(name: str) -> str | None:
        return shutil.which(name)

    def run_tool(self, cmd: list[str], repeat: int) -> float:
        """Best wall time of a command over ``repeat`` runs (it must succeed)."""
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, cwd=self.work)
            times.append(time.perf_counter() - t0)
        return min(times)

    def peer_repeat(self, label: str) -> int:
        return self.repeat if label == "genome" else 1


MEASUREMENTS: list[Callable[[Bench], list[Row]]] = []


def measurement(fn: Callable[[Bench], list[Row]]) -> Callable[[Bench], list[Row]]:
    """Register a measurement (runs in registration order; ``--only`` uses its name)."""
    MEASUREMENTS.append(fn)
    return fn


def read_fasta_joined(path: Path) -> bytes:
    """Sequence of all records joined by one N (so no k-mer spans two records)."""
    records = []
    for chunk in path.read_bytes().split(b">")[1:]:
        lines = chunk.split(b"\n")
        records.append(b"".join(lines[1:]).replace(b"\r", b""))
    return b"N".join(records)


# -- measurements ----------------------------------------------------------------------


def _jellyfish(bench: Bench, path: Path, k: int, canonical: bool, distinct: int, repeat: int) -> float:
    cmd = [bench.tool("jellyfish"), "count", "-m", str(k), "-s", str(max(distinct, 1024)), "-t", "1"]
    cmd += ["-o", str(bench.work / "bench.jf")] + (["-C"] if canonical else []) + [str(path)]
    return bench.run_tool(cmd, repeat)


@measurement
def kmer_counts(bench: Bench) -> list[Row]:
    """Dense counting k = 11, 12 (forward and canonical) vs ``jellyfish count -t 1``."""
    rows = []
    read_s = {label: bench.best(lambda p=path: read_fasta_joined(p)) for label, path, _ in bench.inputs()}
    for k in (11, 12):
        for canonical in (False, True):
            for label, path, seq in bench.inputs():
                arr = np.frombuffer(seq, dtype=np.uint8)
                t = bench.best(lambda a=arr, k=k, c=canonical: K.kmer_counts(a, k, canonical=c))
                name = f"kmer_counts k={k}{' canonical' if canonical else ''}"
                row = Row(name, len(seq) / t / 1e6, "Mbases/s", label, ">= 200 Mbases/s, >= 4x jellyfish", seconds=t)
                row.met = row.value >= 200
                if bench.tool("jellyfish"):
                    distinct = int(np.count_nonzero(K.kmer_counts(arr, k, canonical=canonical)))
                    row.peer = "jellyfish count -t 1" + (" -C" if canonical else "")
                    row.peer_seconds = _jellyfish(bench, path, k, canonical, distinct, bench.peer_repeat(label))
                    row.ratio = row.peer_seconds / t
                    row.met = row.value >= 200 and row.ratio >= 4
                    e2e = t + read_s[label]
                    rows.append(row)
                    row = Row(
                        name + " end_to_end",
                        len(seq) / e2e / 1e6,
                        "Mbases/s",
                        label,
                        peer=row.peer,
                        peer_seconds=row.peer_seconds,
                        seconds=e2e,
                        ratio=row.peer_seconds / e2e,
                        note="FASTA read + count",
                    )
                rows.append(row)
    return rows


@measurement
def kmer_counts_sparse(bench: Bench) -> list[Row]:
    """Sparse canonical counting k = 21 vs ``jellyfish count -t 1 -C`` and ``kmc -t1``."""
    rows = []
    for canonical in (True, False):
        for label, path, seq in bench.inputs():
            arr = np.frombuffer(seq, dtype=np.uint8)
            codes, counts = K.kmer_counts_sparse(arr, 21, canonical=canonical)
            n_kmers = int(counts.sum())
            t = bench.best(lambda a=arr, c=canonical: K.kmer_counts_sparse(a, 21, canonical=c))
            name = f"kmer_counts_sparse k=21{' canonical' if canonical else ''}"
            row = Row(name, n_kmers / t / 1e6, "M k-mers/s", label, ">= 10 M k-mers/s", seconds=t)
            row.met = row.value >= 10
            rows.append(row)
            if not canonical:
                continue  # KMC only counts canonical k-mers; one peer row set is enough
            if bench.tool("jellyfish"):
                peer_t = _jellyfish(bench, path, 21, True, codes.size, bench.peer_repeat(label))
                rows.append(
                    Row(
                        name,
                        row.value,
                        row.unit,
                        label,
                        peer="jellyfish count -t 1 -C",
                        peer_seconds=peer_t,
                        seconds=t,
                        ratio=peer_t / t,
                    )
                )
            if bench.tool("kmc"):
                kmc_tmp = bench.work / "kmc_tmp"
                kmc_tmp.mkdir(exist_ok=True)
                cmd = [
                    bench.tool("kmc"),
                    "-k21",
                    "-t1",
                    "-ci1",
                    "-cs4294967295",
                    "-fm",
                    "-hp",
                    str(path),
                    str(bench.work / "bench_kmc"),
                    str(kmc_tmp),
                ]
                peer_t = bench.run_tool(cmd, bench.peer_repeat(label))
                rows.append(
                    Row(
                        name,
                        row.value,
                        row.unit,
                        label,
                        peer="kmc -k21 -t1 -ci1 -fm",
                        peer_seconds=peer_t,
                        seconds=t,
                        ratio=peer_t / t,
                    )
                )
    return rows


@measurement
def onehot(bench: Bench) -> list[Row]:
    """One-hot uint8 (L, 4), plus float32 (4, L) with N = 0.25 for reference."""
    rows = []
    for label, _, seq in bench.inputs():
        arr = np.frombuffer(seq, dtype=np.uint8)
        t = bench.best(lambda a=arr: K.onehot(a))
        rows.append(
            Row(
                "onehot uint8 LC",
                len(seq) / t / 1e9,
                "Gbases/s",
                label,
                ">= 1.5 Gbases/s",
                seconds=t,
                met=len(seq) / t / 1e9 >= 1.5,
                note="includes allocating the output (4 bytes per base)",
            )
        )
        t = bench.best(lambda a=arr: K.onehot(a, layout="CL", dtype=np.float32, n_value=0.25))
        rows.append(Row("onehot float32 CL", len(seq) / t / 1e9, "Gbases/s", label, seconds=t))
    return rows


@measurement
def debruijn_graph(bench: Bench) -> list[Row]:
    """de Bruijn graph k = 21 and 31 (nodes, edges, counts)."""
    rows = []
    for k in (21, 31):
        for label, _, seq in bench.inputs():
            arr = np.frombuffer(seq, dtype=np.uint8)
            n_kmers = int(K.debruijn_graph(arr, k)[3].sum())
            t = bench.best(lambda a=arr, k=k: K.debruijn_graph(a, k))
            rows.append(
                Row(
                    f"debruijn_graph k={k}",
                    n_kmers / t / 1e6,
                    "M k-mers/s",
                    label,
                    ">= 5 M k-mers/s",
                    seconds=t,
                    met=n_kmers / t / 1e6 >= 5,
                )
            )
    return rows


@measurement
def small_kernels(bench: Bench) -> list[Row]:
    """The other per-base kernels on the genome, for reference (no targets)."""
    arr = np.frombuffer(bench.genome, dtype=np.uint8)
    n = arr.size
    rows = []
    for name, fn in (
        ("pack_2bit", lambda: K.pack_2bit(arr)),
        ("reverse_complement", lambda: K.reverse_complement(arr)),
        ("tokenize kmer k=6", lambda: K.tokenize(arr, "kmer", k=6)),
        ("kmer_spectrum k=6", lambda: K.kmer_spectrum(arr, 6)),
    ):
        t = bench.best(fn)
        rows.append(Row(name, n / t / 1e6, "Mbases/s", "genome", seconds=t))
    return rows


# -- driver ----------------------------------------------------------------------------


# Measurements kept in their own modules register themselves on import; they import
# this module as ``genomics``, which must be this very module when it runs as a script.
sys.modules.setdefault("genomics", sys.modules[__name__])
import genomics_gnn  # noqa: E402, F401
import genomics_reader  # noqa: E402, F401
from machine import cpu_model  # noqa: E402


def tool_version(cmd: list[str]) -> str | None:
    if not shutil.which(cmd[0]):
        return None
    out = subprocess.run(cmd, capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip().splitlines()
    return text[0] if text else None


def versions() -> dict:
    import numba

    return {
        "python": platform.python_version(),
        "hpcprep_genomics": hpcprep_genomics.__version__,
        "numba": numba.__version__,
        "numpy": np.__version__,
        "jellyfish": tool_version(["jellyfish", "--version"]),
        "kmc": tool_version(["kmc"]),
    }


def fmt(x, spec=".1f") -> str:
    return "" if x is None else format(x, spec)


def print_table(rows: list[dict]) -> None:
    head = f"{'measurement':<44} {'input':<7} {'value':>9} {'unit':<11} {'peer':<26} {'peer s':>7} {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    for r in rows:
        met = "" if r["met"] is None else (" ok" if r["met"] else " MISSED")
        print(
            f"{r['name']:<44} {r['input']:<7} {fmt(r['value'], '.2f' if r['value'] < 10 else '.1f'):>9} "
            f"{r['unit']:<11} {r['peer']:<26} {fmt(r['peer_seconds'], '.3f'):>7} {fmt(r['ratio']):>7}  "
            f"{r['target']}{met}"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    ap.add_argument("--copies", type=int, default=4, help="copies of the genome in the large input (default 4)")
    ap.add_argument("--only", nargs="*", help="measurement function names to run")
    ap.add_argument("--results", default=str(RESULTS), help="JSON file to write")
    args = ap.parse_args(argv)

    known = [m.__name__ for m in MEASUREMENTS]
    chosen = [m for m in MEASUREMENTS if not args.only or m.__name__ in args.only]
    if args.only and len(chosen) != len(args.only):
        ap.error(f"unknown measurement in {args.only}; known: {known}")

    t0 = time.perf_counter()
    K.warm_up()
    warm_s = time.perf_counter() - t0
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="hpcprep-genomics-bench-") as tmp:
        bench = Bench(repeat=args.repeat, copies=args.copies, work=Path(tmp))
        for m in chosen:
            print(f"[{m.__name__}] ...", file=sys.stderr, flush=True)
            results[m.__name__] = [asdict(r) for r in m(bench)]
        inputs = {
            "genome": {
                "path": str(bench.genome_path),
                "bases": len(bench.genome),
                "what": "M. tuberculosis H37Rv NC_000962.3, Debian kmer-examples",
            },
            f"x{args.copies}": {"bases": len(bench.large), "what": f"{args.copies} records, each the genome"},
        }
    doc = {
        "benchmark": "genomics",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu": cpu_model(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "note": "shared machine: other work may have run at the same time (see loadavg)",
        },
        "versions": versions(),
        "settings": {
            "repeat": args.repeat,
            "peer_repeat": {"genome": args.repeat, f"x{args.copies}": 1},
            "copies": args.copies,
            "threads": 1,
            "jit_warmup_s": warm_s,
            "ratio": "peer seconds / our seconds (a speed-up; > 1 means the kernel is faster)",
        },
        "inputs": inputs,
        "results": results,
    }
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(doc, indent=2) + "\n")
    tmp_out.replace(out)
    print_table([r for rows in results.values() for r in rows])
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
