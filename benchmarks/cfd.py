"""CFD benchmarks, one thread each, peers in the same run; results in ``benchmarks/results/cfd.json``.

One module for the spatial kernels because every row shares the meshes and points of the same
repetitions, libigl's thread setting (fixed before ``igl`` is imported) and the timing helpers; the
other sections, which share none of that, live in ``cfd_mesh.py`` and ``cfd_openfoam.py``.

    .venv/bin/python benchmarks/cfd.py                 # all sections, about ten minutes
    .venv/bin/python benchmarks/cfd.py --kernels-only  # the spatial kernels against libigl

Sections: ``kernels`` (below), ``mesh`` (``cfd_mesh.py``: sampling, health, repair, voxels and
descriptors against trimesh) and ``openfoam`` (``cfd_openfoam.py``: the polyMesh reader on a
1M-cell blockMesh case against a NumPy implementation and OpenFOAM's own postProcess).

Section ``kernels``: the spatial kernels against libigl, measured the way a pipeline calls them. Mesh:
``DTC-scaled.stl.gz`` from Debian ``openfoam-examples`` (the DTC container-ship hull of the tutorials, 116 062
triangles, closed and outward), loaded with trimesh. Every repetition uses a distinct mesh (the hull moved and
scaled at random, so both sides build their trees on new arrays) and distinct random points in its
bounding box padded by 10% (``--sizes``: 50 000 and 200 000 points); every call builds its own tree, on both sides
(``cfd.sdf_points`` calls ``signed_distance(v, f, points)`` once per mesh). Rates are total points over total
seconds of the ``--repeat`` repetitions; ratios are the peer's seconds over ours on the same meshes and points.

- ``signed_distance``: against ``igl.signed_distance`` in each of its sign modes: ``pseudonormal``,
  ``fast_winding_number`` and ``winding_number`` (exact; slow, so timed on the first repetition only). A mode
  counts as correct when its signs equal the exact winding-number signs (libigl's ``winding_number`` mode) on all
  points of the first repetition; the peer quoted is the fastest correct mode. Magnitudes are compared with the
  exact unsigned distance (``igl.point_mesh_squared_distance``).
- ``unsigned_distance``: against ``igl.point_mesh_squared_distance`` (which also builds its tree per call).
- ``winding_number``: ours at the default accuracy against ``igl.FastWindingNumberBVH`` (``init`` and
  ``winding_number`` at libigl's default ``accuracy_scale`` 2, second order), tree build included on both sides,
  on the closed hull (where ours rounds a first pass at low accuracy to the exact integer off the surface) and on
  the hull with every 97th face removed (``winding_number_open``: 1 197 holes, closed by caps, so ours is the
  closed mesh's rounded value less the caps' at the default accuracy); errors against the exact winding number
  (``igl.winding_number``) on 2000 of the box points and 1000 points within about 1% of the size from the
  surface, for both meshes, with ours also as one hierarchical pass over the mesh (``ours_unrounded_default``).
- ``signed_distance_open_50000``: ``signed_distance`` on the hull with every 97th face removed against libigl's
  sign modes, every sign compared with libigl's exact winding-number mode on every repetition; and ours signed
  both ways an open mesh can be (one winding number of the mesh per point, or through the caps of its holes:
  ``kernels/signs.py``), whichever ``signed_distance`` picks for the mesh; and both ways on the tutorials' open
  meshes (``signed_distance_open_tutorial_meshes``: cyclone, propellerTip, wigley; 16 384 points, best of 5).
- ``sdf_grid_128``: seconds for a 128^3 grid (tree build included) against ``igl.signed_distance`` on the same
  nodes in each mode (``pseudonormal`` and ``fast_winding_number`` on every node of every repetition's grid, the
  mean against ours' mean; the exact mode on four x-slabs of the first grid, extrapolated); signs compared with
  the exact mode on those slabs and with ours on every node.

Threads: ours runs with ``numba.set_num_threads(1)``, as a one-CPU pipeline worker runs it. libigl's Python binding
parallelises with ``igl::parallel_for``, whose thread count comes from ``igl::default_num_threads()``: it reads
the environment variable ``IGL_NUM_THREADS`` on its first call and caches it (else
``std::thread::hardware_concurrency()``), so this script sets ``IGL_NUM_THREADS=1`` before importing igl. The
load average before and after is recorded (other people share the machine), and every call's process CPU time
beside its wall time (``ratio_cpu``: less disturbed by other processes on the cores). Peak memory is
``ru_maxrss``.
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
from hpcprep_cfd.kernels.winding import DEFAULT_ACCURACY, winding_from_bvh, winding_number  # noqa: E402
from machine import step  # noqa: E402

from tests.cfd.data import GEOMETRY  # noqa: E402

RESULTS = HERE / "results" / "cfd.json"
MESH = "DTC-scaled.stl.gz"


MODES = ("pseudonormal", "fast_winding_number", "winding_number")
"""libigl's sign modes (``igl.SIGNED_DISTANCE_TYPE_*``); ``unsigned`` is not a signed distance."""


