"""Structure retrieval: chunked cosine top-k, ranks of the true candidate(s), element pre-screen, random baselines,
space group via retrieval (confidence and the open-set test: :mod:`pxrdbench.tasks.metrics.confidence`).

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
    true_index: Tensor | None = None,
    *,
    truth: MaskSpec = None,
    allowed: MaskSpec = None,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    tie_tolerance: float = 1e-6,
) -> Tensor:
    """1-based rank of each query's true candidate: 1 + #allowed non-true candidates with strictly higher similarity.

    The truth is either ``true_index`` Long[Q] (one true candidate per query; its similarity is the product of
    the two unit vectors) or ``truth`` (a mask, see the module docstring: several true candidates per query,
    every row with at least one; the best of them counts). "Strictly higher" means s > s_true +
    ``tie_tolerance`` so that float rounding never splits a tie; true candidates are never counted.
    Returns Long[Q].
    """
    _check_embeddings(queries, candidates)
    if (true_index is None) == (truth is None):
        raise InputError("true_index/truth", "give exactly one of them")
    if true_index is not None:
        true_index = torch.as_tensor(true_index, dtype=torch.long, device=queries.device)
        if true_index.shape != (queries.shape[0],):
            raise InputError(
                "true_index", f"expected shape ({queries.shape[0]},), got {tuple(true_index.shape)}"
            )
        if true_index.numel() and (true_index.min() < 0 or true_index.max() >= candidates.shape[0]):
            raise InputError("true_index", f"indices must lie in [0, {candidates.shape[0]})")
    ranks = torch.ones(queries.shape[0], dtype=torch.long, device=queries.device)
    c_chunks = _chunks(candidates.shape[0], chunk_size)
    for qs in _chunks(queries.shape[0], query_chunk_size):
        q = _unit(queries[qs])

        def sims(cs: slice, q: Tensor = q) -> Tensor:
            return q @ _unit(candidates[cs].to(q.device)).T

        if true_index is not None:
            t_idx = true_index[qs]
            s_true = (q * _unit(candidates[t_idx.to(candidates.device)].to(q.device))).sum(
                dim=1, keepdim=True
            )
        else:
            s_true = torch.full((q.shape[0], 1), float("-inf"), device=q.device)
            for cs in c_chunks:
                is_true = _mask_block(truth, qs, cs, q.device)
                best = torch.where(is_true, sims(cs), float("-inf")).amax(dim=1, keepdim=True)
                s_true = torch.maximum(s_true, best)
        for cs in c_chunks:
            higher = sims(cs) > s_true + tie_tolerance
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                higher &= block
            if true_index is not None:
                inside = (t_idx >= cs.start) & (t_idx < cs.stop)
                rows = torch.nonzero(inside).squeeze(1)
                higher[rows, t_idx[rows] - cs.start] = False
            else:
                higher &= ~_mask_block(truth, qs, cs, q.device)
            ranks[qs] += (
                higher.to(torch.uint8).sum(dim=1, dtype=torch.int32).to(torch.long)
            )  # faster than bool.sum
    return ranks


def retrieval_per_query(
    ranks: Tensor | np.ndarray, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, np.ndarray]:
    """Per-query values whose means are the retrieval metrics: ``top{k}`` hits (0 or 100) and ``mean_rank``
    (the rank itself), as float64 arrays (what the bootstrap resamples)."""
    r = ranks.detach().cpu().numpy() if isinstance(ranks, Tensor) else np.asarray(ranks)
    r = r.astype(np.float64)
    if r.size == 0:
        raise InputError("ranks", "no queries")
    out = {f"top{k}": (r <= k) * 100.0 for k in ks}
    out["mean_rank"] = r
    return out


def retrieval_metrics(
    ranks: Tensor | np.ndarray, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float | int]:
    """Top-k hit rates ``top{k}`` (% of queries with rank ≤ k), ``mean_rank``, ``median_rank`` and ``n``."""
    per_query = retrieval_per_query(ranks, ks)
    r = per_query["mean_rank"]
    out: dict[str, float | int] = {key: float(values.mean()) for key, values in per_query.items()}
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


def random_hit_rates(
    n_allowed: Sequence[int] | np.ndarray | Tensor,
    n_true: Sequence[int] | np.ndarray | Tensor,
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, float]:
    """Exact expected top-k hit rate (%) of ranking each query's allowed candidates in random order.

    Query q has n allowed candidates of which t are true: a random order puts none of the true ones in the top k
    with probability C(n − t, k) / C(n, k), so P(hit@k) = (C(n, k) − C(n − t, k)) / C(n, k) (computed exactly
    in integers, then rounded once; k/n for one true candidate), 1 when n < k and t > 0, 0 when t = 0. The rate
    is 100 · the mean over queries. Keys ``top{k}``.
    """
    from math import comb

    def as_ints(x: Any) -> list[int]:
        return [int(v) for v in (x.tolist() if hasattr(x, "tolist") else x)]

    pairs = list(zip(as_ints(n_allowed), as_ints(n_true), strict=True))
    if not pairs:
        raise InputError("n_allowed", "no queries")
    seen: dict[tuple[int, int, int], float] = {}

    def hit(n: int, t: int, k: int) -> float:
        if (n, t, k) not in seen:
            if t <= 0:
                seen[n, t, k] = 0.0
            elif n < k:
                seen[n, t, k] = 1.0
            else:
                total = comb(n, k)
                seen[n, t, k] = (total - comb(n - t, k)) / total
        return seen[n, t, k]

    return {
        f"top{k}": 100.0 * float(np.mean(np.asarray([hit(n, t, k) for n, t in pairs], dtype=np.float64)))
        for k in ks
    }


def element_random_baseline(
    query_elements: Tensor, cand_elements: Tensor, true_index: Tensor, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float]:
    """Exact expected top-k hit rate (%) of picking k random candidates among those with the query's elements.

    For query q with n_q same-element-set candidates: P(hit@k) = min(k, n_q)/n_q if its true candidate is
    among them, else 0 (:func:`random_hit_rates` with one true candidate); the rate is the mean over queries
    × 100. Counts come from element-set keys, so no Q × C matrix is built.
    """
    qk = pack_element_sets(query_elements).cpu().numpy()
    ck = pack_element_sets(cand_elements).cpu().numpy()
    t_idx = torch.as_tensor(true_index).cpu().numpy().astype(np.int64)
    _, inverse = np.unique(np.concatenate([ck, qk]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse[: len(ck)], minlength=int(inverse.max()) + 1)
    n_q = counts[inverse[len(ck) :]]
    true_in_set = (ck[t_idx] == qk).all(axis=1) & (n_q > 0)
    return random_hit_rates(n_q, true_in_set.astype(np.int64), ks)


def space_group_via_retrieval(top1_index: Any, candidate_sg: Any, true_sg: Any) -> np.ndarray:
    """Per query, 1.0 where the space group of its top-1 retrieved candidate is right, else 0.0 (float64[Q]).

    ``true_sg``: the query's space group, Long[Q], or a truth mask Bool[Q, C] (right when the top-1's space
    group is that of any true candidate). A top-1 index −1 (no candidate allowed) is wrong. Labels are
    compared as given: every query counts, and an unknown label only matches the same unknown code.
    """
    idx = np.asarray(torch.as_tensor(top1_index).cpu(), dtype=np.int64)
    cand = np.asarray(torch.as_tensor(candidate_sg).cpu(), dtype=np.int64)
    truth = np.asarray(torch.as_tensor(true_sg).cpu())
    if idx.ndim != 1 or truth.shape[:1] != idx.shape:
        raise InputError("top1_index", f"has shape {idx.shape} but true_sg has {truth.shape}")
    pred = np.where(idx >= 0, cand[np.clip(idx, 0, None)], -1)
    if truth.ndim == 2:
        if truth.shape[1] != cand.shape[0]:
            raise InputError(
                "true_sg", f"truth mask has {truth.shape[1]} columns for {cand.shape[0]} candidates"
            )
        hits = (truth.astype(bool) & (cand[None, :] == pred[:, None])).any(axis=1) & (idx >= 0)
        return hits.astype(np.float64)
    return (pred == truth.astype(np.int64)).astype(np.float64)
