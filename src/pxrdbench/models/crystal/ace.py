"""ACE crystal encoder: MACE-style equivariant message passing with an atomic-cluster-expansion product basis.

EACNN (Zhang, Wang, Hu 2025) encodes crystals with "E3NN-based atomic cluster expansion" following MACE
(Batatia et al., NeurIPS 2022). One interaction layer t, for atom i with neighbours j within r_c (periodic
images included; edge vector r_ij = r_j − r_i, Å):

    h̃_j      = Linear(h_j^t)                                                   (channel mixing per irrep)
    A_i       = Linear( 1/n̄ · Σ_j  R(|r_ij|) ⊙ [ h̃_j ⊗ Y(r̂_ij) ] )             (A-basis, C x (0e+1o+2e+3o))
    m_i       = Σ_ν Σ_k w_{z_i,k,c} · B^ν_{i,k}(A_i)                           (:class:`SymmetricContraction`)
    h_i^{t+1} = Linear(m_i) + [t > 0] · W_{z_i} h_i^t                          (element-dependent skip)

with Y the real spherical harmonics l ≤ 3 (component normalisation), R a radial MLP of the Bessel × envelope
embedding (:class:`RadialEmbedding`) giving one weight per channel and tensor-product path ("uvu"), n̄ the
average number of neighbours, and B^ν the ACE product basis to correlation order ν. Atoms start from an
element embedding (C x 0e). Hidden features are C x 0e + C x 1o; the last layer keeps only C x 0e (as MACE).
The crystal embedding is the mean over atoms of the scalar (0e) features of every layer, concatenated,
then LayerNorm and a linear map to ``out_dim``: invariant to rotations, reflections, translations, the order of sites
and the choice of cell, because only |r_ij| and Y(r̂_ij) enter and equivariant features are contracted to
scalars before pooling (tests/models/test_ace.py checks each of these in float64).

Choices where EACNN is silent (MACE's defaults unless stated): r_c = 5 Å, 8 Bessel functions, envelope p = 5,
l ≤ 3, ν = 3, 2 layers, radial MLP [64, 64, 64] with SiLU; hidden 64x0e + 64x1o (the issue's reading; MACE's
large models use 128 channels); n̄ = 49 (the mean degree of the AMCSD radius graphs at 5 Å); element-dependent
weights and skip for Z = 1..100; the every-layer scalar readout (MACE sums a readout of every layer); the
LayerNorm before the projection (ours: at initialisation the pooled features are ~1e-3 — MACE's scales, made
for energies — and the projection's bias would otherwise dominate the L2-normalised embedding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import Tensor, nn
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.crystal.cgcnn import MAX_ATOMIC_NUMBER, mean_per_graph
from pxrdbench.models.crystal.edge_convolution import ChannelwiseConvolution
from pxrdbench.models.crystal.radial import RadialEmbedding, edge_lengths
from pxrdbench.models.crystal.symmetric_contraction import SymmetricContraction


class ElementLinear(nn.Module):
    """Per-element channel mixing of each irrep block (MACE's skip tensor product with one-hot elements):

    y_{i,w,M} = Σ_u W^l_{z_i,u,w} x_{i,u,M} / √C_in, for every irrep of ``irreps`` (same irreps in and out).
    """

    def __init__(self, irreps: str | o3.Irreps, num_elements: int = MAX_ATOMIC_NUMBER + 1) -> None:
        super().__init__()
        self.irreps = o3.Irreps(irreps)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(num_elements, mul, mul)) for mul, _ in self.irreps
        )

    def forward(self, x: Tensor, element: Tensor) -> Tensor:
        """x [N, irreps.dim], element Long[N] → [N, irreps.dim]."""
        blocks = x.split([mul * ir.dim for mul, ir in self.irreps], dim=-1)
        out = []
        for block, weight, (mul, ir) in zip(blocks, self.weights, self.irreps, strict=True):
            block = block.reshape(-1, mul, ir.dim)
            mixed = torch.einsum("num,nuw->nwm", block, weight[element].to(block.dtype)) / mul**0.5
            out.append(mixed.reshape(x.shape[0], -1))
        return torch.cat(out, dim=-1)


class ACEInteraction(nn.Module):
    """One MACE layer (module docstring): node features [N, irreps_in] → [N, irreps_out]."""

    def __init__(
        self,
        irreps_in: o3.Irreps,
        irreps_out: o3.Irreps,
        irreps_sh: o3.Irreps,
        channels: int,
        num_radial: int,
        radial_hidden: Sequence[int],
        avg_num_neighbors: float,
        correlation: int,
        residual: bool,
    ) -> None:
        super().__init__()
        self.avg_num_neighbors = float(avg_num_neighbors)
        self.linear_up = o3.Linear(irreps_in, irreps_in)
        self.conv = ChannelwiseConvolution(irreps_in, irreps_sh, [ir for _, ir in irreps_sh])
        self.radial_mlp = FullyConnectedNet([num_radial, *radial_hidden, self.conv.weight_numel], F.silu)
        irreps_a = o3.Irreps([(channels, ir) for _, ir in irreps_sh])
        self.linear_a = o3.Linear(self.conv.irreps_out, irreps_a)
        self.product = SymmetricContraction(
            str(irreps_a), str(irreps_out), correlation, MAX_ATOMIC_NUMBER + 1
        )
        self.linear_out = o3.Linear(irreps_out, irreps_out)
        if residual and o3.Irreps(irreps_in[: len(irreps_out)]) != irreps_out:
            raise ConfigError(
                f"ACEInteraction: the output irreps {irreps_out} must lead the input {irreps_in}"
            )
        self.skip = ElementLinear(irreps_out) if residual else None

    def forward(self, h: Tensor, element: Tensor, edge_index: Tensor, sh: Tensor, radial: Tensor) -> Tensor:
        """h [N, irreps_in], element Long[N], edge_index [2, E] (neighbour j → centre i), sh [E, 16],
        radial [E, num_radial] → [N, irreps_out]."""
        summed = self.conv(self.linear_up(h), sh, self.radial_mlp(radial), edge_index)
        atomic_basis = self.linear_a(summed / self.avg_num_neighbors)
        out = self.linear_out(self.product(atomic_basis, element))
        if self.skip is not None:  # the irreps kept by this layer (the leading blocks of h)
            out = out + self.skip(h[:, : out.shape[1]], element)
        return out


class ACEEncoder(nn.Module):
    """Equivariant ACE crystal encoder: a torch_geometric Batch (x, edge_index, edge_vec, batch) → [G, out_dim].

    Args:
        channels: C, the multiplicity of every hidden irrep (64).
        hidden_lmax: hidden irreps C x 0e (+ C x 1o if ≥ 1) between layers (1).
        sh_lmax: largest spherical-harmonic degree of the A-basis (3).
        num_radial: Bessel functions (8). envelope_p: polynomial envelope exponent (5).
        cutoff: radius of the neighbour graph in Å (5; must match the cached radius graphs).
        radial_hidden: hidden widths of the radial MLP ([64, 64, 64]).
        correlation: ACE correlation order ν (3).
        num_layers: interaction layers (2).
        avg_num_neighbors: n̄ dividing the summed messages (49: the AMCSD mean degree at 5 Å).
        out_dim: embedding size (384 in EACNN).
        max_edges: refuse batches with more edges than this (memory grows with C × 40 floats per edge).
    """

    graph_kind = "radius"
    """The cached graphs this encoder reads (all periodic neighbours within 5 Å, with edge vectors)."""

    def __init__(
        self,
        channels: int = 64,
        hidden_lmax: int = 1,
        sh_lmax: int = 3,
        num_radial: int = 8,
        envelope_p: int = 5,
        cutoff: float = 5.0,
        radial_hidden: Sequence[int] = (64, 64, 64),
        correlation: int = 3,
        num_layers: int = 2,
        avg_num_neighbors: float = 49.0,
        out_dim: int = 384,
        max_edges: int = 2_000_000,
    ) -> None:
        super().__init__()
        if min(channels, num_layers, out_dim, correlation) < 1 or hidden_lmax not in (0, 1) or sh_lmax < 1:
            raise ConfigError(
                f"ACEEncoder: channels={channels}, num_layers={num_layers}, out_dim={out_dim}, "
                f"correlation={correlation} must be ≥ 1, hidden_lmax in (0, 1), sh_lmax ≥ 1"
            )
        if avg_num_neighbors <= 0:
            raise ConfigError(f"ACEEncoder: avg_num_neighbors={avg_num_neighbors} must be > 0")
        self.output_dim, self.channels, self.max_edges = int(out_dim), int(channels), int(max_edges)
        self.irreps_sh = o3.Irreps.spherical_harmonics(sh_lmax)
        self.spherical_harmonics = o3.SphericalHarmonics(
            self.irreps_sh, normalize=True, normalization="component"
        )
        self.radial = RadialEmbedding(cutoff, num_radial, envelope_p)
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, channels)
        scalars = o3.Irreps(f"{channels}x0e")
        hidden = scalars if hidden_lmax == 0 else o3.Irreps(f"{channels}x0e + {channels}x1o")
        layers, irreps_in = [], scalars
        for t in range(num_layers):
            irreps_out = scalars if t == num_layers - 1 else hidden
            layers.append(
                ACEInteraction(
                    irreps_in,
                    irreps_out,
                    self.irreps_sh,
                    channels,
                    num_radial,
                    radial_hidden,
                    avg_num_neighbors,
                    correlation,
                    residual=t > 0,
                )
            )
            irreps_in = irreps_out
        self.layers = nn.ModuleList(layers)
        self.readout = nn.Sequential(
            nn.LayerNorm(num_layers * channels), nn.Linear(num_layers * channels, out_dim)
        )

    def node_features(self, graph: Any) -> list[Tensor]:
        """The node features after every layer: a list of [N, irreps_out.dim] (e3nn layout)."""
        numbers = graph.x.long().reshape(-1)
        if numbers.numel() == 0:
            raise InputError("graph.x", "the batch has no atoms")
        if int(numbers.min()) < 1 or int(numbers.max()) > MAX_ATOMIC_NUMBER:
            raise InputError("graph.x", f"atomic numbers must lie in 1..{MAX_ATOMIC_NUMBER}")
        edge_vec = getattr(graph, "edge_vec", None)
        if edge_vec is None:
            raise InputError(
                "graph", "ACEEncoder needs edge vectors 'edge_vec' (radius graphs: with_graphs='radius')"
            )
        n_edges = int(graph.edge_index.shape[1])
        if n_edges > self.max_edges:
            raise InputError(
                "graph",
                f"{n_edges:,} edges exceed max_edges={self.max_edges:,}; use a smaller batch or cutoff",
            )
        dtype = self.embedding.weight.dtype
        edge_vec = edge_vec.to(dtype)
        sh = self.spherical_harmonics(edge_vec)
        radial = self.radial(edge_lengths(edge_vec))
        h = self.embedding(numbers)
        features = []
        for layer in self.layers:
            h = layer(h, numbers, graph.edge_index, sh, radial)
            features.append(h)
        return features

    def forward(self, graph: Any) -> Tensor:
        """Embed crystals: graph → [n_graphs, out_dim] (invariant)."""
        features = self.node_features(graph)
        scalars = torch.cat([h[:, : self.channels] for h in features], dim=-1)  # the C x 0e block comes first
        batch = getattr(graph, "batch", None)
        if batch is None:
            batch = torch.zeros(scalars.shape[0], dtype=torch.long, device=scalars.device)
        return self.readout(mean_per_graph(scalars, batch))
