"""Structure retrieval: chunked cosine top-k, ranks of the true candidate, element pre-screen, confidence.

Similarity is the cosine s(q, c) = q·c / (‖q‖ ‖c‖) (inputs are L2-normalised inside), computed as batched
matrix products over chunks of queries AND candidates so memory stays bounded (a Q-chunk × C-chunk block at a
time): a pool of 1,000,000 × 64-d candidates runs on a CPU. Everything runs under ``torch.no_grad`` on the
inputs' device.

A candidate restriction (``candidate_mask`` / ``allowed``) is either a boolean Tensor[Q, C] or a callable
``(query_slice, candidate_slice) -> Bool[q, c]`` evaluated per block (e.g. :func:`element_prescreen`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.errors import InputError

MaskSpec = Tensor | Callable[[slice, slice], Tensor] | None

CONFIDENCE_MU = 0.85
CONFIDENCE_BETA = 0.025
_BITS_PER_WORD = 62


def _chunks(total: int, size: int) -> list[slice]:
    return [slice(start, min(total, start + size)) for start in range(0, total, max(1, size))]


def _unit(x: Tensor) -> Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1)


def _check_embeddings(queries: Tensor, candidates: Tensor) -> None:
    if queries.ndim != 2 or candidates.ndim != 2:
        raise InputError(
            "queries/candidates", f"need 2-D tensors, got {tuple(queries.shape)}, {tuple(candidates.shape)}"
        )
    if queries.shape[1] != candidates.shape[1]:
        raise InputError(
            "candidates", f"dimension {candidates.shape[1]} differs from the queries' {queries.shape[1]}"
        )
    if candidates.shape[0] == 0:
        raise InputError("candidates", "the candidate pool is empty")


def _mask_block(mask: MaskSpec, qs: slice, cs: slice, device: torch.device) -> Tensor | None:
    if mask is None:
        return None
    block = mask(qs, cs) if callable(mask) else mask[qs, cs]
    expected = (qs.stop - qs.start, cs.stop - cs.start)
    if tuple(block.shape) != expected or block.dtype != torch.bool:
        raise InputError(
            "candidate_mask", f"block must be bool {expected}, got {block.dtype} {tuple(block.shape)}"
        )
    return block.to(device)


@torch.no_grad()
def topk_similarities(
    queries: Tensor,
    candidates: Tensor,
    k: int,
    *,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    candidate_mask: MaskSpec = None,
) -> tuple[Tensor, Tensor]:
    """Top-k cosine similarities of each query over the candidate pool.

    Returns ``(values Float[Q, k'], indices Long[Q, k'])`` sorted by decreasing similarity, k' = min(k, C).
    Where fewer than k' candidates are allowed by the mask, the missing slots hold −inf and index −1.
    """
    _check_embeddings(queries, candidates)
    if k < 1:
        raise InputError("k", f"must be at least 1, got {k}")
    num_q, num_c = queries.shape[0], candidates.shape[0]
    k_eff = min(k, num_c)
    out_v = torch.full((num_q, k_eff), float("-inf"), device=queries.device)
    out_i = torch.full((num_q, k_eff), -1, dtype=torch.long, device=queries.device)
    for qs in _chunks(num_q, query_chunk_size):
        q = _unit(queries[qs])
        best_v = torch.empty((q.shape[0], 0), device=q.device)
        best_i = torch.empty((q.shape[0], 0), dtype=torch.long, device=q.device)
        for cs in _chunks(num_c, chunk_size):
            sims = q @ _unit(candidates[cs].to(q.device)).T
            block = _mask_block(candidate_mask, qs, cs, q.device)
            if block is not None:
                sims = torch.where(block, sims, float("-inf"))
            v, i = sims.topk(min(k_eff, sims.shape[1]), dim=1)
            merged_v, merged_i = torch.cat([best_v, v], dim=1), torch.cat([best_i, i + cs.start], dim=1)
            best_v, pos = merged_v.topk(min(k_eff, merged_v.shape[1]), dim=1)
            best_i = merged_i.gather(1, pos)
        out_v[qs] = best_v
        out_i[qs] = best_i.masked_fill(torch.isneginf(best_v), -1)
    return out_v, out_i


@torch.no_grad()
def rank_of_true(
    queries: Tensor,
    candidates: Tensor,
    true_index: Tensor,
    *,
    allowed: MaskSpec = None,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    tie_tolerance: float = 1e-6,
) -> Tensor:
    """1-based rank of each query's true candidate: 1 + #allowed candidates with strictly higher similarity.

    "Strictly higher" means s > s_true + ``tie_tolerance`` so that float rounding between two products of the
    same vectors never splits a tie; the true candidate itself is never counted. Returns Long[Q].
    """
    _check_embeddings(queries, candidates)
    true_index = torch.as_tensor(true_index, dtype=torch.long, device=queries.device)
    if true_index.shape != (queries.shape[0],):
        raise InputError("true_index", f"expected shape ({queries.shape[0]},), got {tuple(true_index.shape)}")
    if true_index.numel() and (true_index.min() < 0 or true_index.max() >= candidates.shape[0]):
        raise InputError("true_index", f"indices must lie in [0, {candidates.shape[0]})")
    ranks = torch.ones(queries.shape[0], dtype=torch.long, device=queries.device)
    for qs in _chunks(queries.shape[0], query_chunk_size):
        q = _unit(queries[qs])
        t_idx = true_index[qs]
        s_true = (q * _unit(candidates[t_idx.to(candidates.device)].to(q.device))).sum(dim=1, keepdim=True)
        for cs in _chunks(candidates.shape[0], chunk_size):
            higher = (q @ _unit(candidates[cs].to(q.device)).T) > s_true + tie_tolerance
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                higher &= block
            inside = (t_idx >= cs.start) & (t_idx < cs.stop)
            rows = torch.nonzero(inside).squeeze(1)
            higher[rows, t_idx[rows] - cs.start] = False
            ranks[qs] += (
                higher.to(torch.uint8).sum(dim=1, dtype=torch.int32).to(torch.long)
            )  # faster than bool.sum
    return ranks


def retrieval_metrics(
    ranks: Tensor | np.ndarray, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float | int]:
    """Top-k hit rates ``top{k}`` (% of queries with rank ≤ k), ``mean_rank``, ``median_rank`` and ``n``."""
    r = ranks.detach().cpu().numpy() if isinstance(ranks, Tensor) else np.asarray(ranks)
    if r.size == 0:
        raise InputError("ranks", "no queries")
    out: dict[str, float | int] = {f"top{k}": 100.0 * float((r <= k).mean()) for k in ks}
    out["mean_rank"] = float(r.mean())
    out["median_rank"] = float(np.median(r))
    out["n"] = int(r.size)
    return out


def pack_element_sets(elements: Tensor) -> Tensor:
    """Pack Bool[N, E] element-presence rows into Long[N, ⌈E/62⌉] keys; equal keys ⇔ equal element sets."""
    if elements.ndim != 2:
        raise InputError("elements", f"expected Bool[N, E], got shape {tuple(elements.shape)}")
    n, width = elements.shape
    words = -(-width // _BITS_PER_WORD)
    bits = torch.zeros((n, words * _BITS_PER_WORD), dtype=torch.long, device=elements.device)
    bits[:, :width] = elements.to(torch.long)
    weights = 2 ** torch.arange(_BITS_PER_WORD, dtype=torch.long, device=elements.device)
    return (bits.view(n, words, _BITS_PER_WORD) * weights).sum(dim=2)


def element_prescreen_mask(query_elements: Tensor, cand_elements: Tensor) -> Tensor:
    """Bool[Q, C]: True where the candidate's element set equals the query's (XCCP's element pre-screen)."""
    qk, ck = pack_element_sets(query_elements), pack_element_sets(cand_elements)
    return (qk[:, None, :] == ck[None, :, :]).all(dim=2)


def element_prescreen(query_elements: Tensor, cand_elements: Tensor) -> Callable[[slice, slice], Tensor]:
    """The element pre-screen as a per-block callable for ``candidate_mask`` / ``allowed``."""
    qk, ck = pack_element_sets(query_elements), pack_element_sets(cand_elements)

    def block(qs: slice, cs: slice) -> Tensor:
        return (qk[qs, None, :] == ck[None, cs, :]).all(dim=2)

    return block


def element_random_baseline(
    query_elements: Tensor, cand_elements: Tensor, true_index: Tensor, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float]:
    """Exact expected top-k hit rate (%) of picking k random candidates among those with the query's elements.

    For query q with n_q same-element-set candidates: P(hit@k) = min(k, n_q)/n_q if its true candidate is
    among them, else 0; the rate is the mean over queries × 100.
    """
    qk = pack_element_sets(query_elements).cpu().numpy()
    ck = pack_element_sets(cand_elements).cpu().numpy()
    t_idx = torch.as_tensor(true_index).cpu().numpy().astype(np.int64)
    _, inverse = np.unique(np.concatenate([ck, qk]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse[: len(ck)], minlength=int(inverse.max()) + 1)
    n_q = counts[inverse[len(ck) :]].astype(np.float64)
    true_in_set = (ck[t_idx] == qk).all(axis=1) & (n_q > 0)
    safe_n = np.maximum(n_q, 1.0)
    return {
        f"top{k}": 100.0 * float(np.mean(np.where(true_in_set, np.minimum(k, safe_n) / safe_n, 0.0)))
        for k in ks
    }


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
        top1 = top1[torch.isfinite(top1)].double()
        conf = confidence(top1, mu, beta)
        out[f"{name}/mean_top1_similarity"] = float(top1.mean())
        out[f"{name}/mean_confidence"] = float(conf.mean())
        out[f"{name}/low_confidence_share"] = 100.0 * float((conf < 0.5).double().mean())
    out["n"] = int(queries.shape[0])
    return out


def space_group_via_retrieval(top1_index: Any, candidate_sg: Any, true_sg: Any) -> float:
    """Accuracy (%) of the space group read off the top-1 retrieved candidate; index −1 (no hit) is wrong."""
    idx = np.asarray(torch.as_tensor(top1_index).cpu(), dtype=np.int64)
    cand = np.asarray(torch.as_tensor(candidate_sg).cpu(), dtype=np.int64)
    truth = np.asarray(torch.as_tensor(true_sg).cpu(), dtype=np.int64)
    if idx.shape != truth.shape:
        raise InputError("top1_index", f"has shape {idx.shape} but true_sg has {truth.shape}")
    pred = np.where(idx >= 0, cand[np.clip(idx, 0, None)], -1)
    keep = truth > 0
    if not keep.any():
        raise InputError("true_sg", "no query has a known space group")
    return 100.0 * float((pred[keep] == truth[keep]).mean())
