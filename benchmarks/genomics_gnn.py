"""``gnn_embed``: de Bruijn GNN embeddings of 1 kb M. tuberculosis fragments, PyG vs DGL, single thread.

Registered into ``benchmarks/genomics.py`` (``--only gnn_embed``). The genome is cut into
non-overlapping 1 kb fragments, each turned into its k = 5 de Bruijn graph by
``kernels.debruijn_graph``; the default ``GnnConfig`` (hidden 64, embed 64, 2 layers) with
deterministic random weights (speed does not depend on the values) embeds them with
``embed_graphs`` (``batch_graphs`` 256, as the ``genomics.gnn_embed`` stage).

- PyG: in this process, ``torch.set_num_threads(1)``; "embedding only" times ``embed_graphs`` on
  graphs already built, "graph building + embedding" adds ``debruijn_graph`` for every fragment.
- DGL: the pinned DGL stack lives in ``.venv-dgl`` (``make dgl-env``), so it runs as
  ``python -m hpcprep_genomics.gnn.cli_dgl --time N --threads 1`` on the same weights and graph
  bundle and reports its own best-of-N ``embed_graphs`` time (graphs already loaded). Ratio =
  DGL seconds / PyG seconds; the note gives the largest |PyG - DGL| difference of the embeddings.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
from genomics import REPO, Bench, Row, measurement
from hpcprep_genomics import gnn
from hpcprep_genomics import kernels as K

FRAGMENT = 1000
TARGET = 5000.0  # graphs/s
DGL_PYTHON = Path(os.environ.get("HPCPREP_DGL_PYTHON", REPO / ".venv-dgl" / "bin" / "python"))


def _fragments(genome: bytes) -> list[np.ndarray]:
    arr = np.frombuffer(genome, dtype=np.uint8)
    return [arr[i : i + FRAGMENT] for i in range(0, arr.size - FRAGMENT + 1, FRAGMENT)]


def _dgl(bench: Bench, config: gnn.GnnConfig, arrays: dict, graphs) -> dict | str:
    """Best-of-``bench.repeat`` DGL timing (JSON from cli_dgl) plus its embeddings, or why there is none."""
    if not DGL_PYTHON.exists():
        return f"no DGL environment at {DGL_PYTHON} (make dgl-env)"
    weights, bundle, out = bench.work / "gnn_w.npz", bench.work / "gnn_graphs.npz", bench.work / "gnn_dgl.npy"
    gnn.save_weights(weights, config, arrays)
    gnn.save_graphs(bundle, graphs)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "plugins" / "genomics"),
        "DGLBACKEND": "pytorch",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [
        str(DGL_PYTHON),
        "-m",
        "hpcprep_genomics.gnn.cli_dgl",
        "--weights",
        str(weights),
        "--graphs",
        str(bundle),
        "--out",
        str(out),
        "--backend",
        "dgl",
        "--threads",
        "1",
        "--time",
        str(bench.repeat),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=1800)
    if done.returncode != 0:
        return f"DGL subprocess failed: {done.stderr.strip()[-300:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["embeddings"] = np.load(out)
    return result


@measurement
def gnn_embed(bench: Bench) -> list[Row]:
    """GNN embedding of 1 kb fragments (k = 5, default GnnConfig), PyG in-process vs DGL in .venv-dgl."""
    import torch
    import torch_geometric

    config = gnn.GnnConfig()
    arrays = gnn.random_weights(config, seed=0)
    frags = _fragments(bench.genome)
    graphs = [K.debruijn_graph(f, config.k) for f in frags]
    n = len(graphs)
    label = "1kb"

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pyg_emb = gnn.embed_graphs(graphs, config, arrays, backend="pyg")
        t_embed = bench.best(lambda: gnn.embed_graphs(graphs, config, arrays, backend="pyg"))
        t_build = bench.best(lambda: [K.debruijn_graph(f, config.k) for f in frags])
        t_both = bench.best(
            lambda: gnn.embed_graphs([K.debruijn_graph(f, config.k) for f in frags], config, arrays, backend="pyg")
        )
    finally:
        torch.set_num_threads(threads)

    versions = f"torch {torch.__version__}, torch_geometric {torch_geometric.__version__}"
    target = f">= {TARGET:.0f} graphs/s"
    embed = Row(
        "gnn_embed pyg k=5 embedding only",
        n / t_embed,
        "graphs/s",
        label,
        target,
        seconds=t_embed,
        met=n / t_embed >= TARGET,
        note=f"{n} fragments; {versions}; graphs already built",
    )
    both = Row(
        "gnn_embed pyg k=5 build+embed",
        n / t_both,
        "graphs/s",
        label,
        target,
        seconds=t_both,
        met=n / t_both >= TARGET,
        note=f"debruijn_graph k=5 + embed_graphs; building alone {n / t_build:.0f} graphs/s",
    )
    rows = [embed, both]

    dgl = _dgl(bench, config, arrays, graphs)
    if isinstance(dgl, str):
        embed.note += f"; {dgl}"
        return rows
    diff = float(np.abs(dgl["embeddings"] - pyg_emb).max())
    dgl_versions = ", ".join(f"{k} {v}" for k, v in dgl["versions"].items())
    embed.peer = "DGL (.venv-dgl, subprocess)"
    embed.peer_seconds = dgl["best_s"]
    embed.ratio = dgl["best_s"] / t_embed
    embed.note += f"; peer {dgl_versions}, max |pyg - dgl| = {diff:.1e}"
    rows.append(
        Row(
            "gnn_embed dgl k=5 embedding only",
            dgl["graphs_per_s"],
            "graphs/s",
            label,
            seconds=dgl["best_s"],
            note=f"{dgl_versions}, {dgl['threads']} thread, timed inside the subprocess",
        )
    )
    return rows
