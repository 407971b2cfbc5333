"""Retrieval confidence (XCCP): c(s) = 1 / (1 + exp(−(s − μ)/β)) of a top-1 cosine similarity s, its summary over
queries, and the open-set test (top-1 with the true structure in the pool vs removed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.retrieval import MaskSpec, topk_similarities

CONFIDENCE_MU = 0.85
CONFIDENCE_BETA = 0.025


def confidence(s: Any, mu: float = CONFIDENCE_MU, beta: float = CONFIDENCE_BETA) -> Any:
    """XCCP confidence c(s) = 1 / (1 + exp(−(s − μ)/β)) of a cosine similarity s (dimensionless, 0–1)."""
    if isinstance(s, Tensor):
        return torch.sigmoid((s - mu) / beta)
    x = (np.asarray(s, dtype=np.float64) - mu) / beta
    c = 0.5 * (1.0 + np.tanh(0.5 * x))  # = logistic(x), without overflow
    return float(c) if np.ndim(c) == 0 else c


def low_confidence(s: Any, mu: float = CONFIDENCE_MU, beta: float = CONFIDENCE_BETA) -> Any:
    """True where the confidence of similarity s is below 0.5 (i.e. s < μ): the result deserves a warning."""
    return confidence(s, mu, beta) < 0.5


def open_set_test(
    queries: Tensor,
    candidates: Tensor,
    true_index: Tensor,
    *,
    candidate_mask: MaskSpec = None,
    mu: float = CONFIDENCE_MU,
    beta: float = CONFIDENCE_BETA,
) -> dict[str, float | int]:
    """XCCP's open-set test: top-1 similarity and confidence with the true structure in the pool vs removed.

    One top-2 search serves both: with the true candidate removed, the top-1 is the second hit whenever the
    first one is the true candidate. Returns ``in_pool/…`` and ``removed/…`` keys for
    ``mean_top1_similarity``, ``mean_confidence`` and ``low_confidence_share`` (%), and ``n``.
    """
    if candidates.shape[0] < 2:
        raise InputError("candidates", "the open-set test needs at least two candidates")
    values, indices = topk_similarities(queries, candidates, 2, candidate_mask=candidate_mask)
    t_idx = torch.as_tensor(true_index, dtype=torch.long, device=indices.device)
    removed = torch.where(indices[:, 0] == t_idx, values[:, 1], values[:, 0])
    out: dict[str, float | int] = {}
    for name, top1 in (("in_pool", values[:, 0]), ("removed", removed)):
        summary = confidence_summary(top1[torch.isfinite(top1)].double(), mu, beta)
        out.update({f"{name}/{key}": value for key, value in summary.items()})
    out["n"] = int(queries.shape[0])
    return out


def confidence_summary(
    top1: Tensor | np.ndarray, mu: float = CONFIDENCE_MU, beta: float = CONFIDENCE_BETA
) -> dict[str, float]:
    """``mean_top1_similarity``, ``mean_confidence`` and ``low_confidence_share`` (% of queries whose top-1
    confidence is below 0.5) of the queries' top-1 similarities (a Tensor or a numpy array)."""
    conf = confidence(top1, mu, beta)
    low = conf < 0.5
    share = float(low.double().mean()) if isinstance(low, Tensor) else float(np.mean(low))
    return {
        "mean_top1_similarity": float(top1.mean()),
        "mean_confidence": float(conf.mean()),
        "low_confidence_share": 100.0 * share,
    }
