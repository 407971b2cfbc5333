"""Graph Earth Mover's Distance (GEMD) loss on the space-group subgroup graph (AlphaDiffract, paper 004 §5.4).

For a one-hot target y the optimal transport of the predicted distribution p onto y moves every unit of mass
at class k to y, at cost D[k, y], so

    GEMD(p, y) = Σ_k p_k · D[k, y],   p = softmax(logits),

averaged over the samples whose target is not the ignore index (−1). D is the hop-count matrix of the
undirected maximal-subgroup graph (dimensionless number of edges;
``pxrdbench.symmetry.subgroups.hop_distance_matrix()``, index = space-group number − 1). Any non-negative
K × K matrix with a zero diagonal works, so GEMD is 0 exactly when all mass sits on the true class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from pxrdbench.errors import InputError

IGNORE_INDEX = -1


def as_distance_matrix(distance: Tensor | np.ndarray, name: str = "distance") -> Tensor:
    """Validate a K × K class-distance matrix (finite, non-negative, zero diagonal); return it as float32."""
    matrix = torch.as_tensor(np.asarray(distance) if not isinstance(distance, Tensor) else distance)
    matrix = matrix.detach().to(torch.float32)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise InputError(name, f"must be a square K x K matrix, got shape {tuple(matrix.shape)}")
    if not torch.isfinite(matrix).all() or (matrix < 0).any():
        raise InputError(name, "entries must be finite and non-negative (hop counts)")
    if (torch.diagonal(matrix) != 0).any():
        raise InputError(name, "diagonal must be zero (distance of a class to itself)")
    return matrix


def gemd_loss(
    logits_or_probs: Tensor,
    target: Tensor,
    distance: Tensor,
    *,
    from_logits: bool = True,
    ignore_index: int = IGNORE_INDEX,
) -> Tensor:
    """Mean GEMD Σ_k p_k · D[k, y] over samples with a valid target.

    Args:
        logits_or_probs: [B, K] logits (``from_logits=True``, softmax applied) or probabilities.
        target: Long[B] class indices in 0..K−1; ``ignore_index`` (any negative value) marks a missing label.
        distance: [K, K] class distances (hops); row k, column y = cost of mass at k for true class y.
        from_logits: whether ``logits_or_probs`` are logits.
        ignore_index: the missing-label marker.

    Returns:
        A scalar tensor (in hops). With no valid target: a zero that keeps the graph (zero gradients).
    """
    if logits_or_probs.ndim != 2:
        raise InputError("logits_or_probs", f"expected [B, K], got shape {tuple(logits_or_probs.shape)}")
    n_classes = logits_or_probs.shape[1]
    if distance.shape != (n_classes, n_classes):
        raise InputError("distance", f"shape {tuple(distance.shape)} does not match K={n_classes} classes")
    if target.shape != logits_or_probs.shape[:1]:
        raise InputError(
            "target", f"shape {tuple(target.shape)} does not match batch {logits_or_probs.shape[0]}"
        )
    probs = torch.softmax(logits_or_probs, dim=-1) if from_logits else logits_or_probs
    valid = (target != ignore_index) & (target >= 0)
    if not valid.any():
        return probs.sum() * 0.0
    if (target[valid] >= n_classes).any():
        raise InputError("target", f"class index out of range 0..{n_classes - 1}")
    costs = distance.to(probs.dtype)[:, target[valid]].T  # [B_valid, K]: D[k, y_i]
    return (probs[valid] * costs).sum(dim=-1).mean()


class GEMDLoss(nn.Module):
    """:func:`gemd_loss` with the distance matrix held as a (saved, device-following) buffer.

    Args:
        distance: [K, K] non-negative matrix with zero diagonal (e.g. the 230 × 230 subgroup hop counts).
        from_logits: whether ``forward`` receives logits (default) or probabilities.
        ignore_index: the missing-label marker.
    """

    distance: Tensor

    def __init__(
        self, distance: Tensor | np.ndarray, from_logits: bool = True, ignore_index: int = IGNORE_INDEX
    ) -> None:
        super().__init__()
        self.register_buffer("distance", as_distance_matrix(distance))
        self.from_logits = from_logits
        self.ignore_index = ignore_index

    @property
    def num_classes(self) -> int:
        """K, the number of classes the matrix covers."""
        return int(self.distance.shape[0])

    def forward(self, logits_or_probs: Tensor, target: Tensor) -> Tensor:
        """Mean GEMD of the batch (see :func:`gemd_loss`)."""
        return gemd_loss(
            logits_or_probs,
            target,
            self.distance,
            from_logits=self.from_logits,
            ignore_index=self.ignore_index,
        )
