"""The cuda variant of genomics.gnn_embed: the PyG backend on a GPU gives the CPU's embeddings.

Imports only NumPy, torch, torch_geometric and the plugin's gnn and kernels modules, so it
also runs on a GPU machine that has no Ray or hpcprep core installed
(``PYTHONPATH=plugins/genomics python -m pytest tests/genomics/test_gnn_cuda.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import require_module

torch = require_module("torch")
require_module("torch_geometric")

from hpcprep_genomics import gnn  # noqa: E402
from hpcprep_genomics.kernels import debruijn_graph  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CI has none; run on a GPU)")


def fragments(n: int, length: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        gc = rng.uniform(0.3, 0.7)
        p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
        seq = np.frombuffer(b"ACGT", np.uint8)[rng.choice(4, size=length, p=p)].tobytes()
        if i % 17 == 0:  # some Ns, so graphs have breaks
            seq = seq[: length // 2] + b"N" * 5 + seq[length // 2 + 5 :]
        out.append(seq)
    out.append(b"NNNN")  # an empty graph in the middle of a batch embeds as zeros on both devices
    out.append(b"ACGTTGCAAGT")  # shortest fragment with a k-mer for both k
    return out


@needs_cuda
@pytest.mark.parametrize("k", [5, 9])  # 9: no per-code tables, the features are computed per node
def test_cuda_embeddings_equal_cpu(k):
    config = gnn.GnnConfig(k=k)
    arrays = gnn.random_weights(config, seed=11)
    graphs = [debruijn_graph(s, k) for s in fragments(600, 1000, seed=k)]
    cpu = gnn.embed_graphs(graphs, config, arrays, batch_graphs=256, device="cpu")
    gpu = gnn.embed_graphs(graphs, config, arrays, batch_graphs=256, device="cuda")
    assert gpu.shape == cpu.shape == (len(graphs), config.embed_dim)
    diff = float(np.abs(gpu - cpu).max())
    print(f"k={k}: max |cuda - cpu| = {diff:.2e} over {len(graphs)} graphs on {torch.cuda.get_device_name()}")
    assert diff < 1e-5
    assert not gpu[-2].any() and np.isclose(np.linalg.norm(gpu[-1]), 1.0, atol=1e-5)


@needs_cuda
def test_cuda_batching_does_not_change_results():
    config = gnn.GnnConfig(k=5)
    arrays = gnn.random_weights(config, seed=3)
    graphs = [debruijn_graph(s, 5) for s in fragments(300, 800, seed=9)]
    whole = gnn.embed_graphs(graphs, config, arrays, batch_graphs=1000, device="cuda")
    one_by_one = gnn.embed_graphs(graphs, config, arrays, batch_graphs=1, device="cuda")
    assert float(np.abs(whole - one_by_one).max()) < 1e-5


def test_dgl_backend_refuses_a_gpu_device():
    config = gnn.GnnConfig(k=5)
    with pytest.raises(ValueError, match="pyg"):
        gnn.embed_graphs(
            [debruijn_graph(b"ACGTACGTAAC", 5)], config, gnn.random_weights(config, 0), backend="dgl", device="cuda"
        )