CPU = [0.0]
"""Process CPU seconds of the last ``timed`` call: on this shared machine other people's processes take turns on
the two cores, which stretches wall time but not the CPU time a one-thread call uses, so both are recorded."""


def timed(fn):
    c0 = time.process_time()
    t0 = time.perf_counter()
    out = fn()
    t = time.perf_counter() - t0
    CPU[0] = time.process_time() - c0
    return t, out


def load_mesh():
    with gzip.open(GEOMETRY / MESH) as fh:
        m = trimesh.load(fh, file_type="stl", force="mesh")
    return np.ascontiguousarray(m.vertices, dtype=np.float64), np.ascontiguousarray(m.faces, dtype=np.int64)


def moved(v, rng):
    """The mesh moved and scaled at random: new arrays and a new tree for every repetition, same shape. (Not
    turned: a random rotation of this long, thin hull gives every axis-aligned tree much larger boxes, a
    different problem, and the hull's padded box would hold mostly empty space.)"""
    ext = (v.max(axis=0) - v.min(axis=0)).max()
    return np.ascontiguousarray(v * rng.uniform(0.5, 2.0) + rng.uniform(-1.0, 1.0, 3) * ext)


def box_points(v, n, rng):
    lo, hi = v.min(axis=0), v.max(axis=0)
    ext = hi - lo
    return lo - 0.1 * ext + rng.random((n, 3)) * 1.2 * ext


def near_points(v, f, n, rng):
    """Points within about 1% of the size from random surface points (where hierarchical errors are largest)."""
    tri = v[f]
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    t = rng.choice(len(f), n, p=area / area.sum())
    a, b = rng.random((2, n))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    on = tri[t, 0] + a[:, None] * (tri[t, 1] - tri[t, 0]) + b[:, None] * (tri[t, 2] - tri[t, 0])
    normal = cross[t] / np.maximum(area[t], 1e-300)[:, None]
    return on + normal * (rng.normal(size=(n, 1)) * 0.01 * (v.max(axis=0) - v.min(axis=0)).max())


def open_faces(f):
    """The hull with every 97th face removed: an open mesh (about 1 200 holes), whose winding numbers are not
    integers, so ours are the hierarchical values unrounded."""
    return np.ascontiguousarray(f[np.arange(len(f)) % 97 != 0])


def igl_sd(p, v, f, mode):
    return igl.signed_distance(p, v, f, sign_type=getattr(igl, f"SIGNED_DISTANCE_TYPE_{mode.upper()}"))[0]


