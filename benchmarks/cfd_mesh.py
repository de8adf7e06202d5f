"""Mesh kernels of hpcprep-cfd vs trimesh, single thread each, in one process.

    .venv/bin/python benchmarks/cfd_mesh.py

- ``sample_surface``: points/s on a ~100k-triangle torus vs ``trimesh.sample.sample_surface``.
- ``voxelize``: 128^3 occupancy and volume fraction (4 x 4 rays per cell) of the same torus (no peer: trimesh's
  ray-based ``contains`` needs rtree, and its voxeliser fills a surface shell instead of testing parity).
- ``mesh_health`` vs trimesh computing the same facts on a fresh ``Trimesh`` (``is_watertight``,
  ``is_winding_consistent``, ``volume``, ``area``, ``body_count``, ``bounds``); ``repair`` and
  ``shape_descriptor`` timed alone.
- Peak memory: the process's peak resident set size after each phase (``ru_maxrss``; it only grows).

``run()`` returns a dict (the lead merges it into ``benchmarks/cfd.py``'s results); run as a script it prints it.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def torus(major=1.0, minor=0.35, n=320, m=160):
    """Closed, outward torus with 2 n m triangles (102,400 by default)."""
    u = np.linspace(0, 2 * np.pi, n, endpoint=False)
    w = np.linspace(0, 2 * np.pi, m, endpoint=False)
    uu, ww = np.meshgrid(u, w, indexing="ij")
    r = major + minor * np.cos(ww)
    v = np.stack([r * np.cos(uu), r * np.sin(uu), minor * np.sin(ww)], -1).reshape(-1, 3)
    idx = np.arange(n * m).reshape(n, m)
    a, b = idx, np.roll(idx, -1, 0)
    c, d = np.roll(b, -1, 1), np.roll(a, -1, 1)
    f = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([a, c, d], -1).reshape(-1, 3)])
    return v, f


def best(fn, repeat):
    """Best wall time and best process CPU time of ``repeat`` calls. On a shared machine the CPU time is the
    steadier figure (single thread: CPU time ~ wall time when the core is not contended)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run(repeat: int = 3, n_points: int = 1_000_000) -> dict:
    import trimesh
    from hpcprep_cfd.kernels.descriptor import shape_descriptor
    from hpcprep_cfd.kernels.health import mesh_health
    from hpcprep_cfd.kernels.repair import repair
    from hpcprep_cfd.kernels.sampling import sample_surface
    from hpcprep_cfd.kernels.voxels import voxelize

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        v, f = torus()
        out = {"mesh": {"kind": "torus", "n_vertices": len(v), "n_faces": len(f)}, "threads": 1}
        # Warm-up: JIT (or cache load) outside the timings.
        sample_surface(v, f, 10, seed=0)
        voxelize(v, f, 8)
        voxelize(v, f, 8, fraction=True)
        mesh_health(v, f)
        repair(v, f[:10])
        shape_descriptor(v, f, samples=64)
        out["peak_rss_mib_after_warmup"] = peak_rss_mib()

        t_ours = best(lambda: sample_surface(v, f, n_points, seed=1), repeat)
        mesh = trimesh.Trimesh(v, f, process=False)
        t_tm = best(lambda: trimesh.sample.sample_surface(mesh, n_points, seed=1), repeat)
        out["sample_surface"] = {
            "points": n_points,
            "ours_points_per_s": n_points / t_ours[0],
            "ours_points_per_cpu_s": n_points / t_ours[1],
            "trimesh_points_per_s": n_points / t_tm[0],
            "trimesh_points_per_cpu_s": n_points / t_tm[1],
            "speedup_vs_trimesh": t_tm[0] / t_ours[0],
            "speedup_vs_trimesh_cpu": t_tm[1] / t_ours[1],
            "peak_rss_mib": peak_rss_mib(),
        }

        t_occ = best(lambda: voxelize(v, f, 128), repeat)
        t_frac = best(lambda: voxelize(v, f, 128, fraction=True, subsamples=4), repeat)
        frac, _, spacing = voxelize(v, f, 128, fraction=True, subsamples=4)
        volume = mesh_health(v, f)["signed_volume"]
        out["voxelize_128"] = {
            "occupancy_s": t_occ[0],
            "occupancy_cpu_s": t_occ[1],
            "fraction_s": t_frac[0],
            "fraction_cpu_s": t_frac[1],
            "fraction_rays": (128 * 4) ** 2,
            "fraction_volume_rel_error": float(frac.astype(np.float64).sum() * spacing.prod() / volume - 1),
            "peak_rss_mib": peak_rss_mib(),
        }

        def trimesh_health():
            m = trimesh.Trimesh(v, f, process=False)
            return (m.is_watertight, m.is_winding_consistent, m.volume, m.area, m.body_count, m.bounds)

        t_h = best(lambda: mesh_health(v, f), repeat)
        t_th = best(trimesh_health, repeat)
        out["mesh_health"] = {
            "ours_s": t_h[0],
            "ours_cpu_s": t_h[1],
            "trimesh_s": t_th[0],
            "trimesh_cpu_s": t_th[1],
            "speedup_vs_trimesh": t_th[0] / t_h[0],
            "speedup_vs_trimesh_cpu": t_th[1] / t_h[1],
            "peak_rss_mib": peak_rss_mib(),
        }

        rng = np.random.default_rng(0)
        soup_v = v[f].reshape(-1, 3)
        soup_f = np.arange(len(soup_v)).reshape(-1, 3)[rng.permutation(len(f))]
        t_r = best(lambda: repair(soup_v, soup_f), repeat)
        out["repair_soup"] = {"faces": len(f), "seconds": t_r[0], "cpu_seconds": t_r[1], "peak_rss_mib": peak_rss_mib()}

        t_d = best(lambda: shape_descriptor(v, f), repeat)
        out["shape_descriptor"] = {
            "samples": 4096,
            "seconds": t_d[0],
            "cpu_seconds": t_d[1],
            "peak_rss_mib": peak_rss_mib(),
        }
        out["numba"] = numba.__version__
        out["trimesh"] = trimesh.__version__
        return out
    finally:
        numba.set_num_threads(threads)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
