"""CFD benchmarks, one thread each, peers in the same run; results in ``benchmarks/results/cfd.json``.

    .venv/bin/python benchmarks/cfd.py                 # all sections, a few minutes
    .venv/bin/python benchmarks/cfd.py --kernels-only  # the spatial kernels against libigl

Sections: ``kernels`` (below), ``mesh`` (``cfd_mesh.py``: sampling, health, repair, voxels and
descriptors against trimesh) and ``openfoam`` (``cfd_openfoam.py``: the polyMesh reader on a
1M-cell blockMesh case against a NumPy implementation and OpenFOAM's own postProcess).

Mesh: ``DTC-scaled.stl.gz`` from Debian ``openfoam-examples`` (the DTC container-ship hull of the tutorials,
116 062 triangles, closed and outward), loaded with trimesh. Rows (section ``kernels`` of
``benchmarks/results/cfd.json``):

- ``build_bvh``: seconds to build the hierarchy (counted inside every other row that does not pass ``bvh=``);
- ``signed_distance``: points/s on ``--points`` random points in the bounding box padded by 10%, prebuilt BVH, vs
  ``igl.signed_distance(..., sign_type=SIGNED_DISTANCE_TYPE_WINDING_NUMBER)`` on the first ``--peer-points``;
- ``unsigned_distance``: points/s vs ``igl.point_mesh_squared_distance`` (which also builds its tree per call);
- ``winding_number``: hierarchical, our default accuracy (1.6, third-order expansion) points/s vs libigl's prebuilt
  ``FastWindingNumberBVH`` at its default ``accuracy_scale`` 2 (second order), with both errors against the exact
  winding number on 2000 points; ``winding_number_2``: the same with accuracy 2 on both sides;
- ``sdf_grid_128``: seconds for a 128^3 grid (BVH build included) vs libigl point queries
  (``signed_distance``, winding-number sign) on four evenly spaced x-slabs of the same nodes, extrapolated to the
  grid; the slab nodes are also compared (magnitude and sign) with our grid.

Threads: ours runs with ``numba.set_num_threads(1)`` (2 threads reported apart, for information). libigl's Python
binding parallelises with ``igl::parallel_for``, whose thread count comes from ``igl::default_num_threads()``: it
reads the environment variable ``IGL_NUM_THREADS`` on its first call and caches it (else
``std::thread::hardware_concurrency()``), so this script sets ``IGL_NUM_THREADS=1`` before importing igl.
Times are the best of ``--repeat`` wall-clock runs. Peak memory is ``ru_maxrss`` of this process.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ["IGL_NUM_THREADS"] = "1"
os.environ.setdefault("NUMBA_NUM_THREADS", "2")

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import igl  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import trimesh  # noqa: E402
from hpcprep_cfd.kernels.bvh import build_bvh  # noqa: E402
from hpcprep_cfd.kernels.distance import signed_distance, unsigned_distance  # noqa: E402
from hpcprep_cfd.kernels.grid import sdf_grid  # noqa: E402
from hpcprep_cfd.kernels.reference_spatial import grid_nodes  # noqa: E402
from hpcprep_cfd.kernels.winding import DEFAULT_ACCURACY, winding_number  # noqa: E402

from tests.cfd.data import GEOMETRY  # noqa: E402

RESULTS = HERE / "results" / "cfd.json"
MESH = "DTC-scaled.stl.gz"


def best(fn, repeat):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def load_mesh():
    with gzip.open(GEOMETRY / MESH) as fh:
        m = trimesh.load(fh, file_type="stl", force="mesh")
    return np.ascontiguousarray(m.vertices, dtype=np.float64), np.ascontiguousarray(m.faces, dtype=np.int64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--peer-points", type=int, default=20_000)
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--kernels-only", action="store_true", help="only the spatial kernels against libigl")
    args = ap.parse_args()

    v, f = load_mesh()
    rng = np.random.default_rng(0)
    lo, hi = v.min(axis=0), v.max(axis=0)
    ext = hi - lo
    pts = lo - 0.1 * ext + rng.random((args.points, 3)) * 1.2 * ext
    peer_pts = pts[: args.peer_points]

    # JIT warm-up (cached on disk after the first run) on a tiny mesh, then the real tree.
    numba.set_num_threads(1)
    tiny = build_bvh(v[f[:50]].reshape(-1, 3), np.arange(150).reshape(-1, 3))
    del tiny
    signed_distance(v[:3], [[0, 1, 2]], pts[:5])
    winding_number(v[:3], [[0, 1, 2]], pts[:5])
    sdf_grid(v[:3], [[0, 1, 2]], 4)
    t_build = best(lambda: build_bvh(v, f), args.repeat)
    bvh = build_bvh(v, f)

    rows = {"build_bvh": {"seconds": t_build, "triangles": len(f)}}

    def per_thread_rates(fn, n):
        out = {}
        for threads in (1, 2):
            numba.set_num_threads(threads)
            out[threads] = n / best(fn, args.repeat)
        numba.set_num_threads(1)
        return out

    # signed distance
    sd = per_thread_rates(lambda: signed_distance(v, f, pts, bvh=bvh), len(pts))
    t_igl = best(lambda: igl.signed_distance(peer_pts, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER), 1)
    s_ours, _, _ = signed_distance(v, f, peer_pts, bvh=bvh)
    s_igl, _, _, _ = igl.signed_distance(peer_pts, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)
    rows["signed_distance"] = {
        "points_per_s": sd[1],
        "points_per_s_2_threads": sd[2],
        "peer": "igl.signed_distance, winding-number sign",
        "peer_points_per_s": len(peer_pts) / t_igl,
        "ratio": sd[1] * t_igl / len(peer_pts),
        "max_abs_diff_vs_peer": float(np.abs(s_ours - s_igl).max()),
        "sign_disagreements": int(((s_ours < 0) != (s_igl < 0)).sum()),
    }

    # unsigned distance
    ud = per_thread_rates(lambda: unsigned_distance(v, f, pts, bvh=bvh), len(pts))
    t_igl = best(lambda: igl.point_mesh_squared_distance(peer_pts, v, f), 1)
    rows["unsigned_distance"] = {
        "points_per_s": ud[1],
        "points_per_s_2_threads": ud[2],
        "peer": "igl.point_mesh_squared_distance (tree built per call)",
        "peer_points_per_s": len(peer_pts) / t_igl,
        "ratio": ud[1] * t_igl / len(peer_pts),
    }

    # winding number: ours at its default accuracy against libigl at its default, then both at 2
    fwn = igl.FastWindingNumberBVH()
    fwn.init(v, f)
    check = pts[:2000]
    exact = winding_number(v, f, check, accuracy=None, bvh=bvh)

    def winding_row(ours, peer):
        rates = per_thread_rates(lambda: winding_number(v, f, pts, accuracy=ours, bvh=bvh), len(pts))
        t_peer = best(lambda: fwn.winding_number(pts, peer), args.repeat)
        return {
            "points_per_s": rates[1],
            "points_per_s_2_threads": rates[2],
            "accuracy": ours,
            "max_abs_error": float(np.abs(winding_number(v, f, check, accuracy=ours, bvh=bvh) - exact).max()),
            "peer": f"igl.FastWindingNumberBVH.winding_number (prebuilt, accuracy_scale {peer:g})",
            "peer_accuracy": peer,
            "peer_points_per_s": len(pts) / t_peer,
            "peer_max_abs_error": float(np.abs(fwn.winding_number(check, peer) - exact).max()),
            "ratio": rates[1] * t_peer / len(pts),
        }

    rows["winding_number"] = winding_row(DEFAULT_ACCURACY, 2.0)
    rows["winding_number_2"] = winding_row(2.0, 2.0)

    # sdf grid
    n = args.grid
    grid_t = {}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        grid_t[threads] = best(lambda: sdf_grid(v, f, n), args.repeat)
    numba.set_num_threads(1)
    g, origin, spacing = sdf_grid(v, f, n)
    slabs = np.linspace(0, n - 1, 4).round().astype(int)
    nodes = grid_nodes(g.shape, origin, spacing).reshape(n, n, n, 3)[slabs].reshape(-1, 3)
    t0 = time.perf_counter()
    s_igl, _, _, _ = igl.signed_distance(nodes, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_WINDING_NUMBER)
    t_slabs = time.perf_counter() - t0
    t_igl_grid = t_slabs * g.size / len(nodes)
    ours = g[slabs].reshape(-1)
    rows[f"sdf_grid_{n}"] = {
        "seconds": grid_t[1],
        "seconds_2_threads": grid_t[2],
        "nodes": int(g.size),
        "peer": "igl.signed_distance (winding-number sign) per node, timed on 4 x-slabs, extrapolated",
        "peer_seconds": t_igl_grid,
        "ratio": t_igl_grid / grid_t[1],
        "max_abs_diff_vs_peer_on_slabs": float(np.abs(ours - s_igl).max()),
        "sign_disagreements_on_slabs": int(((ours < 0) != (s_igl < 0)).sum()),
    }

    section = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "mesh": f"openfoam-examples {MESH} ({len(f)} triangles)",
        "threads": 1,
        "igl_threads": "IGL_NUM_THREADS=1 (read by igl::default_num_threads on first use)",
        "libigl": _version("libigl"),
        "numba": numba.__version__,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rows": rows,
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not isinstance(results, dict):
        results = {}
    results["kernels"] = section
    if not args.kernels_only:
        # The other sections, from their own modules: mesh kernels against trimesh, and the
        # OpenFOAM reader on a 1M-cell blockMesh case against NumPy and postProcess.
        import cfd_mesh
        import cfd_openfoam

        results["mesh"] = cfd_mesh.run(repeat=args.repeat)
        results["openfoam"] = cfd_openfoam.run(repeat=args.repeat)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    print(f"{'row':<20} {'ours':>14} {'ours 2 thr':>14} {'peer':>14} {'ratio':>7}")
    for name, r in rows.items():
        if "points_per_s" in r:
            print(
                f"{name:<20} {r['points_per_s']:>10,.0f} p/s {r['points_per_s_2_threads']:>10,.0f} p/s "
                f"{r['peer_points_per_s']:>10,.0f} p/s {r['ratio']:>6.1f}x"
            )
        elif "peer_seconds" in r:
            print(
                f"{name:<20} {r['seconds']:>12.2f} s {r['seconds_2_threads']:>12.2f} s "
                f"{r['peer_seconds']:>12.1f} s {r['ratio']:>6.1f}x"
            )
        else:
            print(f"{name:<20} {r['seconds']:>12.3f} s")
    for key in ("winding_number", "winding_number_2"):
        r = rows[key]
        print(
            f"winding max error: ours (accuracy {r['accuracy']:g}) {r['max_abs_error']:.2g}, "
            f"libigl (accuracy {r['peer_accuracy']:g}) {r['peer_max_abs_error']:.2g}"
        )
    print(f"peak RSS {section['peak_rss_mib']:.0f} MiB")


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
