"""Heads for crystal symmetry and cell: the bounded lattice-parameter regressor and its target scaling.

AlphaDiffract (paper 004, eq. 4) bounds each Niggli lattice parameter with a scaled sigmoid,
y_i = σ(p_i) · (UB_i − LB_i) + LB_i, with LB = 0 and UB = 500 Å for a, b, c and 180° for α, β, γ.
The training loss compares *normalised* parameters y_i / UB_i ∈ [0, 1] (see :func:`normalise_lattice`), so
lengths and angles weigh alike in the MSE; this scaling is the project's reading of the paper's eq. 6, which
does not state the units of its MSE term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pxrdbench.models.heads.mlp import MLPHead

#: Upper bounds (a, b, c in Å; α, β, γ in degrees) of the lattice head's sigmoid range; lower bounds are 0.
LATTICE_UPPER_BOUNDS: tuple[float, ...] = (500.0, 500.0, 500.0, 180.0, 180.0, 180.0)


def _bounds(like: Tensor) -> Tensor:
    """The upper bounds as a [6] tensor on ``like``'s device and dtype."""
    return torch.tensor(LATTICE_UPPER_BOUNDS, device=like.device, dtype=like.dtype)


def normalise_lattice(lattice: Tensor) -> Tensor:
    """Scale (a, b, c [Å], α, β, γ [°]) to [0, 1]: a/500 Å, b/500 Å, c/500 Å, α/180°, β/180°, γ/180°."""
    return lattice / _bounds(lattice)


def denormalise_lattice(scaled: Tensor) -> Tensor:
    """Inverse of :func:`normalise_lattice`: multiply by (500 Å, 500 Å, 500 Å, 180°, 180°, 180°)."""
    return scaled * _bounds(scaled)


def valid_lattice_rows(lattice: Tensor) -> Tensor:
    """Bool[B]: rows whose six parameters are finite and positive (−1 or NaN marks a missing label)."""
    return torch.isfinite(lattice).all(dim=-1) & (lattice > 0).all(dim=-1)


class LatticeHead(nn.Module):
    """MLP regressor of the six Niggli parameters with outputs bounded by a scaled sigmoid.

    ``forward`` returns physical units [B, 6] (Å, Å, Å, °, °, °); ``forward_normalised`` returns
    σ(p) ∈ (0, 1), the quantity the MSE loss compares with :func:`normalise_lattice` of the target.

    Args:
        in_dim: input feature size.
        hidden: hidden widths ((512, 256) in the paper).
        activation: hidden activation name.
        dropout: dropout after each hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (512, 256),
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.mlp = MLPHead(in_dim, hidden, 6, activation=activation, dropout=dropout)

    def forward_normalised(self, features: Tensor) -> Tensor:
        """Map features [B, in_dim] to σ(p) [B, 6] in (0, 1)."""
        return torch.sigmoid(self.mlp(features))

    def forward(self, features: Tensor) -> Tensor:
        """Map features [B, in_dim] to lattice parameters [B, 6] in Å and degrees."""
        return denormalise_lattice(self.forward_normalised(features))
