"""GNN embeddings of de Bruijn graphs, with two backends that share one weights file.

Input
    A graph is ``(node_codes, src, dst, edge_counts)`` as ``hpcprep_genomics.kernels.debruijn_graph(
    seq, k)`` returns it: nodes are the distinct (k-1)-mers (uint64 base-4 codes, A=0 C=1 G=2 T=3,
    first base most significant, ascending), edges the distinct k-mers from prefix node to suffix
    node (int32 indices) with their counts (uint32). ``GnnConfig.k`` must be the k of the graphs.

Features (:mod:`.features`)
    21 per node, from the (k-1)-mer alone: A/C/G/T fractions, GC fraction, the 16 dinucleotide
    frequencies. Edge weight ``w = log1p(count)``.

Model (``GnnConfig``: k, hidden_dim H=64, embed_dim E=64, layers L=2, n_classes for the head)
    Edges are undirected: each k-mer edge is used in both directions (a self-loop twice).

    - ``h0 = relu(W_in x + b_in)``
    - L times: ``h' = relu(W_self h + b_self + W_nbr a)``, ``a_i = Σ_j w_ij h_j / Σ_j w_ij`` over
      the neighbours j of i (``a_i = 0`` for a node without edges)
    - ``z = W_out [mean_i h_i ‖ max_i h_i] + b_out``; embedding ``z / ||z||`` (L2, dim E)
    - training only: ``logits = W_head (10 · embedding) + b_head`` (stored in the file, unused here)

    An empty graph (no nodes, e.g. a fragment without a valid k-mer) embeds as the zero vector.

Backends
    ``pyg`` (default, :mod:`.model_pyg`): PyTorch Geometric ``MessagePassing`` and global pools,
    current torch (CPU build ``torch==2.13.0``). ``dgl`` (:mod:`.model_dgl`): ``update_all`` with
    ``u_mul_e``/``sum`` on a ``dgl.batch``, ``mean_nodes``/``max_nodes``. DGL 2.1.0 needs torch
    2.2.1 and numpy < 2, so it lives in its own environment: ``make dgl-env`` builds ``.venv-dgl``
    (``plugins/genomics/dgl-env/README.md``), where ``python -m hpcprep_genomics.gnn.cli_dgl``
    embeds a graph bundle, and where ``hpcprep run`` can use ``backend = "dgl"`` once hpcprep and
    this plugin are installed into it. Both backends build their modules from the same arrays and
    agree within 1e-5. ``embed_graphs`` checks and stacks a whole batch at once (:func:`pack_graphs`,
    NumPy); the PyG embedder evaluates the same formula in a cheaper order (per-(k-1)-mer tables for
    the input and first layer, ``W_nbr`` before the mean, a row-normalised CSR adjacency: see
    :mod:`.model_pyg`), while DGL follows the formula step by step. Embedders are cached per
    backend, config and weight values (:func:`cached_embedder`).

Weights (:mod:`.weights`)
    ``.npz`` with a JSON ``__config__`` and float32 arrays named ``input.*``, ``layers.<i>.self.*``,
    ``layers.<i>.neighbor.weight``, ``readout.*``, ``head.*`` (torch ``Linear`` layout).
    ``random_weights(config, seed)`` gives deterministic untrained weights; ``hpcprep genomics
    train-gnn`` (:mod:`.train`) trains them as a classifier.

This package imports only NumPy eagerly: the DGL environment imports it too.
"""

from __future__ import annotations

import hashlib

import numpy as np

from .features import N_FEATURES, PackedGraphs, edge_weights, node_features, pack_graphs
from .weights import (
    DEFAULT_CONFIG,
    GnnConfig,
    load_graphs,
    load_weights,
    param_shapes,
    random_weights,
    save_graphs,
    save_weights,
    weights_meta,
)

BACKENDS = ("pyg", "dgl")

_DGL_HELP = (
    "the dgl GNN backend needs DGL 2.1.0, which imports only with torch 2.2.1 and numpy < 2, so it "
    "lives in its own virtual environment: `make dgl-env` builds .venv-dgl (steps in "
    "plugins/genomics/dgl-env/README.md). There, `python -m hpcprep_genomics.gnn.cli_dgl --weights W.npz "
    '--graphs G.npz --out E.npy` embeds graphs, and `hpcprep run` can use backend = "dgl" once hpcprep '
    'and hpcprep-genomics are installed into it; elsewhere use backend = "pyg" (same weights, same '
    "embeddings within 1e-5)"
)
_PYG_HELP = (
    "the pyg GNN backend needs torch and torch-geometric: pip install 'hpcprep-genomics[pyg]' "
    "(pin torch==2.13.0 for the CPU build)"
)


