"""CSPNet crystal encoder, the structure side of XtalNet's CPCP stage (DiffCSP's CSPNet, no time input).

Per crystal with n atoms (atomic numbers Z_i, fractional coordinates f_i, lattice L with rows = lattice
vectors in Å), on the fully connected graph of all n² ordered pairs (i, j), self-loops included, no cutoff:

    h_i⁰   = Embed(Z_i)                                               (Z in 1..100, width H = 512)
    g      = vec(L·Lᵀ)                                                (9 values, Å², unnormalised Gram matrix)
    φ_ij   = [sin(2πk·Δf_ij,c), cos(2πk·Δf_ij,c)]  k = 0..K−1, c = 1..3  (6K values; Δf_ij = f_j − f_i)
    ĥ      = LayerNorm(hˡ)
    m_ij   = SiLU(W₂·SiLU(W₁·[ĥ_i ‖ ĥ_j ‖ g ‖ φ_ij] + b₁) + b₂)      (edge MLP, in = 2H + 9 + 6K → H → H)
    hˡ⁺¹_i = hˡ_i + SiLU(V₂·SiLU(V₁·[ĥ_i ‖ mean_j m_ij] + c₁) + c₂)  (node MLP, 2H → H → H, residual)

for ``num_layers`` layers (6), then a final LayerNorm, the mean over the atoms of each crystal and a
bias-free Linear to ``out_dim`` (512). With H = 512, K = 128 the edge input is 512 + 512 + 9 + 768 = 1801.

Efficiency: W₁ is one ``nn.Linear`` (parameters as in the reference) whose columns are split in ``forward``:
W₁·[ĥ_i ‖ ĥ_j ‖ g ‖ φ_ij] = (W_a ĥ)_i + (W_b ĥ)_j + W_g g + W_φ φ_ij, with W_a ĥ, W_b ĥ computed per atom,
W_g g per crystal and only W_φ φ_ij per pair. The work is O(Σ n²); pairs are processed in chunks of at
most ``max_pairs_per_chunk`` per layer (each chunk recomputed in backward when there are several), so
memory stays bounded by the chunk size and the atom count, never by Σ n².

Crystals with more than ``max_atoms`` atoms (400; XtalNet drops them) or with no atoms are not embedded:
their output row is all NaN and their pairs are never built. Callers rank NaN candidates last and count
them; :meth:`CSPNet.embeddable` says which crystals get a finite embedding.

Symmetry: the encoder is invariant to a permutation of the sites, a translation of all fractional
coordinates (sin/cos of 2πk·Δf are periodic, so wrapping mod 1 is exact) and a rotation of the Cartesian
frame (L·Lᵀ is rotation-invariant and fractional coordinates do not change). It is NOT invariant to a change
of unit cell: a supercell or another basis of the same lattice changes both the Gram matrix and the
fractional coordinates, hence the embedding. Nobody should rely on cell invariance.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.crystal.cgcnn import MAX_ATOMIC_NUMBER, mean_per_graph

GRAM_DIM = 9


class CSPLayer(nn.Module):
    """One message-passing layer: LayerNorm, edge MLP over all pairs, mean at atom i, residual node MLP."""

    def __init__(self, hidden: int, phi_dim: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.norm = nn.LayerNorm(hidden)
        self.edge_mlp = nn.Sequential(
            nn.Linear(2 * hidden + GRAM_DIM + phi_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
        )
        self.node_mlp = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU()
        )


class CSPNet(nn.Module):
    """CSPNet encoder: a torch_geometric Data/Batch (x, frac_coords, lattice, batch) → [n_graphs, out_dim].

    Args:
        hidden: node and message width H (512).
        num_layers: message-passing layers (6).
        num_frequencies: K frequencies k = 0..K−1 of the fractional-difference sinusoids (128).
        out_dim: embedding size (512).
        max_atoms: crystals with more atoms get an all-NaN row (400).
        max_pairs_per_chunk: pairs processed at once per layer; bounds the temporaries (262 144).
    """

    graph_kind = "atoms"
    """The encoder reads only atoms, fractional coordinates and lattices; it builds its own fully
    connected pairs."""

    def __init__(
        self,
        hidden: int = 512,
        num_layers: int = 6,
        num_frequencies: int = 128,
        out_dim: int = 512,
        max_atoms: int = 400,
        max_pairs_per_chunk: int = 262_144,
    ) -> None:
        super().__init__()
        values = dict(
            hidden=hidden,
            num_layers=num_layers,
            num_frequencies=num_frequencies,
            out_dim=out_dim,
            max_atoms=max_atoms,
            max_pairs_per_chunk=max_pairs_per_chunk,
        )
        bad = {k: v for k, v in values.items() if not isinstance(v, int) or isinstance(v, bool) or v < 1}
        if bad:
            raise ConfigError(
                f"CSPNet: {', '.join(f'{k}={v!r}' for k, v in bad.items())} must be integers ≥ 1."
            )
        self.hidden, self.max_atoms, self.max_pairs_per_chunk = hidden, max_atoms, max_pairs_per_chunk
        self.output_dim = out_dim
        self.embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden)  # row 0 unused (no Z = 0)
        self.register_buffer(
            "frequencies", 2 * math.pi * torch.arange(num_frequencies).float(), persistent=False
        )
        self.layers = nn.ModuleList(CSPLayer(hidden, 6 * num_frequencies) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(hidden)
        self.readout = nn.Linear(hidden, out_dim, bias=False)

    def embeddable(self, graph: Any) -> Tensor:
        """Bool[n_graphs]: which crystals get a finite embedding (1..max_atoms atoms)."""
        _, _, lattice, batch = _inputs(graph)
        counts = torch.bincount(batch, minlength=lattice.shape[0])
        return (counts >= 1) & (counts <= self.max_atoms)

    def pair_features(self, frac_i: Tensor, frac_j: Tensor) -> Tensor:
        """φ_ij [P, 6K] = [sin(2πk·Δf) for c, k ‖ cos(2πk·Δf) for c, k] with Δf = f_j − f_i [P, 3]."""
        delta = frac_j - frac_i
        delta = delta - torch.round(delta)  # exact integer shift; sin/cos are 1-periodic in Δf for integer k
        angles = (delta.unsqueeze(-1) * self.frequencies).flatten(1)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    def forward(self, graph: Any) -> Tensor:
        """Embed crystals: graph → [n_graphs, out_dim]; rows of non-embeddable crystals are NaN."""
        numbers, frac, lattice, batch = _inputs(graph)
        n_graphs = lattice.shape[0]
        counts = torch.bincount(batch, minlength=n_graphs)
        keep = (counts >= 1) & (counts <= self.max_atoms)
        dtype = self.embedding.weight.dtype
        out = torch.full((n_graphs, self.output_dim), math.nan, dtype=dtype, device=numbers.device)
        if not bool(keep.any()):
            return out
        # Kept atoms, sorted by compact crystal index so each crystal's atoms are contiguous.
        compact = torch.cumsum(keep.long(), 0) - 1
        kept_atoms = torch.nonzero(keep[batch]).reshape(-1)
        graph_of = compact[batch[kept_atoms]]
        order = torch.argsort(graph_of, stable=True)
        kept_atoms, graph_of = kept_atoms[order], graph_of[order]
        frac = frac[kept_atoms].to(dtype)
        sizes = counts[keep]
        atom_start = torch.cumsum(sizes, 0) - sizes
        pair_end = torch.cumsum(sizes * sizes, 0)
        pairs = (sizes, atom_start, pair_end, int(pair_end[-1]))
        gram = (lattice[keep] @ lattice[keep].transpose(1, 2)).reshape(-1, GRAM_DIM).to(dtype)

        h = self.embedding(numbers[kept_atoms])
        for layer in self.layers:
            h = h + self._layer(layer, h, frac, gram, graph_of, pairs)
        pooled = mean_per_graph(self.final_norm(h), graph_of)
        return out.index_copy(0, torch.nonzero(keep).reshape(-1), self.readout(pooled).to(dtype))

    def _layer(
        self, layer: CSPLayer, h: Tensor, frac: Tensor, gram: Tensor, graph_of: Tensor, pairs: tuple
    ) -> Tensor:
        """The node update node_mlp([ĥ_i ‖ mean_j m_ij]) [n, H] of one layer (added to h by the caller)."""
        sizes, _, _, total = pairs
        h_norm = layer.norm(h)
        first = layer.edge_mlp[0]
        width = self.hidden
        w_a, w_b = first.weight[:, :width], first.weight[:, width : 2 * width]
        w_g, w_phi = (
            first.weight[:, 2 * width : 2 * width + GRAM_DIM],
            first.weight[:, 2 * width + GRAM_DIM :],
        )
        # Per-atom terms; the per-crystal Gram term and the bias fold into the term of atom i.
        term_i = F.linear(h_norm, w_a) + F.linear(gram, w_g, first.bias)[graph_of]
        term_j = F.linear(h_norm, w_b)
        step = self.max_pairs_per_chunk
        total_msg = h.new_zeros(h.shape)
        for start in range(0, total, step):
            args = (layer, w_phi, term_i, term_j, frac, pairs, start, min(start + step, total))
            if total > step and torch.is_grad_enabled():
                total_msg = total_msg + checkpoint(self._chunk_messages, *args, use_reentrant=False)
            else:
                total_msg = total_msg + self._chunk_messages(*args)
        mean_msg = total_msg / sizes[graph_of].unsqueeze(1).to(h.dtype)  # atom i has n incoming pairs
        return layer.node_mlp(torch.cat([h_norm, mean_msg], dim=1))

    def _chunk_messages(
        self,
        layer: CSPLayer,
        w_phi: Tensor,
        term_i: Tensor,
        term_j: Tensor,
        frac: Tensor,
        pairs: tuple,
        start: int,
        end: int,
    ) -> Tensor:
        """Σ_j m_ij [n, H] over pairs start..end−1 (local pair p of crystal g: i = p // n_g, j = p % n_g)."""
        sizes, atom_start, pair_end, _ = pairs
        p = torch.arange(start, end, device=frac.device)
        g = torch.bucketize(p, pair_end, right=True)
        local = p - (pair_end[g] - sizes[g] * sizes[g])
        i = atom_start[g] + torch.div(local, sizes[g], rounding_mode="floor")
        j = atom_start[g] + local % sizes[g]
        pre = F.linear(self.pair_features(frac[i], frac[j]), w_phi) + term_i[i] + term_j[j]
        messages = layer.edge_mlp[1:](pre)
        return term_i.new_zeros(term_i.shape[0], messages.shape[1]).index_add_(
            0, i, messages.to(term_i.dtype)
        )


def _inputs(graph: Any) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Validated (Z Long[n], frac Float[n, 3], lattice Float[G, 3, 3], batch Long[n]) of a Data/Batch."""
    numbers = getattr(graph, "x", None)
    if numbers is None or numbers.numel() == 0:
        raise InputError("graph.x", "the batch has no atoms")
    numbers = numbers.long().reshape(-1)
    if int(numbers.min()) < 1 or int(numbers.max()) > MAX_ATOMIC_NUMBER:
        raise InputError(
            "graph.x",
            f"atomic numbers must lie in 1..{MAX_ATOMIC_NUMBER}, "
            f"got {int(numbers.min())}..{int(numbers.max())}",
        )
    frac, lattice = getattr(graph, "frac_coords", None), getattr(graph, "lattice", None)
    for name, value in (("frac_coords", frac), ("lattice", lattice)):
        if value is None:
            raise InputError(f"graph.{name}", "missing: CSPNet needs x, frac_coords and lattice")
        if not torch.is_floating_point(value) or not bool(torch.isfinite(value).all()):
            raise InputError(f"graph.{name}", "must be a finite floating-point tensor")
    if tuple(frac.shape) != (numbers.shape[0], 3):
        raise InputError("graph.frac_coords", f"expected [{numbers.shape[0]}, 3], got {tuple(frac.shape)}")
    if lattice.numel() == 0 or lattice.numel() % 9 or lattice.shape[-2:] != (3, 3):
        raise InputError("graph.lattice", f"expected [n_graphs, 3, 3], got {tuple(lattice.shape)}")
    lattice = lattice.reshape(-1, 3, 3)
    batch = getattr(graph, "batch", None)
    batch = torch.zeros_like(numbers) if batch is None else batch.long().reshape(-1)
    if batch.shape != numbers.shape or int(batch.min()) < 0 or int(batch.max()) >= lattice.shape[0]:
        raise InputError(
            "graph.batch", f"expected {numbers.shape[0]} crystal indices in 0..{lattice.shape[0] - 1}"
        )
    return numbers, frac, lattice, batch
