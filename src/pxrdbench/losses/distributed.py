"""Gathering embeddings across data-parallel processes for contrastive losses with global negatives.

``all_gather_with_grad`` concatenates the tensors of all ranks (rank order) and replaces this rank's slice by
the local tensor itself, so autograd flows into the local shard only; the other slices are constants.

Why this gives the right gradient. Every rank builds the same global batch Z = [z_0; …; z_{W−1}] and evaluates
the same global loss L(Z) (all W·B anchors against all W·B candidates). On rank k, z_k enters L only through
its own live slice, so backward yields ∂L/∂z_k exactly (both its anchor and its candidate roles are in the one
loss), and the parameter gradient on rank k is g_k = ∂L/∂z_k · ∂z_k/∂θ. The full gradient is Σ_k g_k.
DDP all-reduces parameter gradients with a mean, giving (1/W)·Σ_k g_k = (1/W)·∂L/∂θ: correct up to the factor
1/W. (Gathering without the local-slice trick would give no gradient at all; computing only the local anchors'
loss rows would miss the terms where z_k is another rank's negative.)

Scaling used here, and why it sits on the embeddings, not on the loss. A parameter held in full on every rank
that acts on the gathered batch itself, such as InfoNCE's learnable logit scale s = 1/τ, is different: every
rank evaluates the whole L and so already holds the whole ∂L/∂s, and DDP's mean of W equal copies is ∂L/∂s.
Multiplying the loss's gradient by W would fix θ but give s W·∂L/∂s (2× measured on 2 ranks). So
:func:`scale_gradient_for_ddp_mean` (identity forward, gradient × W backward) is applied to this rank's local
embeddings before the gather, leaving the loss unscaled. On rank k the gradients are then

    θ (encoder): W·∂L/∂z_k·∂z_k/∂θ   →  DDP mean: (1/W)·Σ_k W·∂L/∂z_k·∂z_k/∂θ = ∂L/∂θ
    s (scale):   ∂L/∂s               →  DDP mean: (1/W)·Σ_k ∂L/∂s             = ∂L/∂s

i.e. both equal the gradients of single-process training on the concatenated batch, and the loss value (the
same global L on every rank) equals that single-process loss. Outside a process group both functions are
no-ops. Ranks may hold different numbers of rows (padded for the collective, trimmed after).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch import distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def gather_sizes(n_rows: int, device: torch.device | str = "cpu") -> list[int]:
    """The first-dimension size of every rank's tensor, in rank order ([n_rows] when not distributed)."""
    if not is_distributed():
        return [int(n_rows)]
    local = torch.tensor([int(n_rows)], dtype=torch.long, device=device)
    sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(s.item()) for s in sizes]


def all_gather_with_grad(tensor: Tensor) -> Tensor:
    """Concatenate ``tensor`` [n_r, ...] of all ranks along dim 0; gradients flow to this rank's slice only.

    Returns ``tensor`` unchanged when not distributed.
    """
    if not is_distributed():
        return tensor
    rank = dist.get_rank()
    sizes = gather_sizes(tensor.shape[0], tensor.device)
    longest = max(sizes)
    padded = tensor.detach()
    if padded.shape[0] < longest:
        filler = padded.new_zeros((longest - padded.shape[0], *padded.shape[1:]))
        padded = torch.cat([padded, filler], dim=0)
    buffers = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(buffers, padded.contiguous())
    pieces = [buffer[:size] for buffer, size in zip(buffers, sizes, strict=True)]
    pieces[rank] = tensor
    return torch.cat(pieces, dim=0)


class _ScaleGradient(torch.autograd.Function):
    """Identity forward (exactly the same values); the incoming gradient times ``factor`` backward."""

    @staticmethod
    def forward(ctx, tensor: Tensor, factor: float) -> Tensor:  # type: ignore[override]
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def scale_gradient_for_ddp_mean(tensor: Tensor) -> Tensor:
    """Same values as ``tensor``, gradient times the world size W (undoes DDP's 1/W mean; see module doc).

    Apply it on the path to the rank-local embeddings only (not to a loss that also depends on parameters
    every rank holds in full, whose gradient must not be scaled); identity when not distributed.
    """
    w = world_size()
    if w == 1:
        return tensor
    return _ScaleGradient.apply(tensor, float(w))
