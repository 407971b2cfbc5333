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

Scaling used here: :func:`scale_gradient_for_ddp_mean` multiplies the gradient (not the value) by W, so that
after DDP's mean all-reduce the parameter gradient equals ∂L/∂θ of single-process training on the concatenated
batch, and the logged loss value equals that single-process loss. Outside a process group both functions are
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


def scale_gradient_for_ddp_mean(loss: Tensor) -> Tensor:
    """Same value as ``loss``, gradient times the world size W (undoes DDP's 1/W mean; see module doc).

    Implemented as W·loss − (W − 1)·loss.detach(); identity when not distributed.
    """
    w = world_size()
    if w == 1:
        return loss
    return loss * w - loss.detach() * (w - 1)
