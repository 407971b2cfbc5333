"""CGCNN crystal encoder (Xie & Grossman, PRL 2018), the structure side of XCCP ("modified CGCNN" → 64-d).

Per atom i with neighbours j (edges from :func:`pxrdbench.data.graphs.cgcnn_neighbors`, 12 nearest within
8 Å), with atom features v and Gaussian-expanded distances e_ij:

    e_ij,k = exp(−(d_ij − μ_k)² / σ²),  μ_k = k·cutoff/(K−1), k = 0..K−1 (K = 41, cutoff 8 Å, σ = 0.2 Å)
    z_ij   = BN₁(W·[v_i ‖ v_j ‖ e_ij] + b),  split into (filter f_ij, core c_ij) of width F each
    v_i'   = softplus(v_i + BN₂(Σ_j sigmoid(f_ij) ⊙ softplus(c_ij)))

three times (width 64), then the mean over the atoms of each crystal and a linear map to ``out_dim``.

Choices: atoms start from a learned ``nn.Embedding`` over Z = 1..100 (CGCNN's fixed 92-d element table is a
documented substitute: the table is not redistributed here). BatchNorm uses edge/atom batch statistics in
training, so "a batch of two equals each alone" holds in eval mode. The readout is a single Linear (XCCP does
not publish its head; CGCNN's property head is replaced by the embedding projection).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError, did_you_mean

ATOM_FEATURES = ("learned",)
MAX_ATOMIC_NUMBER = 100


class GaussianDistance(nn.Module):
    """Gaussian expansion of distances: d [E] (Å) → exp(−(d − μ_k)²/σ²) [E, K], μ_k evenly on [0, cutoff]."""

    def __init__(self, cutoff: float = 8.0, num_gaussians: int = 41, width: float = 0.2) -> None:
        super().__init__()
        if cutoff <= 0 or num_gaussians < 2 or width <= 0:
            raise ConfigError(
                f"GaussianDistance: invalid cutoff={cutoff}, num_gaussians={num_gaussians}, width={width}."
            )
        self.register_buffer("centres", torch.linspace(0.0, cutoff, num_gaussians), persistent=False)
        self.width = float(width)

    def forward(self, distance: Tensor) -> Tensor:
        """distance: [E] in Å → [E, num_gaussians]."""
        return torch.exp(-((distance.unsqueeze(-1) - self.centres) ** 2) / self.width**2)


class GatedGraphConv(nn.Module):
    """One CGCNN convolution (gated edge messages, sum at the centre, residual softplus update)."""

    def __init__(self, atom_dim: int, edge_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * atom_dim + edge_dim, 2 * atom_dim)
        self.norm_edges = nn.BatchNorm1d(2 * atom_dim)
        self.norm_sum = nn.BatchNorm1d(atom_dim)

    def forward(self, atoms: Tensor, edge_index: Tensor, edges: Tensor) -> Tensor:
        """atoms [n, F], edge_index [2, E] (row 0 neighbour j, row 1 centre i), edges [E, K] → [n, F]."""
        source, target = edge_index[0], edge_index[1]
        z = self.norm_edges(self.linear(torch.cat([atoms[target], atoms[source], edges], dim=-1)))
        gate, core = z.chunk(2, dim=-1)
        messages = torch.sigmoid(gate) * F.softplus(core)
        summed = torch.zeros_like(atoms).index_add_(
            0, target, messages.to(atoms.dtype)
        )  # fp32 sum under autocast
        return F.softplus(atoms + self.norm_sum(summed))


class CGCNN(nn.Module):
    """Crystal graph encoder: a torch_geometric Batch (x, edge_index, edge_dist, batch) → [G, out_dim].

    Args:
        embedding_dim: atom feature width F (64 in CGCNN).
        num_gaussians: K distance basis functions (41).
        cutoff: largest Gaussian centre in Å (8).
        gaussian_width: σ in Å (0.2).
        n_conv: number of gated convolutions (3).
        out_dim: embedding size (64 in XCCP).
        atom_features: ``learned`` (an embedding over Z = 1..100).
    """

    graph_kind = "cgcnn"
    """The cached graphs this encoder reads (12 nearest neighbours within 8 Å)."""

    def __init__(
        self,
        embedding_dim: int = 64,
        num_gaussians: int = 41,
        cutoff: float = 8.0,
        gaussian_width: float = 0.2,
        n_conv: int = 3,
        out_dim: int = 64,
        atom_features: str = "learned",
    ) -> None:
        super().__init__()
        if atom_features not in ATOM_FEATURES:
            raise did_you_mean(atom_features, ATOM_FEATURES, "atom_features")
        if embedding_dim < 1 or n_conv < 1 or out_dim < 1:
            raise ConfigError(
                f"CGCNN: embedding_dim={embedding_dim}, n_conv={n_conv}, out_dim={out_dim} must be ≥ 1."
            )
        self.output_dim = out_dim
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, embedding_dim)  # row 0 unused (no Z = 0)
        self.distance_expansion = GaussianDistance(cutoff, num_gaussians, gaussian_width)
        self.convs = nn.ModuleList(GatedGraphConv(embedding_dim, num_gaussians) for _ in range(n_conv))
        self.readout = nn.Linear(embedding_dim, out_dim)

    def forward(self, graph: Any) -> Tensor:
        """Embed crystals: graph → [n_graphs, out_dim].

        ``graph`` is a Data/Batch with ``x`` Long[n] (Z), ``edge_index`` [2, E], ``edge_dist`` or
        ``edge_attr`` [E] (Å) and ``batch`` Long[n] (absent for a single crystal).
        """
        numbers = graph.x.long().reshape(-1)
        if numbers.numel() == 0:
            raise InputError("graph.x", "the batch has no atoms")
        if int(numbers.min()) < 1 or int(numbers.max()) > MAX_ATOMIC_NUMBER:
            raise InputError(
                "graph.x",
                f"atomic numbers must lie in 1..{MAX_ATOMIC_NUMBER}, got {int(numbers.min())}.."
                f"{int(numbers.max())}",
            )
        distance = _edge_distance(graph)
        batch = getattr(graph, "batch", None)
        if batch is None:
            batch = torch.zeros_like(numbers)
        atoms = self.embedding(numbers)
        edges = self.distance_expansion(distance)
        for conv in self.convs:
            atoms = conv(atoms, graph.edge_index, edges)
        return self.readout(mean_per_graph(atoms, batch))


def _edge_distance(graph: Any) -> Tensor:
    """The edge distances [E] (Å) from ``edge_dist`` or, failing that, a 1-column ``edge_attr``."""
    distance = getattr(graph, "edge_dist", None)
    if distance is None:
        distance = getattr(graph, "edge_attr", None)
    if distance is None:
        raise InputError("graph", "needs edge distances in 'edge_dist' or 'edge_attr'")
    distance = distance.float()
    if distance.dim() == 2 and distance.shape[1] == 1:
        distance = distance[:, 0]
    if distance.dim() != 1 or distance.shape[0] != graph.edge_index.shape[1]:
        raise InputError(
            "graph.edge_dist",
            f"expected [E={graph.edge_index.shape[1]}] distances, got {tuple(distance.shape)}",
        )
    return distance


def mean_per_graph(values: Tensor, batch: Tensor) -> Tensor:
    """Mean of ``values`` [n, F] over the nodes of each graph (``batch`` Long[n] in 0..G−1) → [G, F]."""
    n_graphs = int(batch.max()) + 1
    sums = torch.zeros(n_graphs, values.shape[1], dtype=values.dtype, device=values.device)
    sums.index_add_(0, batch, values)
    counts = torch.bincount(batch, minlength=n_graphs).clamp(min=1).to(values.dtype)
    return sums / counts.unsqueeze(1)
