"""The de Bruijn GNN with DGL: ``update_all`` message passing on a ``dgl.batch`` of graphs.

Same formula and parameter names as :mod:`.model_pyg` (see the package doc). Imports only
numpy, torch and dgl, so it runs in the separate DGL environment (``dgl-env/``).
"""

from __future__ import annotations

import os

# Without it DGL writes ~/.dgl/config.json on first import; PyTorch is the only backend we use.
os.environ.setdefault("DGLBACKEND", "pytorch")

import dgl  # noqa: E402
import dgl.function as fn  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from .features import N_FEATURES, PackedGraphs, node_features, pack_graphs  # noqa: E402
from .weights import GnnConfig, check_arrays  # noqa: E402

#: Guards the division of the weighted mean; a node without edges aggregates to zero.
EPS = 1e-12


class WeightedMeanConv(nn.Module):
    """``h' = relu(W_self h + b + W_nbr (Σ_j w_ij h_j / Σ_j w_ij))`` over the graph's edges."""

    def __init__(self, dim: int):
        super().__init__()
        self.self = nn.Linear(dim, dim, bias=True)
        self.neighbor = nn.Linear(dim, dim, bias=False)

    def forward(self, g, h, weight_sum):
        with g.local_scope():
            g.ndata["h"] = h
            g.update_all(fn.u_mul_e("h", "w", "m"), fn.sum("m", "num"))
            agg = g.ndata["num"] / weight_sum.clamp(min=EPS)
        return torch.relu(self.self(h) + self.neighbor(agg))


class GraphEncoder(nn.Module):
    """Input linear, ``layers`` × :class:`WeightedMeanConv`, mean‖max readout, linear, L2 norm."""

    def __init__(self, config: GnnConfig):
        super().__init__()
        self.config = config
        self.input = nn.Linear(N_FEATURES, config.hidden_dim)
        self.layers = nn.ModuleList(WeightedMeanConv(config.hidden_dim) for _ in range(config.layers))
        self.readout = nn.Linear(2 * config.hidden_dim, config.embed_dim)
        self.head = nn.Linear(config.embed_dim, config.n_classes)

    def forward(self, g, x) -> torch.Tensor:
        """L2-normalised embeddings of a batched graph (edge data ``w`` of shape (E, 1))."""
        with g.local_scope():
            g.update_all(fn.copy_e("w", "m"), fn.sum("m", "wsum"))
            weight_sum = g.ndata["wsum"]
            h = torch.relu(self.input(x))
            for layer in self.layers:
                h = layer(g, h, weight_sum)
            g.ndata["h"] = h
            pooled = torch.cat([dgl.mean_nodes(g, "h"), dgl.max_nodes(g, "h")], dim=-1)
        return nn.functional.normalize(self.readout(pooled), p=2.0, dim=-1, eps=EPS)

    def load_arrays(self, arrays: dict) -> GraphEncoder:
        arrays = check_arrays(self.config, arrays)
        self.load_state_dict({n: torch.from_numpy(a.copy()) for n, a in arrays.items()}, strict=True)
        return self


def to_dgl(graphs, node_k: int):
    """Checked, non-empty graphs (a list of tuples or a :class:`PackedGraphs`) as ``(batched DGL graph
    of the undirected edges with edata w (E, 1), node features)``, built for the whole batch at once."""
    packed = graphs if isinstance(graphs, PackedGraphs) else pack_graphs(graphs)
    u, v, w = packed.undirected()
    g = dgl.graph((torch.from_numpy(u), torch.from_numpy(v)), num_nodes=packed.n_nodes, idtype=torch.int64)
    g.set_batch_num_nodes(torch.from_numpy(packed.node_counts()))
    g.set_batch_num_edges(torch.from_numpy(2 * packed.edge_counts()))
    g.edata["w"] = torch.from_numpy(w).unsqueeze(-1)
    return g, torch.from_numpy(node_features(packed.node_codes, node_k))


class DglEmbedder:
    """Embeds checked, non-empty graphs with fixed weights (``embed_graphs`` drives it)."""

    def __init__(self, config: GnnConfig, arrays: dict):
        self.config = config
        self.module = GraphEncoder(config).load_arrays(arrays).eval()

    def embed(self, graphs) -> np.ndarray:
        return self.embed_packed(graphs if isinstance(graphs, PackedGraphs) else pack_graphs(graphs))

    def embed_packed(self, packed: PackedGraphs) -> np.ndarray:
        with torch.inference_mode():
            g, x = to_dgl(packed, self.config.node_k)
            return self.module(g, x).numpy()
