"""Where embeddings and DNA should live: the same tables in Parquet, LanceDB and Feast, locally and on S3.

    .venv/bin/python benchmarks/storage.py             # default sizes (100 000 rows, d = 128 and 768)
    .venv/bin/python benchmarks/storage.py --large     # also 1 000 000 rows (S3 and Feast where the table fits: left_out)
    .venv/bin/python benchmarks/storage.py --add --rows 1000000 --dims 128 --no-s3
                                                       # measure more tables into the existing results
    .venv/bin/python benchmarks/storage.py --doc-only  # docs/storage.md again from the results file

What is measured, per store, is in ``hpcprep.storebench``'s docstring. The S3 endpoint is moto's server on
loopback and the online store Debian's redis-server on loopback, both started here and stopped at the end:
they are local stand-ins, so S3 figures show the cost of the S3 protocol path on this machine, not the
throughput of AWS. DNA windows (1 kb) of two real genomes (kmer-examples: M. tuberculosis H37Rv and
M. leprae) are stored as text and as 2-bit codes (four bases per byte and a mask of the non-ACGT positions).
Results go to ``results/storage.json``; ``docs/storage.md`` and its figures are made from that file.
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
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("LANCE_LOG", "error")  # not a warning per table created on S3
HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from hpcprep.storage import S3Options  # noqa: E402
from hpcprep.storebench import bench_table, embeddings_table  # noqa: E402
from hpcprep.storebench.document import write_document  # noqa: E402
from hpcprep.storebench.feast_store import FeastStore  # noqa: E402
from hpcprep.storebench.measure import seconds  # noqa: E402
from hpcprep.storebench.results import add_tables  # noqa: E402
from hpcprep.storebench.run import LATENT_DIM, TUNED_ROW_GROUP  # noqa: E402
from hpcprep.storebench.stores import S3_LANCE, LanceStore, ParquetStore, Place  # noqa: E402
from machine import step  # noqa: E402

from tests.conftest import free_port  # noqa: E402

RESULTS = HERE / "results" / "storage.json"
#: Tables above these sizes (Arrow bytes) leave a store out, with the reason in the results and the document.
#: moto, the S3 endpoint here, keeps every object in memory and copies the whole object for each ranged read.
S3_MAX_BYTES = 400e6
#: Feast's materialisation held about 3.3x the Arrow size of what it wrote (1.0 GB more for 100 000 x 768) and
#: Redis 2.3x it: at 1 M x 768 (3.1 GB) that and the table itself would not fit in this machine's 24 GB.
FEAST_MAX_BYTES = 1e9
DOC = REPO / "docs" / "storage.md"
BUCKET = "hpcprep-bench"
KEY, SECRET = "bench-key", "bench-secret"


def start_s3():
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name="us-east-1"
    ).create_bucket(Bucket=BUCKET)
    return server, S3Options(endpoint, KEY, SECRET, "us-east-1")


def start_redis(workdir: Path):
    exe = shutil.which("redis-server")
    if not exe:
        raise SystemExit("redis-server is not installed (make sysdeps installs it)")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return proc, f"127.0.0.1:{port}"


def stores_for(work: Path, s3: S3Options | None, redis: str | None, name: str, vector: str | None):
    """Factories of empty stores: every kind locally, Parquet and LanceDB (one index kind) on S3."""
    local = Place(str(work / name))
    out = [
        lambda: ParquetStore(local.child("pq-default"), vector, None, "parquet (pyarrow default row groups)"),
        lambda: ParquetStore(local.child("pq-tuned"), vector, TUNED_ROW_GROUP, "parquet (16 k-row groups)"),
        lambda: LanceStore(local.child("lance"), vector),
    ]
    if redis:
        out.append(lambda: FeastStore(work / name / "feast", redis, vector))
    if s3:
        remote = Place(f"s3://{BUCKET}/{name}", s3)
        out += [
            lambda: ParquetStore(remote.child("pq-default"), vector, None, "parquet (pyarrow default row groups)"),
            lambda: ParquetStore(remote.child("pq-tuned"), vector, TUNED_ROW_GROUP, "parquet (16 k-row groups)"),
            lambda: LanceStore(remote.child("lance"), vector, **S3_LANCE),
        ]
    return out


def left_out(arrow_bytes: int, s3: bool, feast: bool) -> dict[str, str]:
    """The stores a table of ``arrow_bytes`` goes without, and why (the ``--no-*`` flags, or its size)."""
    out = {}
    if not s3:
        out["s3"] = "not on S3 (--no-s3)"
    elif arrow_bytes > S3_MAX_BYTES:
        out["s3"] = (
            f"not on S3: over {S3_MAX_BYTES / 1e6:,.0f} MB of Arrow data, where moto (the S3 endpoint here) would be "
            "measured copying whole objects in memory for each ranged read"
        )
    if not feast:
        out["feast"] = "no Feast (--no-feast)"
    elif arrow_bytes > FEAST_MAX_BYTES:
        out["feast"] = (
            f"no Feast: over {FEAST_MAX_BYTES / 1e9:,.0f} GB of Arrow data, where its materialisation (about 3.3× "
            "the Arrow size of what it writes, in memory) and Redis (2.3×) would not fit beside the table in "
            "this machine's memory"
        )
    return out


def dna_tables() -> dict:
    """1 kb windows of the two genomes as text, and as 2-bit codes with their N masks."""
    from hpcprep_genomics.kernels.sequence import pack_2bit

    from tests.genomics.genome_data import leprae_genome, mtb_genome

    ids, texts, packed, masks = [], [], [], []
    for path in (mtb_genome(), leprae_genome()):
        seq = "".join(line.strip() for line in path.read_text().splitlines() if not line.startswith(">"))
        for i in range(0, len(seq) - 999, 1000):
            w = seq[i : i + 1000]
            ids.append(f"{path.stem}:{i}")
            texts.append(w)
            p, m = pack_2bit(w)
            packed.append(p.tobytes())
            masks.append(np.packbits(m).tobytes())
    return {
        "text": pa.table({"record_id": ids, "sequence": texts}),
        "2-bit": pa.table({"record_id": ids, "packed": pa.array(packed, pa.binary()), "n_mask": masks}),
    }


def bench_dna(work: Path, s3: S3Options | None) -> list[dict]:
    rows = []
    for form, table in dna_tables().items():
        places = [Place(str(work / "dna" / form))] + (
            [Place(f"s3://{BUCKET}/dna/{form.replace('-', '')}", s3)] if s3 else []
        )
        for place in places:
            for store in (
                ParquetStore(place.child("pq"), None, None, "parquet"),
                LanceStore(place.child("lance"), None),
            ):
                t_in, _ = seconds(lambda s=store, t=table: s.ingest(t))
                t_scan, got = seconds(store.scan)
                assert got.num_rows == table.num_rows
                size = store.size_bytes()
                rows.append(
                    {
                        "form": form,
                        "store": store.name,
                        "place": place.kind,
                        "windows": table.num_rows,
                        "bases": table.num_rows * 1000,
                        "size_bytes": size,
                        "bits_per_base": round(8 * size / (table.num_rows * 1000), 3),
                        "ingest_seconds": round(t_in, 3),
                        "scan_seconds": round(t_scan, 3),
                        "scan_mbases_per_s": round(table.num_rows * 1000 / 1e6 / t_scan, 1),
                    }
                )
    return rows


def machine() -> dict:
    import feast
    import lancedb
    import pyarrow

    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "pyarrow": pyarrow.__version__,
        "lancedb": lancedb.__version__,
        "feast": feast.__version__,
        "redis_server": subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[2],
        "s3": "moto server on loopback (Python, in memory)",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[100_000], help="table sizes (default 100 000)")
    ap.add_argument("--large", action="store_true", help="also 1 000 000 rows")
    ap.add_argument("--dims", type=int, nargs="+", default=[128, 768])
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--no-feast", action="store_true")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--doc-only", action="store_true", help="write the document from the results file only")
    ap.add_argument(
        "--add",
        action="store_true",
        help="add these tables to the results file (replacing ones of the same name), keep its other tables and DNA",
    )
    args = ap.parse_args()
    if args.doc_only:
        write_document(json.loads(args.results.read_text()), args.doc)
        return

    rows = sorted(set(args.rows + ([1_000_000] if args.large else [])))
    work = Path(tempfile.mkdtemp(prefix="hpcprep-storage-"))
    s3_server, s3 = start_s3() if not args.no_s3 else (None, None)
    redis_proc, redis = start_redis(work) if not args.no_feast else (None, None)
    started = time.perf_counter()
    try:
        # Untimed: the first store of the first table would pay for the process's first Parquet, Lance and
        # Feast calls (imports, thread pools, the registry).
        step("storage", "warm-up on a small table (not recorded)")
        warm = embeddings_table(2_000, 16)[0]
        bench_table(warm, stores_for(work, s3, redis, "warm-up", "vector"), "vector", n_queries=3, log=lambda m: None)
        tables = []
        for n in rows:
            for dim in args.dims:
                name = f"emb-{n}-d{dim}"
                step("storage", f"{name}: table")
                table, queries = embeddings_table(n, dim)
                skip = left_out(table.nbytes, s3 is not None, redis is not None)
                figures = bench_table(
                    table,
                    stores_for(work, None if "s3" in skip else s3, None if "feast" in skip else redis, name, "vector"),
                    "vector",
                    queries=queries,
                    n_queries=args.queries,
                    log=lambda m, name=name: step("storage", f"{name}: {m}"),
                )
                tables.append(
                    {"name": name, "rows": n, "dim": dim, "arrow_bytes": table.nbytes, "stores": figures}
                    | ({"left_out": list(skip.values())} if skip else {})
                )
        if args.add:
            run = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(time.perf_counter() - started, 1),
                "s3": s3 is not None,
                "feast": redis is not None,
                "queries": args.queries,
                "machine": machine(),
            }
            results = add_tables(json.loads(args.results.read_text()), tables, run)
        else:
            step("storage", "DNA windows as text and 2-bit")
            dna = bench_dna(work, s3)
            results = {
                "benchmark": "storage",
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "seconds": round(time.perf_counter() - started, 1),
                "parameters": {
                    "rows": rows,
                    "dims": args.dims,
                    "queries": args.queries,
                    "k": 10,
                    "latent_dim": LATENT_DIM,
                },
                "tables": tables,
                "dna": dna,
            }
    finally:
        if redis_proc:
            redis_proc.terminate()
        if s3_server:
            s3_server.stop()
        shutil.rmtree(work, ignore_errors=True)
    finish(results, args)


def finish(results: dict, args) -> None:
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    write_document(results, args.doc)
    step("storage", f"results in {args.results}, document {args.doc}")


if __name__ == "__main__":
    main()
