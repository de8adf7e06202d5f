"""Embed a graph bundle with a backend, from the command line (made for the DGL environment).

    PYTHONPATH=plugins/genomics .venv-dgl/bin/python -m hpcprep_genomics.gnn.cli_dgl \\
        --weights W.npz --graphs G.npz --out E.npy [--backend dgl] [--batch-graphs 256] \\
        [--threads 1] [--time 3]

``G.npz`` is a bundle from :func:`hpcprep_genomics.gnn.save_graphs`; ``E.npy`` gets the float32
``(n_graphs, embed_dim)`` embeddings. Needs only numpy, torch and the backend's library: it is
how the main test suite checks DGL against PyG across environments, and how the benchmark
times DGL. ``--time N`` embeds the graphs N more times after the first (which also warms up) and
prints one JSON line (``graphs``, ``best_s``, ``graphs_per_s``, ``times_s``, ``backend``, ``versions``, ``threads``):
the time of ``embed_graphs`` alone (graphs already loaded; reading the bundle and importing the
backend are not in it). ``--threads`` sets torch's intra-op threads.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcprep_genomics.gnn.cli_dgl", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="weights file (.npz) from train-gnn or save_weights")
    parser.add_argument("--graphs", required=True, help="graph bundle (.npz) from save_graphs")
    parser.add_argument("--out", required=True, help="where to write the embeddings (.npy)")
    parser.add_argument("--backend", default="dgl", choices=("dgl", "pyg"), help="GNN backend (default dgl)")
    parser.add_argument("--batch-graphs", type=int, default=256, help="graphs per forward pass")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--time", type=int, default=0, metavar="N", help="time N more runs, print JSON (best of N)")
    args = parser.parse_args(argv)
    if args.time < 0 or (args.threads is not None and args.threads < 1):
        parser.error("--time must be >= 0 and --threads >= 1")

    from . import embed_graphs, load_graphs, load_weights

    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        config, arrays = load_weights(args.weights)
        graphs = load_graphs(args.graphs)
        emb = embed_graphs(graphs, config, arrays, backend=args.backend, batch_graphs=args.batch_graphs)
        times = []
        for _ in range(args.time):
            t0 = time.perf_counter()
            embed_graphs(graphs, config, arrays, backend=args.backend, batch_graphs=args.batch_graphs)
            times.append(time.perf_counter() - t0)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    np.save(args.out, emb.astype(np.float32, copy=False))
    if times:
        import torch

        library = __import__("dgl" if args.backend == "dgl" else "torch_geometric")
        best = min(times)
        print(
            json.dumps(
                {
                    "graphs": len(graphs),
                    "best_s": best,
                    "graphs_per_s": len(graphs) / best,
                    "times_s": times,
                    "backend": args.backend,
                    "versions": {"torch": torch.__version__, library.__name__: library.__version__},
                    "threads": torch.get_num_threads(),
                }
            )
        )
    else:
        print(f"{len(graphs)} graph(s) -> {args.out} ({args.backend}, dim {config.embed_dim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
