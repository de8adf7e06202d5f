"""The de Bruijn GNN with PyTorch Geometric: ``MessagePassing`` layers and global pools.

Same formula and parameter names as :mod:`.model_dgl` (see the package doc); the graphs of a
batch are stacked PyG-style into one disjoint graph with a ``batch`` vector.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, global_max_pool, global_mean_pool
from torch_geometric.utils import scatter, spmm, to_torch_csr_tensor

from .features import N_FEATURES, edge_weights, node_features, undirected_edges
from .weights import GnnConfig, check_arrays

# PyG builds the sparse adjacency as a torch CSR tensor; torch warns once that CSR is "beta"
# and that invariant checks are off. Both are expected here, not something a user can act on.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled", category=UserWarning)

#: Guards the division of the weighted mean; a node without edges aggregates to zero.
EPS = 1e-12
#: The head sees the unit-length embedding times this, so logits can grow beyond ±||W_head||.
LOGIT_SCALE = 10.0


class WeightedMeanConv(MessagePassing):
    """``h' = relu(W_self h + b + W_nbr (Σ_j w_ij h_j / Σ_j w_ij))`` over the given edges."""

    def __init__(self, dim: int):
        super().__init__(aggr="sum", flow="source_to_target")
        self.self = nn.Linear(dim, dim, bias=True)
        self.neighbor = nn.Linear(dim, dim, bias=False)

    def forward(self, h, adj_t, weight_sum):
        """``adj_t``: sparse (target, source) matrix of edge weights, or ``(edge_index, edge_weight)``."""
        if isinstance(adj_t, tuple):
            num = self.propagate(adj_t[0], h=h, w=adj_t[1])
        else:
            num = self.propagate(adj_t, h=h, w=None)
        agg = num / weight_sum.clamp(min=EPS).unsqueeze(-1)
        return torch.relu(self.self(h) + self.neighbor(agg))

    def message(self, h_j, w):
        return w.unsqueeze(-1) * h_j

    def message_and_aggregate(self, adj_t, h):
        # The fused path PyG takes for a sparse adjacency: Σ_j w_ij h_j without an (E, H) message tensor.
        return spmm(adj_t, h, reduce="sum")


class GraphEncoder(nn.Module):
    """Input linear, ``layers`` × :class:`WeightedMeanConv`, mean‖max readout, linear, L2 norm."""

    def __init__(self, config: GnnConfig, sparse: bool = True):
        super().__init__()
        self.config = config
        #: True: aggregate with a sparse adjacency (fused SpMM); False: gather/scatter over edge_index.
        self.sparse = sparse
        self.input = nn.Linear(N_FEATURES, config.hidden_dim)
        self.layers = nn.ModuleList(WeightedMeanConv(config.hidden_dim) for _ in range(config.layers))
        self.readout = nn.Linear(2 * config.hidden_dim, config.embed_dim)
        self.head = nn.Linear(config.embed_dim, config.n_classes)

    def forward(self, data: Batch) -> torch.Tensor:
        """L2-normalised embeddings ``(num_graphs, embed_dim)``; every graph must have a node."""
        edge_index, w, n = data.edge_index, data.edge_weight, data.num_nodes
        weight_sum = scatter(w, edge_index[1], dim=0, dim_size=n, reduce="sum")
        adj_t = to_torch_csr_tensor(edge_index.flip(0), w, size=(n, n)) if self.sparse else (edge_index, w)
        h = torch.relu(self.input(data.x))
        for layer in self.layers:
            h = layer(h, adj_t, weight_sum)
        size = data.num_graphs
        pooled = torch.cat([global_mean_pool(h, data.batch, size), global_max_pool(h, data.batch, size)], dim=-1)
        return nn.functional.normalize(self.readout(pooled), p=2.0, dim=-1, eps=EPS)

    def logits(self, data: Batch) -> torch.Tensor:
        return self.head(LOGIT_SCALE * self.forward(data))

    def load_arrays(self, arrays: dict) -> GraphEncoder:
        arrays = check_arrays(self.config, arrays)
        self.load_state_dict({n: torch.from_numpy(a.copy()) for n, a in arrays.items()}, strict=True)
        return self

    def arrays(self) -> dict[str, np.ndarray]:
        return {n: t.detach().cpu().numpy().astype(np.float32, copy=True) for n, t in self.state_dict().items()}


def to_batch(graphs, node_k: int) -> Batch:
    """Checked, non-empty graphs as one PyG ``Batch`` (x, edge_index, edge_weight, batch, ptr)."""
    n_nodes = np.array([g[0].size for g in graphs], dtype=np.int64)
    ptr = np.zeros(len(graphs) + 1, dtype=np.int64)
    np.cumsum(n_nodes, out=ptr[1:])
    x = node_features(np.concatenate([g[0] for g in graphs]), node_k)
    src = np.concatenate([g[1] + ptr[i] for i, g in enumerate(graphs)])
    dst = np.concatenate([g[2] + ptr[i] for i, g in enumerate(graphs)])
    w = edge_weights(np.concatenate([g[3] for g in graphs]))
    src, dst, w = undirected_edges(src, dst, w)
    return Batch(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(np.stack([src, dst])),
        edge_weight=torch.from_numpy(w),
        batch=torch.from_numpy(np.repeat(np.arange(len(graphs)), n_nodes)),
        ptr=torch.from_numpy(ptr),
    )


class PygEmbedder:
    """Embeds checked, non-empty graphs with fixed weights (``embed_graphs`` drives it)."""

    def __init__(self, config: GnnConfig, arrays: dict):
        self.config = config
        self.module = GraphEncoder(config).load_arrays(arrays).eval()

    def embed(self, graphs) -> np.ndarray:
        with torch.inference_mode():
            return self.module(to_batch(graphs, self.config.node_k)).numpy()
