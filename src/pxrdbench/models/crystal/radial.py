"""Radial embedding of interatomic distances for equivariant crystal encoders (MACE's choice, Batatia et al. 2022).

For an edge of length r (Å) and cutoff r_c:

    b_n(r) = sqrt(2 / r_c) · sin(n π r / r_c) / r,                       n = 1..N   (Bessel basis)
    u(x)   = 1 − (p+1)(p+2)/2 · x^p + p(p+2) · x^(p+1) − p(p+1)/2 · x^(p+2),   x = r / r_c < 1, else 0

and the embedding is b_n(r) · u(r / r_c). The polynomial envelope u (Klicpera et al. 2020, "DimeNet") and its
first and second derivatives vanish at r_c, so an atom crossing the cutoff changes the features continuously;
that is what makes the encoder's output a continuous function of the structure (and the invariance tests stable
for neighbours that sit near the cutoff). MACE's defaults: N = 8, p = 5, r_c = 5 Å.
"""

from __future__ import annotations

import torch
from e3nn.math import soft_one_hot_linspace
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, StructureError


def polynomial_envelope(x: Tensor, p: int = 5) -> Tensor:
    """u(x) above: 1 at x = 0, 0 with zero first and second derivatives at x = 1, and 0 for x ≥ 1."""
    value = (
        1.0
        - (p + 1.0) * (p + 2.0) / 2.0 * x.pow(p)
        + p * (p + 2.0) * x.pow(p + 1)
        - p * (p + 1.0) / 2.0 * x.pow(p + 2)
    )
    return value * (x < 1.0)


class RadialEmbedding(nn.Module):
    """Distances r [E] (Å, > 0) → Bessel basis × polynomial envelope [E, num_basis].

    Args:
        cutoff: r_c in Å (5 in MACE and here).
        num_basis: number N of Bessel functions (8).
        envelope_p: exponent p of the polynomial envelope (5).
    """

    def __init__(self, cutoff: float = 5.0, num_basis: int = 8, envelope_p: int = 5) -> None:
        super().__init__()
        if cutoff <= 0 or num_basis < 1 or envelope_p < 1:
            raise ConfigError(
                f"RadialEmbedding: cutoff={cutoff} Å, num_basis={num_basis}, envelope_p={envelope_p} must be > 0."
            )
        self.cutoff, self.num_basis, self.envelope_p = float(cutoff), int(num_basis), int(envelope_p)

    def forward(self, distance: Tensor) -> Tensor:
        """distance [E] (Å) → [E, num_basis]; edges at or beyond the cutoff give exactly 0."""
        basis = soft_one_hot_linspace(
            distance, 0.0, self.cutoff, self.num_basis, basis="bessel", cutoff=False
        )
        envelope = polynomial_envelope(distance / self.cutoff, self.envelope_p)
        return basis * envelope.unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, num_basis={self.num_basis}, envelope_p={self.envelope_p}"


def edge_lengths(edge_vec: Tensor) -> Tensor:
    """‖edge_vec‖ [E] (Å) of edge vectors [E, 3]; raises on a zero-length edge (a duplicated site)."""
    length = torch.linalg.vector_norm(edge_vec, dim=-1)
    if length.numel() and float(length.min()) <= 1e-8:
        raise StructureError("graph.edge_vec", "an edge has zero length: two sites of a structure coincide")
    return length
