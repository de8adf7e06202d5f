"""Every CUDA kernel of the plugins compiles for a real GPU, on a machine without one.

The simulator runs the kernels' Python, so it cannot see what NVIDIA's compiler would refuse (a call
it cannot type for the device, a helper that only exists on the CPU). Here each kernel is launched on
small inputs under the simulator (in a process of its own, whatever HPCPREP_TEST_CUDA says), which
records the argument types of every launch; then NVVM compiles each kernel to PTX for exactly those
types (compute capability 8.0), in a process without the simulator. NVVM and NVRTC come from NVIDIA's
wheels, which `make test` installs into ``build/cuda-compiler`` (``CUDA_COMPILER_DIR`` elsewhere); no
driver or GPU is used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.conftest import require_module, unavailable

REPO = Path(__file__).resolve().parents[2]
MODULES = ("hpcprep_cfd.kernels.cuda", "hpcprep_genomics.kernels.cuda", "hpcprep_protein.kernels.cuda")


def compiler_dir() -> Path:
    d = Path(os.environ.get("CUDA_COMPILER_DIR") or REPO / "build" / "cuda-compiler")
    if not (d / "nvidia" / "cuda_nvcc" / "nvvm").is_dir() or not (d / "nvidia" / "cuda_nvrtc" / "lib").is_dir():
        unavailable(f"NVIDIA's NVVM and NVRTC wheels are not installed in {d}")
    return d


def spec_of(arg) -> dict:
    host = getattr(arg, "_ary", arg)  # the simulator's device arrays wrap a NumPy array
    if isinstance(host, np.ndarray):
        return {"array": host.dtype.str, "ndim": host.ndim}
    if isinstance(host, (bool, np.bool_)):
        return {"scalar": "bool"}
    if isinstance(host, (int, float)):  # typed as a launch types them: int64 and float64
        return {"scalar": "int64" if isinstance(host, int) else "float64"}
    return {"scalar": np.asarray(host).dtype.str}


def record_launches() -> list:
    """``[[module, kernel name, [argument specs of each distinct launch]], ...]`` for every kernel of the three
    plugins' CUDA modules, launched on small real inputs. Runs in a process with NUMBA_ENABLE_CUDASIM=1 (it
    replaces the simulator's launch for good)."""
    import importlib

    from numba.cuda.simulator.kernel import FakeCUDAKernel

    modules = {name: importlib.import_module(name) for name in MODULES}
    kernels = {
        obj.fn: (name, attr)
        for name, mod in modules.items()
        for attr, obj in vars(mod).items()
        if isinstance(obj, FakeCUDAKernel) and not obj._device
    }
    launches: dict[tuple[str, str], list] = {key: [] for key in kernels.values()}
    launch = FakeCUDAKernel.__call__

    def recording(self, *args):
        key = kernels.get(self.fn)
        if key is not None and not self._device:
            specs = [spec_of(a) for a in args]
            if specs not in launches[key]:
                launches[key].append(specs)
        return launch(self, *args)

    FakeCUDAKernel.__call__ = recording

    cfd, genomics, protein = (modules[name] for name in MODULES)
    v = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    f = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])
    points = np.array([[0.2, 0.2, 0.2], [2.0, 0.5, 0.1], [-1.0, 0.3, 0.3]])
    cfd.signed_distance(v, f, points)
    cfd.unsigned_distance(v, f, points)
    cfd.winding_number(v, f, points)
    cfd.winding_number(v, f, points, accuracy=None)
    cfd.sdf_grid(v, f, 3)
    seqs = ["ACGTACGTNNACGTTGCA", "GGCCAT"]
    genomics.kmer_counts_batch(seqs, 3)
    genomics.kmer_counts_batch(seqs, 3, canonical=True)
    for dtype in (np.uint8, np.float32, np.bool_):
        genomics.onehot_batch(seqs, "LC", dtype)
    genomics.onehot_batch(seqs, "CL")
    rng = np.random.default_rng(0)
    chains = [np.cumsum(rng.normal(0, 2.0, (12, 3)), axis=0), np.cumsum(rng.normal(0, 2.0, (5, 3)), axis=0)]
    protein.contact_edges_batch(chains, 8.0)
    protein.distance_map_batch(chains)
    return [[m, k, seen] for (m, k), seen in sorted(launches.items())]


RECORD = (
    "import json, sys; from tests.integration.test_cuda_ptx import record_launches; "
    "json.dump(record_launches(), sys.stdout)"
)


COMPILE = r"""
import json, sys
import numpy as np
from numba import from_dtype, types
import numba.cuda.dispatcher as dispatcher
from numba.cuda import compile_ptx

class _Device:  # the device functions a kernel calls are compiled for this, not for a GPU found here
    compute_capability = (8, 0)

dispatcher.get_current_device = lambda: _Device()

def numba_type(spec):
    if "array" in spec:
        return types.Array(from_dtype(np.dtype(spec["array"])), spec["ndim"], "C")
    return types.boolean if spec["scalar"] == "bool" else from_dtype(np.dtype(spec["scalar"]))

import importlib
out = {}
for module, name, specs in json.load(sys.stdin):
    kernel = getattr(importlib.import_module(module), name)
    ptx, _ = compile_ptx(kernel.py_func, tuple(numba_type(s) for s in specs), cc=(8, 0))
    out.setdefault(f"{module}.{name}", []).append(len(ptx) if ".entry" in ptx else 0)
json.dump(out, sys.stdout)
"""


def test_every_kernel_compiles_to_ptx_for_the_types_it_is_launched_with():
    require_module("numba.cuda")
    tk = compiler_dir()
    sim = subprocess.run(
        [sys.executable, "-c", RECORD],
        cwd=REPO,
        env={**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "HPCPREP_TEST_CUDA": "simulator"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert sim.returncode == 0, sim.stderr[-4000:]
    launches = json.loads(sim.stdout)
    never = [f"{m}.{k}" for m, k, seen in launches if not seen]
    assert not never, f"kernels this test does not launch (add a call for each): {never}"
    jobs = [[m, k, specs] for m, k, seen in launches for specs in seen]
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["CUDA_HOME"] = str(tk / "nvidia" / "cuda_nvcc")
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(tk / "nvidia" / "cuda_nvrtc" / "lib"), str(tk / "nvidia" / "cuda_nvcc" / "nvvm" / "lib64")]
        + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p]
    )
    proc = subprocess.run(
        [sys.executable, "-c", COMPILE], input=json.dumps(jobs), capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    sizes = json.loads(proc.stdout)
    assert sorted(sizes) == sorted(f"{m}.{k}" for m, k, _ in launches)
    for kernel, ptx in sizes.items():
        assert all(n > 0 for n in ptx), f"{kernel}: no kernel entry in its PTX"
    assert sum(len(v) for v in sizes.values()) == len(jobs)