def open_signed_distance(meshes, f, n, rng):
    """``signed_distance`` on the hull with holes, against libigl's sign modes, every sign compared with libigl's
    exact winding-number mode on every repetition; and ours both ways an open mesh can be signed (one winding
    number of the mesh per point, or through the caps of its holes), whichever ``signed_distance`` picks
    (``distance.sign_caps``), for the evidence behind that choice."""
    from hpcprep_cfd.kernels import distance
    from hpcprep_cfd.kernels.caps import boundary_caps

    fo = open_faces(f)

    def forced(v, p, through_caps):
        bvh = build_bvh(v, fo)
        d, _, _, order = distance._nearest(bvh, p, not through_caps, distance.orientation_flip(bvh))
        if through_caps:
            distance.sign_points(v, bvh, boundary_caps(v, fo), p, order, d)
        return d

    t = {"ours": 0.0, "ours_per_point": 0.0, "ours_through_caps": 0.0, **dict.fromkeys(MODES, 0.0)}
    wrong = dict.fromkeys(t, 0)
    for r, v in enumerate(meshes):
        step("cfd", f"signed distances on the open hull, {n} points, mesh {r + 1} of {len(meshes)}")
        p = box_points(v, n, rng)
        out = {}
        for key, call in (
            ("ours", lambda v=v, p=p: signed_distance(v, fo, p)[0]),
            ("ours_per_point", lambda v=v, p=p: forced(v, p, False)),
            ("ours_through_caps", lambda v=v, p=p: forced(v, p, True)),
            *((m, lambda v=v, p=p, m=m: igl_sd(p, v, fo, m)) for m in MODES),
        ):
            dt, out[key] = timed(call)
            t[key] += dt
        exact = out["winding_number"] < 0
        for key, d in out.items():
            wrong[key] += int(((d < 0) != exact).sum())
    total = n * len(meshes)
    picked = distance.sign_caps(meshes[0], fo)
    row = {
        "points": n,
        "repetitions": len(meshes),
        "mesh": "open (every 97th face removed: 1 161 pieces of boundary)",
        "ours_sign": "one winding number per point" if picked is None else "through the caps",
        "ours_points_per_s": total / t["ours"],
        "ours_per_point_points_per_s": total / t["ours_per_point"],
        "ours_through_caps_points_per_s": total / t["ours_through_caps"],
        "sign_disagreements_vs_exact": wrong,
        "modes": {
            m: {"points_per_s": total / t[m], "ratio": t[m] / t["ours"], "sign_disagreements_vs_exact": wrong[m]}
            for m in MODES
        },
    }
    # (should no mode be right everywhere, the one that errs least, said so)
    correct = [m for m in MODES if wrong[m] == 0] or [min(MODES, key=lambda m: wrong[m])]
    fastest = max(correct, key=lambda m: row["modes"][m]["points_per_s"])
    what = "fastest mode with correct signs" if wrong[fastest] == 0 else "no mode had every sign right: fewest wrong"
    row.update(peer=f"igl.signed_distance, {fastest} sign ({what})", peer_mode=fastest)
    row.update(peer_points_per_s=row["modes"][fastest]["points_per_s"], ratio=row["modes"][fastest]["ratio"])
    return {f"signed_distance_open_{n}": row, "signed_distance_open_tutorial_meshes": open_tutorial_signs()}


def open_tutorial_signs(n=16_384, repeat=5):
    """The open meshes of the tutorials, as ``cfd.sdf_points`` sees them (16 384 points in the padded box): the
    sign through caps against one winding number per point, best of ``repeat`` each (tree build included)."""
    from hpcprep_cfd.kernels import distance
    from hpcprep_cfd.kernels.caps import boundary_caps

    out = {}
    for name in ("cyclone.stl.gz", "propellerTip.obj.gz", "wigley.stl.gz"):
        with gzip.open(GEOMETRY / name) as fh:
            m = trimesh.load(fh, file_type=name.split(".")[-2], force="mesh")
        v, fo = np.ascontiguousarray(m.vertices, dtype=np.float64), np.ascontiguousarray(m.faces, dtype=np.int64)
        p = box_points(v, n, np.random.default_rng(0))
        caps = boundary_caps(v, fo)

        def both_ways(through_caps, v=v, fo=fo, p=p, caps=caps):
            bvh = build_bvh(v, fo)
            d, _, _, order = distance._nearest(bvh, p, not through_caps, distance.orientation_flip(bvh))
            if through_caps:
                distance.sign_points(v, bvh, caps, p, order, d)
            return d

        seconds = {}
        for key, through in (("per_point", False), ("through_caps", True)):
            both_ways(through)
            seconds[key] = min(timed(lambda t=through: both_ways(t))[0] for _ in range(repeat))
        a, b = both_ways(False), both_ways(True)
        out[name] = {
            "triangles": len(fo),
            "pieces_of_boundary": len(caps[0]),
            "cap_triangles": len(caps[1]),
            "signed_distance_takes": "through_caps" if distance.sign_caps(v, fo) is not None else "per_point",
            "seconds": seconds,
            "caps_speedup": seconds["per_point"] / seconds["through_caps"],
            "points_whose_sign_differs": int(((a < 0) != (b < 0)).sum()),
        }
    return out


