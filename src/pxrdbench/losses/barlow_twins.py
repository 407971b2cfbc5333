"""Barlow Twins redundancy-reduction loss (Zbontar et al. 2021), as DIFCON (Das et al. 2025) uses it.

For the projector outputs z_a, z_b [N, D] of two views of the same N patterns, with a cross-correlation
matrix C [D, D] between the views' features,

    L = Σ_i (1 − C_ii)²  +  λ Σ_{i≠j} C_ij²

(invariance term: each feature agrees across views; redundancy term: different features decorrelate).
Two normalisations of C are available:

* ``"batchnorm"`` (default; the reference implementation facebookresearch/barlowtwins): each view is
  standardised per feature over the batch, z̃_bi = (z_bi − μ_i) / sqrt(σ_i² + ε) with the biased variance
  σ_i² = (1/N) Σ_b (z_bi − μ_i)² and ε = 1e-5 (BatchNorm1d without affine parameters, training mode), and
  C = z̃_aᵀ z̃_b / N. Then C_ij is the Pearson correlation of feature i of view a with feature j of view b,
  shrunk slightly by ε.
* ``"paper"`` (DIFCON eq. 7): no centring, C_ij = Σ_b z_a,bi z_b,bj / ( sqrt(Σ_b z_a,bi²) · sqrt(Σ_b z_b,bj²) ),
  the cosine of the two features' columns along the batch axis. A zero column gives C = 0 in its row/column.

λ (``off_diagonal_weight``) defaults to 0.0051, the reference's value for its D = 8192 projector; ``None``
means λ = 1/D (λ ≈ 1/D is a common heuristic for smaller projectors, keeping the D(D − 1) off-diagonal
terms on the scale of the D diagonal ones).

Distributed training: with DDP each device computes C from its own local batch (local batch statistics,
local N) and the loss from that C; nothing is gathered here. This equals the reference only on one device:
the reference converts its normalisation layer to SyncBatchNorm (global μ, σ) and sums C over devices
(all-reduce of z̃_aᵀ z̃_b / N_global), so its C is that of the global batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError, did_you_mean

#: Normalisations of the cross-correlation matrix (see the module docstring).
NORMALISATIONS: tuple[str, ...] = ("batchnorm", "paper")
#: ε inside the square root of the batch standardisation (BatchNorm1d's default).
BATCHNORM_EPS = 1e-5
#: Lower clamp of a column norm in the ``"paper"`` normalisation (avoids 0/0 for an all-zero feature).
COSINE_EPS = 1e-12


def _check_normalisation(normalisation: str) -> str:
    """Return ``normalisation`` if known, else raise ConfigError with close matches."""
    if normalisation not in NORMALISATIONS:
        raise did_you_mean(str(normalisation), list(NORMALISATIONS), "Barlow Twins normalisation")
    return normalisation


def _check_weight(off_diagonal_weight: float | None) -> float | None:
    """Return λ as a float (or None for 1/D), raising ConfigError unless it is finite and ≥ 0."""
    if off_diagonal_weight is None:
        return None
    if isinstance(off_diagonal_weight, bool) or not (
        math.isfinite(float(off_diagonal_weight)) and float(off_diagonal_weight) >= 0
    ):
        raise ConfigError(
            f"Barlow Twins: off_diagonal_weight must be a finite number ≥ 0 or None (1/D), "
            f"got {off_diagonal_weight!r}."
        )
    return float(off_diagonal_weight)


def _check_views(z_a: Tensor, z_b: Tensor) -> None:
    """Raise InputError unless z_a and z_b are both [N ≥ 2, D ≥ 1] with equal shapes."""
    if z_a.dim() != 2 or z_b.dim() != 2:
        raise InputError(
            "embeddings", f"z_a and z_b must be 2-D [N, D], got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape != z_b.shape:
        raise InputError(
            "embeddings", f"z_a and z_b must have equal shapes, got {tuple(z_a.shape)} and {tuple(z_b.shape)}"
        )
    if z_a.shape[0] < 2 or z_a.shape[1] < 1:
        raise InputError(
            "embeddings",
            f"need a batch of N ≥ 2 samples with D ≥ 1 features (batch statistics), got {tuple(z_a.shape)}",
        )


def _standardise(z: Tensor) -> Tensor:
    """(z − μ) / sqrt(σ² + ε) per feature over the batch, σ² biased (BatchNorm1d, training, no affine)."""
    mean = z.mean(dim=0, keepdim=True)
    var = z.var(dim=0, unbiased=False, keepdim=True)
    return (z - mean) * torch.rsqrt(var + BATCHNORM_EPS)


def cross_correlation(z_a: Tensor, z_b: Tensor, normalisation: str = "batchnorm") -> Tensor:
    """Cross-correlation matrix C [D, D] of two views z_a, z_b [N, D] (C_ij: feature i of a, j of b).

    ``"batchnorm"``: C = z̃_aᵀ z̃_b / N with per-feature batch standardisation (see the module docstring).
    ``"paper"``: C_ij = Σ_b z_a,bi z_b,bj / (‖z_a[:, i]‖ ‖z_b[:, j]‖), cosine along the batch axis.
    """
    _check_normalisation(normalisation)
    _check_views(z_a, z_b)
    if normalisation == "batchnorm":
        return _standardise(z_a).t() @ _standardise(z_b) / z_a.shape[0]
    u_a = F.normalize(z_a, dim=0, eps=COSINE_EPS)
    u_b = F.normalize(z_b, dim=0, eps=COSINE_EPS)
    return u_a.t() @ u_b


def barlow_twins_loss(
    z_a: Tensor,
    z_b: Tensor,
    off_diagonal_weight: float | None = 0.0051,
    normalisation: str = "batchnorm",
) -> Tensor:
    """Barlow Twins loss L = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij² of z_a, z_b [N, D] (a scalar tensor).

    ``off_diagonal_weight`` is λ (None: λ = 1/D); ``normalisation`` picks C (see :func:`cross_correlation`).
    The loss is symmetric in the views (swapping them transposes C).
    """
    weight = _check_weight(off_diagonal_weight)
    c = cross_correlation(z_a, z_b, normalisation)
    if weight is None:
        weight = 1.0 / c.shape[0]
    diagonal = torch.diagonal(c)
    on_diagonal = (1.0 - diagonal).pow(2).sum()
    off_diagonal = (c - torch.diag_embed(diagonal)).pow(2).sum()
    return on_diagonal + weight * off_diagonal


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins loss as a module (no parameters; see :func:`barlow_twins_loss`).

    Args:
        off_diagonal_weight: λ on the redundancy term (reference: 0.0051 for D = 8192); None means 1/D, a
            common heuristic for smaller projectors.
        normalisation: ``"batchnorm"`` (reference, default) or ``"paper"`` (DIFCON eq. 7, batch-axis cosine).
    """

    def __init__(self, off_diagonal_weight: float | None = 0.0051, normalisation: str = "batchnorm") -> None:
        super().__init__()
        self.off_diagonal_weight = _check_weight(off_diagonal_weight)
        self.normalisation = _check_normalisation(normalisation)

    def forward(self, z_a: Tensor, z_b: Tensor) -> Tensor:
        """Loss of the two views' projector outputs z_a, z_b [N, D]."""
        return barlow_twins_loss(z_a, z_b, self.off_diagonal_weight, self.normalisation)

    def extra_repr(self) -> str:
        """λ and normalisation for printing."""
        weight = "1/D" if self.off_diagonal_weight is None else f"{self.off_diagonal_weight:.4g}"
        return f"off_diagonal_weight={weight}, normalisation={self.normalisation!r}"
