"""The de Bruijn GNN with PyTorch Geometric: ``MessagePassing`` layers and global pools.

Same formula and parameter names as :mod:`.model_dgl` (see the package doc); the graphs of a
batch are stacked PyG-style into one disjoint graph with a ``batch`` vector.

:class:`GraphEncoder` ``forward`` is the training path (autograd, any batch). :class:`PygEmbedder`
is the inference path, the same model evaluated in a cheaper order:

- A node's input features, ``h0``, and the first layer's ``W_self h0 + b_self`` and ``W_nbr h0``
  depend only on the node's (k-1)-mer code, so for ``k - 1 <= CODE_TABLE_MAX_NODE_K`` they are
  computed once per weights for all ``4**(k-1)`` codes and gathered per node.
- Every layer applies ``W_nbr`` before aggregating (``W_nbr Σ_j m_ij h_j = Σ_j m_ij W_nbr h_j``,
  linearity), so the first layer needs no per-node matrix product at all.
- Aggregation is one sparse product with the row-normalised adjacency ``m_ij = w_ij / Σ_j w_ij``
  (a torch CSR tensor built with NumPy for the whole batch), through ``MessagePassing.propagate``.
- Batches are split into passes of about ``PASS_NODES`` nodes so the working set stays in cache.

Both orders agree to float32 rounding (``tests/genomics/test_gnn.py`` holds them and DGL to 1e-5).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torch_geometric.data import Batch
from torch_geometric.nn import MessagePassing, global_max_pool, global_mean_pool
from torch_geometric.utils import scatter, spmm, to_torch_csr_tensor

from .features import N_FEATURES, PackedGraphs, check_codes, feature_table, node_features, pack_graphs
from .weights import GnnConfig, check_arrays

# PyG builds the sparse adjacency as a torch CSR tensor; torch warns once that CSR is "beta"
# and that invariant checks are off. Both are expected here, not something a user can act on.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)
warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled", category=UserWarning)

#: Guards the division of the weighted mean; a node without edges aggregates to zero.
EPS = 1e-12
#: The head sees the unit-length embedding times this, so logits can grow beyond ±||W_head||.
LOGIT_SCALE = 10.0
#: Up to this (k-1), the inference path gathers h0 and the first layer's projections from per-code tables
#: (4**7 rows × 2 × hidden_dim float32: 8 MiB at hidden_dim 64); above it, it computes them per node.
CODE_TABLE_MAX_NODE_K = 7
#: The inference path splits a batch into forward passes of about this many nodes (cache-sized).
PASS_NODES = 8192


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

    def combine(self, h_self, h_nbr, mean_adj_t):
        """Inference: ``relu(h_self + M @ h_nbr)`` with ``h_self = W_self h + b``, ``h_nbr = W_nbr h`` and
        ``mean_adj_t`` the row-normalised sparse adjacency (``M @ h_nbr`` = W_nbr times the weighted mean)."""
        return torch.relu_(self.propagate(mean_adj_t, h=h_nbr, w=None).add_(h_self))

    def infer(self, h, mean_adj_t):
        """Inference form of :meth:`forward` (same value, ``W_nbr`` applied before the mean)."""
        return self.combine(self.self(h), self.neighbor(h), mean_adj_t)


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
    """Checked, non-empty graphs as one PyG ``Batch`` (x, edge_index, edge_weight, batch, ptr).

    ``graphs``: a list of ``(node_codes, src, dst, edge_counts)`` or a :class:`PackedGraphs`.
    """
    packed = graphs if isinstance(graphs, PackedGraphs) else pack_graphs(graphs)
    src, dst = packed.src, packed.dst
    return Batch(
        x=torch.from_numpy(node_features(packed.node_codes, node_k)),
        edge_index=torch.from_numpy(np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])),
        edge_weight=torch.from_numpy(np.concatenate([packed.weights, packed.weights])),
        batch=torch.from_numpy(packed.node_graph()),
        ptr=torch.from_numpy(packed.node_ptr),
    )


def mean_adjacency_csr(packed: PackedGraphs, device: torch.device | str = "cpu") -> torch.Tensor:
    """The batch's row-normalised adjacency (:meth:`PackedGraphs.mean_adjacency`) as a torch CSR tensor."""
    row_ptr, col, value = packed.mean_adjacency()
    n = packed.n_nodes
    return torch.sparse_csr_tensor(
        torch.from_numpy(row_ptr).to(device),
        torch.from_numpy(col).to(device),
        torch.from_numpy(value).to(device),
        size=(n, n),
    )