def kernels(args):
    v0, f = load_mesh()
    rng = np.random.default_rng(0)
    load_before = os.getloadavg()

    # JIT warm-up (cached on disk after the first run) on a tiny mesh.
    numba.set_num_threads(1)
    tiny_v, tiny_f = v0[f[:50]].reshape(-1, 3), np.arange(150).reshape(-1, 3)
    signed_distance(tiny_v, tiny_f, v0[:5])
    unsigned_distance(tiny_v, tiny_f, v0[:5])
    winding_number(tiny_v, tiny_f, v0[:5])
    sdf_grid(tiny_v, tiny_f, 4)
    # ... and on a closed one (a tetrahedron), whose signs take the other paths (chains, components, rounding).
    tet_v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    tet_f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    signed_distance(tet_v, tet_f, v0[:5])
    winding_number(tet_v, tet_f, v0[:5])
    sdf_grid(tet_v, tet_f, 4)

    meshes = [moved(v0, rng) for _ in range(args.repeat)]
    rows = {}

    # Tree build alone, for the profile (included in every row below).
    t_build = [timed(lambda v=v: build_bvh(v, f))[0] for v in meshes]
    rows["build_bvh"] = {"seconds_each": t_build, "triangles": len(f)}

    for n in args.sizes:
        pts = [box_points(v, n, rng) for v in meshes]
        ours_sd = ours_ud = ours_sd_cpu = 0.0
        peer = dict.fromkeys(MODES, 0.0)
        peer_cpu = dict.fromkeys(MODES, 0.0)
        peer_ud = 0.0
        per_rep = []
        signs = {}
        for r, (v, p) in enumerate(zip(meshes, pts, strict=True)):
            step("cfd", f"signed and unsigned distances, {n} points, mesh {r + 1} of {len(meshes)}")
            t, (s, _, _) = timed(lambda v=v, p=p: signed_distance(v, f, p))
            ours_sd += t
            ours_sd_cpu += CPU[0]
            t_ud, _ = timed(lambda v=v, p=p: unsigned_distance(v, f, p))
            ours_ud += t_ud
            t_igl_ud, (sq, _, _) = timed(lambda v=v, p=p: igl.point_mesh_squared_distance(p, v, f))
            peer_ud += t_igl_ud
            rep = {"ours_s": t, "ours_cpu_s": CPU[0]}
            for mode in MODES:
                if mode == "winding_number" and r > 0:
                    continue  # exact and slow: first repetition only
                tm, sm = timed(lambda v=v, p=p, mode=mode: igl_sd(p, v, f, mode))
                peer[mode] += tm
                peer_cpu[mode] += CPU[0]
                rep[f"{mode}_s"] = tm
                rep[f"{mode}_cpu_s"] = CPU[0]
                if r == 0:
                    signs[mode] = sm
            per_rep.append(rep)
            if r == 0:
                exact_d, ours_first = np.sqrt(sq), s
        exact_inside = signs["winding_number"] < 0
        row = {
            "points": n,
            "repetitions": args.repeat,
            "ours_points_per_s": n * args.repeat / ours_sd,
            "ours_points_per_cpu_s": n * args.repeat / ours_sd_cpu,
            "modes": {},
        }
        row["ours_sign_disagreements_vs_exact"] = int(((ours_first < 0) != exact_inside).sum())
        row["ours_max_abs_diff_vs_exact_distance"] = float(np.abs(np.abs(ours_first) - exact_d).max())
        for mode in MODES:
            reps = 1 if mode == "winding_number" else args.repeat
            t_ours = per_rep[0]["ours_s"] if mode == "winding_number" else ours_sd
            c_ours = per_rep[0]["ours_cpu_s"] if mode == "winding_number" else ours_sd_cpu
            row["modes"][mode] = {
                "points_per_s": n * reps / peer[mode],
                "ratio": peer[mode] / t_ours,
                "points_per_cpu_s": n * reps / peer_cpu[mode],
                "ratio_cpu": peer_cpu[mode] / c_ours,
                "ratio_per_repetition": [rp[f"{mode}_s"] / rp["ours_s"] for rp in per_rep if f"{mode}_s" in rp],
                "sign_disagreements_vs_exact": int(((signs[mode] < 0) != exact_inside).sum()),
                "max_abs_diff_vs_exact_distance": float(np.abs(np.abs(signs[mode]) - exact_d).max()),
                "timed_on": "all repetitions" if reps > 1 else "first repetition",
            }
        correct = [m for m in MODES if row["modes"][m]["sign_disagreements_vs_exact"] == 0]
        fastest = max(correct, key=lambda m: row["modes"][m]["points_per_s"])
        row["peer"] = f"igl.signed_distance, {fastest} sign (fastest mode with correct signs)"
        row["peer_mode"] = fastest
        row["peer_points_per_s"] = row["modes"][fastest]["points_per_s"]
        row["ratio"] = row["modes"][fastest]["ratio"]
        row["ratio_cpu"] = row["modes"][fastest]["ratio_cpu"]
        rows[f"signed_distance_{n}"] = row
        rows[f"unsigned_distance_{n}"] = {
            "points": n,
            "ours_points_per_s": n * args.repeat / ours_ud,
            "peer": "igl.point_mesh_squared_distance (tree built per call)",
            "peer_points_per_s": n * args.repeat / peer_ud,
            "ratio": peer_ud / ours_ud,
        }

        # Winding numbers, tree build included on both sides.
        def peer_wn(v, faces, p):
            fwn = igl.FastWindingNumberBVH()
            fwn.init(v, faces)
            return fwn.winding_number(p, 2.0)

        for key, faces in (("winding_number", f), ("winding_number_open", open_faces(f))):
            step("cfd", f"{key}, {n} points, {len(meshes)} meshes")
            t_ours = t_peer = c_ours = c_peer = 0.0
            for v, p in zip(meshes, pts, strict=True):
                t_ours += timed(lambda v=v, p=p, faces=faces: winding_number(v, faces, p))[0]
                c_ours += CPU[0]
                t_peer += timed(lambda v=v, p=p, faces=faces: peer_wn(v, faces, p))[0]
                c_peer += CPU[0]
            rows[f"{key}_{n}"] = {
                "points": n,
                "accuracy": DEFAULT_ACCURACY,
                "mesh": "closed (exact integers off the surface)"
                if faces is f
                else "open (every 97th face removed, closed by caps)",
                "ours_points_per_s": n * args.repeat / t_ours,
                "peer": "igl.FastWindingNumberBVH init + winding_number (accuracy_scale 2, libigl's default)",
                "peer_points_per_s": n * args.repeat / t_peer,
                "ratio": t_peer / t_ours,
                "ratio_cpu": c_peer / c_ours,
            }

    rows.update(open_signed_distance(meshes, f, args.sizes[0], rng))

    # Winding-number errors against the exact value, on box and near-surface points of the first mesh, closed
    # and open: what winding_number returns (rounded on the closed mesh, through caps on the open one), one
    # hierarchical pass over the mesh at the same accuracy, and libigl's.
    v = meshes[0]
    check = {"box": box_points(v, 2000, rng), "near_surface": near_points(v, f, 1000, rng)}
    errors = {}
    for mesh, faces in (("closed", f), ("open", open_faces(f))):
        bvh = build_bvh(v, faces)
        fwn = igl.FastWindingNumberBVH()
        fwn.init(v, faces)
        for where, p in check.items():
            exact = igl.winding_number(v, faces, p)
            errors[f"{mesh}_{where}"] = {
                "ours_default": float(np.abs(winding_number(v, faces, p) - exact).max()),  # as the rows above
                "ours_unrounded_default": float(np.abs(winding_from_bvh(bvh, p, DEFAULT_ACCURACY) - exact).max()),
                "libigl_default": float(np.abs(fwn.winding_number(p, 2.0) - exact).max()),
            }
    rows["winding_number_max_abs_error"] = {"accuracy_default": DEFAULT_ACCURACY, **errors}

    # SDF grid: ours per repetition; libigl's fast modes on each repetition's nodes, its exact mode on slabs of the first.
    n = args.grid
    step("cfd", f"sdf_grid {n}^3, ours on {len(meshes)} meshes, then libigl in each mode")
    t_grid, c_grid, grids = [], [], []
    for v in meshes:
        t, out = timed(lambda v=v: sdf_grid(v, f, n))
        t_grid.append(t)
        c_grid.append(CPU[0])
        grids.append(out)
    v = meshes[0]
    g, origin, spacing = grids[0]
    nodes = grid_nodes(g.shape, origin, spacing)
    ours = g.reshape(-1)
    slabs = np.linspace(0, n - 1, 4).round().astype(int)
    slab_idx = (slabs[:, None] * n * n + np.arange(n * n)[None, :]).reshape(-1)
    t_exact, s_exact = timed(lambda: igl_sd(nodes[slab_idx], v, f, "winding_number"))
    grid_modes = {
        "winding_number": {
            "seconds": t_exact * g.size / len(slab_idx),
            "timed_on": "4 x-slabs, extrapolated",
            "sign_disagreements_vs_exact_on_slabs": 0,
        }
    }
    for mode in ("pseudonormal", "fast_winding_number"):
        # On every mesh's grid, as ours was timed: one call each is a noisy sample of 6-10 s.
        tm, sm = timed(lambda mode=mode: igl_sd(nodes, v, f, mode))
        t_each, c_each, vs_ours = [tm], [CPU[0]], int(((sm < 0) != (ours < 0)).sum())
        for vm, (gm, om, spm) in zip(meshes[1:], grids[1:]):
            nodes_m = grid_nodes(gm.shape, om, spm)
            tm_m, sm_m = timed(lambda mode=mode, vm=vm, nodes_m=nodes_m: igl_sd(nodes_m, vm, f, mode))
            t_each.append(tm_m)
            c_each.append(CPU[0])
            vs_ours += int(((sm_m < 0) != (gm.reshape(-1) < 0)).sum())
        grid_modes[mode] = {
            "seconds": float(np.mean(t_each)),
            "seconds_each": t_each,
            "cpu_seconds": float(np.mean(c_each)),
            "timed_on": f"every node of each of the {len(meshes)} meshes' grids",
            "sign_disagreements_vs_exact_on_slabs": int(((sm[slab_idx] < 0) != (s_exact < 0)).sum()),
            "sign_disagreements_vs_ours": vs_ours,
            "max_abs_diff_vs_ours": float(np.abs(np.abs(sm) - np.abs(ours)).max()),
        }
    correct = [m for m in grid_modes if grid_modes[m]["sign_disagreements_vs_exact_on_slabs"] == 0]
    fastest = min(correct, key=lambda m: grid_modes[m]["seconds"])
    rows[f"sdf_grid_{n}"] = {
        "nodes": int(g.size),
        "seconds_each": t_grid,
        "seconds": float(np.mean(t_grid)),
        "cpu_seconds_each": c_grid,
        "ours_sign_disagreements_vs_exact_on_slabs": int(((ours[slab_idx] < 0) != (s_exact < 0)).sum()),
        "ours_max_abs_diff_vs_exact_on_slabs": float(np.abs(ours[slab_idx] - s_exact).max()),
        "modes": grid_modes,
        "peer": f"igl.signed_distance on the same nodes, {fastest} sign (fastest mode with correct signs)",
        "peer_mode": fastest,
        "peer_seconds": grid_modes[fastest]["seconds"],
        "ratio": grid_modes[fastest]["seconds"] / float(np.mean(t_grid)),
        "ratio_cpu": grid_modes[fastest].get("cpu_seconds", np.nan) / float(np.mean(c_grid)),
    }

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "mesh": f"openfoam-examples {MESH} ({len(f)} triangles), moved and scaled at random per repetition",
        "threads": 1,
        "igl_threads": "IGL_NUM_THREADS=1 (read by igl::default_num_threads on first use)",
        "libigl": _version("libigl"),
        "numba": numba.__version__,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "rows": rows,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3, help="distinct meshes and point sets per measurement")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000], help="query points per call")
    ap.add_argument("--grid", type=int, default=128)
    ap.add_argument("--kernels-only", action="store_true", help="only the spatial kernels against libigl")
    args = ap.parse_args()

    section = kernels(args)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if not isinstance(results, dict):
        results = {}
    results["kernels"] = section
    if not args.kernels_only:
        # The other sections, from their own modules: mesh kernels against trimesh, and the
        # OpenFOAM reader on a 1M-cell blockMesh case against NumPy and postProcess.
        import cfd_mesh
        import cfd_openfoam

        step("cfd", "mesh kernels against trimesh")
        results["mesh"] = cfd_mesh.run(repeat=args.repeat)
        step("cfd", "the OpenFOAM reader against NumPy and postProcess")
        results["openfoam"] = cfd_openfoam.run(repeat=args.repeat)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")

    rows = section["rows"]
    print(f"load average before {section['load_average_before']}, after {section['load_average_after']}")
    print(f"build_bvh {', '.join(f'{t:.3f}' for t in rows['build_bvh']['seconds_each'])} s")
    for name, r in rows.items():
        if "ours_points_per_s" in r:
            print(
                f"{name:<28} ours {r['ours_points_per_s']:>10,.0f} p/s   {r['peer']}: "
                f"{r['peer_points_per_s']:>10,.0f} p/s   {r['ratio']:.2f}x (CPU time {r.get('ratio_cpu', np.nan):.2f}x)"
            )
            for mode, m in r.get("modes", {}).items():
                print(
                    f"{'':<30}{mode:<20} {m['points_per_s']:>10,.0f} p/s {m['ratio']:>6.2f}x  "
                    f"sign errors {m['sign_disagreements_vs_exact']}, "
                    f"|d| off by {m.get('max_abs_diff_vs_exact_distance', np.nan):.1e}"
                )
            if "ours_sign" in r:
                for mesh, t in rows["signed_distance_open_tutorial_meshes"].items():
                    print(
                        f"{'':<30}{mesh}: caps {t['caps_speedup']:.2f}x one winding number per point, "
                        f"takes {t['signed_distance_takes']}, {t['points_whose_sign_differs']} signs differ"
                    )
                print(
                    f"{'':<30}ours signs {r['ours_sign']}; per point {r['ours_per_point_points_per_s']:,.0f} p/s, "
                    f"through caps {r['ours_through_caps_points_per_s']:,.0f} p/s; "
                    f"sign errors {r['sign_disagreements_vs_exact']}"
                )
    r = rows[f"sdf_grid_{args.grid}"]
    print(
        f"sdf_grid {args.grid}^3: ours {r['seconds']:.2f} s, {r['peer']}: {r['peer_seconds']:.1f} s, "
        f"{r['ratio']:.1f}x (CPU time {r['ratio_cpu']:.1f}x)"
    )
    for mode, m in r["modes"].items():
        print(
            f"{'':<30}{mode:<20} {m['seconds']:.1f} s, sign errors on slabs {m['sign_disagreements_vs_exact_on_slabs']}"
        )
    print("winding max error:", json.dumps(rows["winding_number_max_abs_error"]))
    print(f"peak RSS {section['peak_rss_mib']:.0f} MiB")


def _version(dist):
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
