"""gnn_embed on a GPU: the cuda variant (PyG on CUDA) against the CPU variant (one thread).

Runs where torch sees a CUDA device; needs only NumPy, Numba, torch and torch_geometric
(no Ray, no hpcprep core), so it runs on a bare GPU machine:

    PYTHONPATH=plugins/genomics python benchmarks/genomics_gnn_gpu.py --out results.json

Inputs are random 1 kb fragments (GC between 30 and 70 %), de Bruijn graphs k = 5, built
once; both devices embed the same graphs with the same untrained weights, the embeddings
are compared, and each device's best of 3 is reported. Writes JSON and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime

import numpy as np
import torch
from hpcprep_genomics import gnn
from hpcprep_genomics.kernels import debruijn_graph
from machine import best


def fragments(n: int, length: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    gcs = rng.uniform(0.3, 0.7, n)
    out = []
    for gc in gcs:
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        out.append(np.frombuffer(b"ACGT", np.uint8)[rng.choice(4, size=length, p=p)].tobytes())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--graphs", type=int, default=20_000)
    ap.add_argument("--cpu-graphs", type=int, default=4_000, help="the CPU side embeds fewer (it is slower)")
    ap.add_argument("--batch-graphs", type=int, default=4096)
    ap.add_argument("--out", default="benchmarks/results/genomics_gnn_gpu.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark runs on a GPU machine")
    torch.set_num_threads(1)
    config = gnn.GnnConfig(k=5)
    arrays = gnn.random_weights(config, seed=0)
    graphs = [debruijn_graph(s, 5) for s in fragments(args.graphs, 1000, seed=1)]
    packed = gnn.features.pack_graphs(graphs)

    def run(device, which):
        out = gnn.embed_graphs(which, config, arrays, batch_graphs=args.batch_graphs, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        return out

    run("cuda", graphs[:64])  # CUDA context, kernels, per-code tables
    cpu_part = graphs[: args.cpu_graphs]
    cpu_s = best(lambda: run("cpu", cpu_part), 3)
    gpu_s = best(lambda: run("cuda", packed), 3)
    cpu_emb = run("cpu", cpu_part)
    gpu_emb = run("cuda", packed)[: len(cpu_part)]
    diff = float(np.abs(cpu_emb - gpu_emb).max())
    result = {
        "benchmark": "genomics_gnn_gpu",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_geometric": __import__("torch_geometric").__version__,
        },
        "what": "embedding only (graphs built beforehand), 1 kb random fragments, k=5, untrained weights",
        "graphs": {"cuda": args.graphs, "cpu": len(cpu_part)},
        "batch_graphs": args.batch_graphs,
        "graphs_per_second": {"cuda": args.graphs / gpu_s, "cpu_1_thread": len(cpu_part) / cpu_s},
        "ratio_cuda_over_cpu": (args.graphs / gpu_s) / (len(cpu_part) / cpu_s),
        "max_abs_difference_cuda_cpu": diff,
    }
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