def backend_embedder(backend: str, config: GnnConfig, arrays: dict, device: str = "cpu"):
    """An object with ``embed(graphs) -> (n, embed_dim)`` for checked, non-empty graphs (and
    ``embed_packed(PackedGraphs)``); a new one each call (see :func:`cached_embedder`)."""
    if backend == "pyg":
        try:
            from .model_pyg import PygEmbedder
        except ImportError as exc:
            raise RuntimeError(f"{_PYG_HELP} ({exc})") from exc
        return PygEmbedder(config, arrays, device=device)
    if backend == "dgl":
        if device != "cpu":
            raise ValueError(f"the dgl backend runs on the CPU here (device={device!r}); use backend='pyg' on a GPU")
        try:
            from .model_dgl import DglEmbedder
        except ImportError as exc:
            raise RuntimeError(f"{_DGL_HELP} (import failed here: {exc})") from exc
        return DglEmbedder(config, arrays)
    raise ValueError(f"unknown GNN backend {backend!r}; choose one of {list(BACKENDS)}")


#: Embedders by (backend, config, digest of the weights): building one loads the module and, for
#: PyG, per-code tables, which would otherwise be repeated for every ``embed_graphs`` call (batch).
_EMBEDDERS: dict[tuple, object] = {}
_EMBEDDERS_MAX = 4


def _weights_digest(arrays: dict) -> str:
    h = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float32)
        h.update(f"{name}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def cached_embedder(backend: str, config: GnnConfig, arrays: dict, device: str = "cpu"):
    """:func:`backend_embedder`, kept for reuse while ``backend``, ``config`` and the weights' values are the same."""
    key = (backend, config, device, _weights_digest(arrays))
    embedder = _EMBEDDERS.pop(key, None)
    if embedder is None:
        embedder = backend_embedder(backend, config, arrays, device)
    _EMBEDDERS[key] = embedder  # most recently used last
    while len(_EMBEDDERS) > _EMBEDDERS_MAX:
        del _EMBEDDERS[next(iter(_EMBEDDERS))]
    return embedder


def embed_graphs(
    graphs, config: GnnConfig, arrays: dict, backend: str = "pyg", batch_graphs: int = 256, device: str = "cpu"
) -> np.ndarray:
    """Embed de Bruijn graphs: float32 ``(len(graphs), config.embed_dim)``, rows L2-normalised.

    ``graphs``: ``(node_codes, src, dst, edge_counts)`` tuples built with ``k = config.k``, or a
    :class:`PackedGraphs`; ``arrays`` from :func:`load_weights` or :func:`random_weights`;
    ``batch_graphs`` graphs go to the backend at once (batching does not change the result; the
    PyG backend further splits a batch into cache-sized passes). Empty graphs give zeros.
    ``device="cuda"`` runs the PyG backend on the GPU (same embeddings within 1e-5).
    """
    if batch_graphs < 1:
        raise ValueError(f"batch_graphs={batch_graphs}: must be >= 1")
    if backend not in BACKENDS:
        raise ValueError(f"unknown GNN backend {backend!r}; choose one of {list(BACKENDS)}")
    packed = graphs if isinstance(graphs, PackedGraphs) else pack_graphs(graphs)
    out = np.zeros((packed.n_graphs, config.embed_dim), dtype=np.float32)
    empty = packed.node_counts() == 0
    if empty.all():
        return out
    if empty.any():
        # Graphs without nodes have no edges either: dropping them is a cut of node_ptr / edge_ptr.
        keep = np.flatnonzero(~empty)
        idx = np.append(keep, packed.n_graphs)
        packed = PackedGraphs(
            packed.node_codes, packed.src, packed.dst, packed.weights, packed.node_ptr[idx], packed.edge_ptr[idx]
        )
    else:
        keep = None
    embedder = cached_embedder(backend, config, arrays, device)
    emb = np.empty((packed.n_graphs, config.embed_dim), dtype=np.float32)
    for start in range(0, packed.n_graphs, batch_graphs):
        stop = min(start + batch_graphs, packed.n_graphs)
        part = packed if (start, stop) == (0, packed.n_graphs) else packed.slice(start, stop)
        emb[start:stop] = embedder.embed_packed(part)
    if keep is None:
        return emb
    out[keep] = emb
    return out


__all__ = [
    "BACKENDS",
    "DEFAULT_CONFIG",
    "N_FEATURES",
    "GnnConfig",
    "PackedGraphs",
    "backend_embedder",
    "cached_embedder",
    "edge_weights",
    "embed_graphs",
    "load_graphs",
    "load_weights",
    "node_features",
    "pack_graphs",
    "param_shapes",
    "random_weights",
    "save_graphs",
    "save_weights",
    "weights_meta",
]