def pass_bounds(node_ptr: np.ndarray, max_nodes: int) -> list[tuple[int, int]]:
    """Split the graphs of ``node_ptr`` into contiguous runs of at most ``max_nodes`` nodes (at least one graph each)."""
    bounds, start, n = [], 0, node_ptr.size - 1
    while start < n:
        stop = int(np.searchsorted(node_ptr, node_ptr[start] + max_nodes, side="right")) - 1
        stop = min(max(stop, start + 1), n)
        bounds.append((start, stop))
        start = stop
    return bounds


class PygEmbedder:
    """Embeds graphs with fixed weights on the inference path (see the module doc); ``embed_graphs`` drives it."""

    def __init__(self, config: GnnConfig, arrays: dict, device: str = "cpu"):
        self.config = config
        # "cuda": the same inference path on a GPU (graphs are packed on the CPU, then moved).
        self.device = torch.device(device)
        self.module = GraphEncoder(config).load_arrays(arrays).eval().to(self.device)
        #: Per (k-1)-mer code: h0 (no layers) or the first layer's (W_self h0 + b_self, W_nbr h0); else None.
        self.tables: tuple[torch.Tensor, ...] | None = None
        table = feature_table(config.node_k) if config.node_k <= CODE_TABLE_MAX_NODE_K else None
        if table is not None:
            with torch.inference_mode():
                h0 = torch.relu(self.module.input(torch.from_numpy(table.copy()).to(self.device)))
                if config.layers:
                    first = self.module.layers[0]
                    self.tables = (first.self(h0).contiguous(), first.neighbor(h0).contiguous())
                else:
                    self.tables = (h0.contiguous(),)

    def embed(self, graphs) -> np.ndarray:
        """Embeddings of checked, non-empty graphs (a list of tuples or a :class:`PackedGraphs`)."""
        return self.embed_packed(graphs if isinstance(graphs, PackedGraphs) else pack_graphs(graphs))

    def embed_packed(self, packed: PackedGraphs) -> np.ndarray:
        check_codes(packed.node_codes, self.config.node_k)
        out = np.empty((packed.n_graphs, self.config.embed_dim), dtype=np.float32)
        with torch.inference_mode():
            # Cache-sized passes pay on a CPU; a GPU takes the whole batch at once.
            max_nodes = PASS_NODES if self.device.type == "cpu" else max(packed.n_nodes, 1)
            for start, stop in pass_bounds(packed.node_ptr, max_nodes):
                part = packed if (start, stop) == (0, packed.n_graphs) else packed.slice(start, stop)
                out[start:stop] = self._forward(part).cpu().numpy()
        return out

    def _forward(self, packed: PackedGraphs) -> torch.Tensor:
        module = self.module
        dev = self.device
        adj = mean_adjacency_csr(packed, dev)
        layers = list(module.layers)
        if self.tables is not None:
            codes = torch.from_numpy(packed.node_codes.astype(np.int64)).to(dev)
            gathered = [t.index_select(0, codes) for t in self.tables]
            if layers:
                h = layers.pop(0).combine(gathered[0], gathered[1], adj)
            else:
                h = gathered[0]
        else:
            x = torch.from_numpy(node_features(packed.node_codes, self.config.node_k)).to(dev)
            h = torch.relu_(module.input(x))
        for layer in layers:
            h = layer.infer(h, adj)
        batch, size = torch.from_numpy(packed.node_graph()).to(dev), packed.n_graphs
        pooled = torch.cat([global_mean_pool(h, batch, size), global_max_pool(h, batch, size)], dim=-1)
        return nn.functional.normalize(module.readout(pooled), p=2.0, dim=-1, eps=EPS)
