"""Symmetric InfoNCE (CLIP) loss for paired embeddings, as used by XCCP (τ = 0.07, batch 128).

With u = z/‖z‖ (cosine similarity s(a, b) = u_a·u_b) and logits S_ij = u_a,i · u_b,j / τ for N pairs:

    L = ½ [ −(1/N) Σ_i log softmax_j(S_ij)|_{j=i}  −(1/N) Σ_j log softmax_i(S_ij)|_{i=j} ]

(XCCP eq. 5: cross-entropy from patterns to structures and back, averaged). ``logit_scale`` = 1/τ. With
``gather=True`` the N pairs are the concatenation over all data-parallel ranks (see
:mod:`pxrdbench.losses.distributed` for why the local-slice gather gives the exact gradient). The ×W that
undoes DDP's gradient mean is applied to the local unit embeddings before the gather, not to the loss: a
learnable logit scale, held in full on every rank, then gets ∂L/∂(1/τ) of the global loss after DDP's mean
(not W times it), and the encoders get ∂L/∂θ. ``gather=False`` involves no scaling at all.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.distributed import all_gather_with_grad, scale_gradient_for_ddp_mean


def symmetric_infonce(
    z_a: Tensor,
    z_b: Tensor,
    temperature: float | None = None,
    logit_scale: float | Tensor | None = None,
    gather: bool = False,
) -> Tensor:
    """Symmetric InfoNCE of ``z_a`` [N, D] and ``z_b`` [N, D] (row i of each is a positive pair).

    Give exactly one of ``temperature`` τ > 0 or ``logit_scale`` = 1/τ (a float or a scalar tensor, which
    may be learnable). ``gather`` uses the pairs of all ranks as negatives (no-op outside a process group).
    """
    if (temperature is None) == (logit_scale is None):
        raise ConfigError("symmetric_infonce: give exactly one of temperature or logit_scale.")
    if temperature is not None:
        if not temperature > 0:
            raise ConfigError(f"symmetric_infonce: temperature must be > 0, got {temperature}.")
        scale: float | Tensor = 1.0 / temperature
    else:
        scale = logit_scale  # type: ignore[assignment]
    if z_a.dim() != 2 or z_a.shape != z_b.shape or z_a.shape[0] < 1:
        raise InputError(
            "embeddings",
            f"z_a and z_b must both be [N ≥ 1, D] with equal shapes, got {tuple(z_a.shape)} and "
            f"{tuple(z_b.shape)}",
        )
    u_a = F.normalize(z_a, dim=-1)
    u_b = F.normalize(z_b, dim=-1)
    if gather:
        # ×W on the embedding path only (see the module docstrings): the scale's gradient stays unscaled
        u_a = all_gather_with_grad(scale_gradient_for_ddp_mean(u_a))
        u_b = all_gather_with_grad(scale_gradient_for_ddp_mean(u_b))
    logits = scale * (u_a @ u_b.t())
    labels = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))


class InfoNCELoss(nn.Module):
    """Symmetric InfoNCE with a fixed or learnable temperature.

    Args:
        temperature: fixed τ (XCCP: 0.07), used when ``learnable`` is False.
        learnable: hold a parameter ``log_scale`` = log(1/τ) (CLIP); the scale exp(log_scale) is clamped to
            ``max_scale`` (CLIP: 100).
        init: initial τ of the learnable scale (defaults to ``temperature``).
        max_scale: upper clamp of 1/τ for the learnable scale.
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learnable: bool = False,
        init: float | None = None,
        max_scale: float = 100.0,
    ) -> None:
        super().__init__()
        init_tau = temperature if init is None else init
        if not temperature > 0 or not init_tau > 0 or not max_scale > 0:
            raise ConfigError(
                f"InfoNCELoss: temperature={temperature}, init={init}, max_scale={max_scale} must all be > 0."
            )
        self.learnable = bool(learnable)
        self.max_scale = float(max_scale)
        self.fixed_temperature = float(temperature)
        if self.learnable:
            self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_tau), dtype=torch.float32))

    def logit_scale(self) -> Tensor:
        """Current 1/τ as a scalar tensor (clamped to ``max_scale`` when learnable)."""
        if self.learnable:
            return self.log_scale.exp().clamp(max=self.max_scale)
        return torch.tensor(1.0 / self.fixed_temperature)

    @property
    def temperature(self) -> float:
        """Current τ (for logging)."""
        return float(1.0 / self.logit_scale().detach())

    def forward(self, z_a: Tensor, z_b: Tensor, gather: bool = False) -> Tensor:
        """Loss of paired embeddings z_a, z_b [N, D]; ``gather`` uses all ranks' pairs as negatives."""
        if self.learnable:
            return symmetric_infonce(z_a, z_b, logit_scale=self.logit_scale(), gather=gather)
        return symmetric_infonce(z_a, z_b, temperature=self.fixed_temperature, gather=gather)

    def extra_repr(self) -> str:
        """Temperature mode for printing."""
        return f"learnable={self.learnable}, temperature={self.temperature:.4g}"
