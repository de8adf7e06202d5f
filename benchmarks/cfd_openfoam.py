"""``cfd.openfoam``: a 1M-cell OpenFOAM case parsed and its cell centres and volumes computed, one thread.

    NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/cfd_openfoam.py [--cells-per-side 100] [--repeat 3]

The case is a graded 100 x 100 x 100 hex box made by ``blockMesh`` (written binary by
blockMesh itself; an ASCII copy by ``foamFormatConvert``), under ``build/bench_cfd_openfoam``
(made once, reused). Timed, best of ``--repeat``:

- **ours, binary / ASCII**: ``read_polymesh`` (points, faces, owner, neighbour, boundary)
  plus ``mesh_geometry`` (face centres and areas, cell centres and volumes), single thread.
  The target is 1M cells in under 2 s (binary).
- **ours, reader**: ``OpenFoamReader.read`` over the whole binary case, chunk_size 100 000,
  each batch converted to Arrow as a read task does.
- **peer: NumPy**: the same centres and volumes by ``hpcprep_cfd.openfoam.reference`` (plain
  vectorised NumPy), on the already parsed mesh; compared with our geometry kernels alone.
- **peer: OpenFOAM**: ``postProcess -func writeCellCentres`` on the binary case, wall time
  (it reads the mesh, computes the geometry and writes C, Cx, Cy, Cz in binary).

Before timing, ours and NumPy's results are checked to agree (1e-12 relative). Peak memory
is the process's peak RSS (``getrusage``) after our runs, and its RSS before them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORK = REPO / "build" / "bench_cfd_openfoam"
OPENFOAM_DIR = "/usr/share/openfoam"
TARGET_SECONDS = 2.0  # for 1M cells, binary

CONTROL_DICT = """FoamFile {{ version 2.0; format ascii; class dictionary; object controlDict; }}
application postProcess; startFrom startTime; startTime 0; stopAt endTime; endTime 0; deltaT 1;
writeControl timeStep; writeInterval 1; writeFormat {fmt}; writePrecision 17; writeCompression off;
timeFormat general; timePrecision 6;
"""
FV = {
    "fvSchemes": "FoamFile { version 2.0; format ascii; class dictionary; object fvSchemes; }\n"
    "ddtSchemes {} gradSchemes {} divSchemes {} laplacianSchemes {} interpolationSchemes {} snGradSchemes {}\n",
    "fvSolution": "FoamFile { version 2.0; format ascii; class dictionary; object fvSolution; }\n",
}
BLOCK_MESH = """FoamFile {{ version 2.0; format ascii; class dictionary; object blockMeshDict; }}
scale 1;
vertices ( (0 0 0) (2 0.2 0) (2.1 1.3 0.1) (0 1 0) (0.1 0 1) (2 0.3 1.2) (2.2 1.4 1.1) (0 1.1 1) );
blocks ( hex (0 1 2 3 4 5 6 7) ({n} {n} {n}) simpleGrading (3 0.5 2) );
edges ();
boundary ();
defaultPatch {{ name walls; type wall; }}
"""


def _env() -> dict:
    env = dict(os.environ)
    if not os.path.isfile(os.path.join(env.get("WM_PROJECT_DIR", ""), "etc", "controlDict")):
        env["WM_PROJECT_DIR"] = OPENFOAM_DIR
    return env


def _foam(tool: str, case: Path, *args: str) -> float:
    exe = shutil.which(tool)
    if exe is None:
        raise SystemExit(f"{tool} not found: install the Debian package openfoam")
    t0 = time.perf_counter()
    proc = subprocess.run([exe, "-case", str(case), *args], env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or "FOAM FATAL" in proc.stdout + proc.stderr:
        raise RuntimeError(f"{tool} failed on {case}:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return seconds


def _case(root: Path, fmt: str) -> None:
    (root / "system").mkdir(parents=True, exist_ok=True)
    (root / "0").mkdir(exist_ok=True)
    (root / "system" / "controlDict").write_text(CONTROL_DICT.format(fmt=fmt))
    for name, text in FV.items():
        (root / "system" / name).write_text(text)


def make_cases(n: int, fresh: bool = False) -> tuple[Path, Path, dict]:
    """The binary and ASCII cases of an n^3 graded box (made once); how long making them took."""
    binary, ascii_ = WORK / f"box{n}_binary", WORK / f"box{n}_ascii"
    info: dict = {}
    if fresh:
        shutil.rmtree(binary, ignore_errors=True)
        shutil.rmtree(ascii_, ignore_errors=True)
    if not (binary / "constant" / "polyMesh" / "owner").exists():
        shutil.rmtree(binary, ignore_errors=True)
        _case(binary, "binary")
        (binary / "system" / "blockMeshDict").write_text(BLOCK_MESH.format(n=n))
        info["blockMesh_seconds"] = _foam("blockMesh", binary)
    if not (ascii_ / "constant" / "polyMesh" / "owner").exists():
        shutil.rmtree(ascii_, ignore_errors=True)
        shutil.copytree(binary / "constant", ascii_ / "constant")
        _case(ascii_, "ascii")
        info["foamFormatConvert_seconds"] = _foam("foamFormatConvert", ascii_, "-constant")
    return binary, ascii_, info


def _best(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _dir_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def run(cells_per_side: int = 100, repeat: int = 3, fresh: bool = False) -> dict:

    import numba

    # One thread, also when cfd.py (whose process allows two) calls this.
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _run(cells_per_side, repeat, fresh)
    finally:
        numba.set_num_threads(threads)


def _run(cells_per_side: int, repeat: int, fresh: bool) -> dict:
    import numba
    import numpy as np
    from hpcprep.execution import to_arrow_table
    from hpcprep_cfd.openfoam import geometry, polymesh, reference
    from hpcprep_cfd.openfoam.reader import OpenFoamReader, write_box_case

    binary, ascii_, made = make_cases(cells_per_side, fresh)
    mesh_b = binary / "constant" / "polyMesh"
    mesh_a = ascii_ / "constant" / "polyMesh"

    # JIT warm-up on a tiny case, so no compile time is timed
    warm = WORK / "warm"
    if not warm.exists():
        write_box_case(str(warm), (2, 2, 2))
    m = polymesh.read_polymesh(str(warm / "constant" / "polyMesh"))
    geometry.mesh_geometry(m.points, m.face_offsets, m.face_points, m.owner, m.neighbour, m.n_cells)
    for _ in OpenFoamReader({"paths": [str(warm)]}).read(OpenFoamReader({"paths": [str(warm)]}).plan()[0]):
        pass
    rss_before = _rss_mib()

    def ours(mesh_dir: Path):
        mesh = polymesh.read_polymesh(str(mesh_dir))
        cc, cv, _, _ = geometry.mesh_geometry(
            mesh.points, mesh.face_offsets, mesh.face_points, mesh.owner, mesh.neighbour, mesh.n_cells
        )
        return mesh, cc, cv

    t_bin, (mesh, cc, cv) = _best(lambda: ours(mesh_b), repeat)
    t_parse_bin, _ = _best(lambda: polymesh.read_polymesh(str(mesh_b)), repeat)
    t_ascii, (mesh_ascii, cc_a, cv_a) = _best(lambda: ours(mesh_a), max(1, repeat - 1))
    n_cells = mesh.n_cells

    def geometry_only():
        return geometry.mesh_geometry(
            mesh.points, mesh.face_offsets, mesh.face_points, mesh.owner, mesh.neighbour, mesh.n_cells
        )

    t_geom, _ = _best(geometry_only, repeat)

    reader = OpenFoamReader({"paths": [str(binary)], "chunk_size": 100_000, "time": "none"})
    item = reader.plan()[0]

    def read_all():
        rows = 0
        for out in reader.read(item):
            rows += to_arrow_table(out).num_rows
        return rows

    t_reader, n_records = _best(read_all, repeat)
    rss_peak_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # peer 1: plain NumPy on the parsed mesh
    def numpy_geometry():
        fc, fa = reference.face_centres_areas(mesh.points, mesh.face_offsets, mesh.face_points)
        return reference.cell_centres_volumes(fc, fa, mesh.owner, mesh.neighbour, mesh.n_cells)

    t_numpy, (rc, rv) = _best(numpy_geometry, max(1, repeat - 1))
    size = float(np.linalg.norm(mesh.points.max(0) - mesh.points.min(0)))
    agree = {
        "numpy_max_rel_volume": float(np.abs(rv / cv - 1).max()),
        "numpy_max_centre_over_size": float(np.abs(rc - cc).max() / size),
        "ascii_vs_binary_max_rel_volume": float(np.abs(cv_a / cv - 1).max()),
    }
    assert agree["numpy_max_rel_volume"] < 1e-12 and agree["numpy_max_centre_over_size"] < 1e-12, agree
    assert agree["ascii_vs_binary_max_rel_volume"] < 1e-12, agree

    # peer 2: OpenFOAM itself (one run: it writes files, so best-of is not meaningful)
    for name in ("C", "Cx", "Cy", "Cz"):
        (binary / "0" / name).unlink(missing_ok=True)
    t_openfoam = _foam("postProcess", binary, "-func", "writeCellCentres")

    return {
        "benchmark": "cfd_openfoam",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu": platform.processor() or platform.machine(), "cpus": os.cpu_count()},
        "numba_threads": numba.get_num_threads(),
        "case": {
            "cells": n_cells,
            "faces": mesh.n_faces,
            "points": len(mesh.points),
            "binary_MiB": round(_dir_mib(mesh_b), 1),
            "ascii_MiB": round(_dir_mib(mesh_a), 1),
            **made,
        },
        "repeat": repeat,
        "ours_binary": {"seconds": t_bin, "cells_per_s": n_cells / t_bin, "parse_seconds": t_parse_bin},
        "ours_ascii": {"seconds": t_ascii, "cells_per_s": n_cells / t_ascii},
        "ours_geometry_only": {"seconds": t_geom, "cells_per_s": n_cells / t_geom},
        "ours_reader_to_arrow": {"seconds": t_reader, "cells_per_s": n_cells / t_reader, "records": n_records},
        "peer_numpy_geometry": {"seconds": t_numpy, "ratio_numpy_over_ours": t_numpy / t_geom},
        "peer_openfoam_writeCellCentres": {
            "seconds": t_openfoam,
            "ratio_openfoam_over_ours_binary": t_openfoam / t_bin,
            "note": "wall time of the whole postProcess run, including writing C, Cx, Cy, Cz",
        },
        "target": {
            "seconds_per_1M_cells": TARGET_SECONDS,
            "ours_binary_seconds_per_1M_cells": t_bin * 1e6 / n_cells,
            "met": t_bin * 1e6 / n_cells < TARGET_SECONDS,
        },
        "memory": {"rss_before_MiB": round(rss_before, 1), "peak_rss_after_ours_MiB": round(rss_peak_ours, 1)},
        "agreement": agree,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells-per-side", type=int, default=100, help="n for an n^3-cell box (100: 1M cells)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--fresh", action="store_true", help="make the cases again")
    args = ap.parse_args()
    result = run(args.cells_per_side, args.repeat, args.fresh)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    main()
