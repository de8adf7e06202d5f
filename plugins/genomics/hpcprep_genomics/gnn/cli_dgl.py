"""Embed a graph bundle with a backend, from the command line (made for the DGL environment).

    PYTHONPATH=plugins/genomics .venv-dgl/bin/python -m hpcprep_genomics.gnn.cli_dgl \\
        --weights W.npz --graphs G.npz --out E.npy [--backend dgl] [--batch-graphs 256]

``G.npz`` is a bundle from :func:`hpcprep_genomics.gnn.save_graphs`; ``E.npy`` gets the float32
``(n_graphs, embed_dim)`` embeddings. Needs only numpy, torch and the backend's library: it is
how the main test suite checks DGL against PyG across environments.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcprep_genomics.gnn.cli_dgl", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True, help="weights file (.npz) from train-gnn or save_weights")
    parser.add_argument("--graphs", required=True, help="graph bundle (.npz) from save_graphs")
    parser.add_argument("--out", required=True, help="where to write the embeddings (.npy)")
    parser.add_argument("--backend", default="dgl", choices=("dgl", "pyg"), help="GNN backend (default dgl)")
    parser.add_argument("--batch-graphs", type=int, default=256, help="graphs per forward pass")
    args = parser.parse_args(argv)

    from . import embed_graphs, load_graphs, load_weights

    try:
        config, arrays = load_weights(args.weights)
        graphs = load_graphs(args.graphs)
        emb = embed_graphs(graphs, config, arrays, backend=args.backend, batch_graphs=args.batch_graphs)
    except (RuntimeError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    np.save(args.out, emb.astype(np.float32, copy=False))
    print(f"{len(graphs)} graph(s) -> {args.out} ({args.backend}, dim {config.embed_dim})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
