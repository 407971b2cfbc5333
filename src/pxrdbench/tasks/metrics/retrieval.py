"""Structure retrieval: chunked cosine top-k, tie-aware ranks of the true candidate(s), the tie-aware top-1 share
(space group via retrieval; the element pre-screen and the random-ranking expectations are in
:mod:`pxrdbench.tasks.metrics.pools`) (confidence and the open-set test: :mod:`pxrdbench.tasks.metrics.confidence`).

Similarity is the cosine s(q, c) = q·c / (‖q‖ ‖c‖) (inputs are L2-normalised inside), computed as batched
matrix products over chunks of queries AND candidates so memory stays bounded (a Q-chunk × C-chunk block at a
time): a pool of 1,000,000 × 64-d candidates runs on a CPU. Everything runs under ``torch.no_grad`` on the
inputs' device.

Embeddings that are not finite (an encoder that cannot embed a structure, e.g. CSPNet over 400 atoms, returns
NaN) never help the truth: such a candidate ranks below every finite one (never above or tied with a truth) and
never appears in a top-k; a query whose query embedding or best true candidate is not finite ranks last (a miss).

A candidate restriction (``candidate_mask`` / ``allowed``) is either a boolean Tensor[Q, C] or a callable
``(query_slice, candidate_slice) -> Bool[q, c]`` evaluated per block (e.g.
:func:`pxrdbench.tasks.metrics.pools.element_prescreen`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.errors import InputError

MaskSpec = Tensor | Callable[[slice, slice], Tensor] | None


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
            sims = torch.nan_to_num(q @ _unit(candidates[cs].to(q.device)).T, nan=float("-inf"))
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


@dataclass(frozen=True)
class RankCounts:
    """Where each query's truth lands among its allowed candidates, before tie-breaking (Long[Q] each).

    ``higher``: non-true candidates scoring strictly above the best true candidate; ``tied``: non-true
    candidates tied with it (within the tie tolerance); ``tied_true``: true candidates at that score (≥ 1).
    Under a uniformly random order of the tied block (``tied + tied_true`` candidates), the number X of
    non-true candidates placed before the first true one has P(X ≥ j) = C(t, j) / C(t + m, j) (t = tied,
    m = tied_true), so

    - expected rank = 1 + higher + t / (m + 1)   (1 + #higher + #tied/2 for one true candidate);
    - P(hit@k) = 1 − C(t, k − h) / C(t + m, k − h) for k > h (h = higher), else 0.

    Ties therefore never favour the truth: a collapsed model (every score equal) scores exactly the expectation
    of a uniformly random ranking.
    """

    higher: Tensor
    tied: Tensor
    tied_true: Tensor

    def __len__(self) -> int:
        return int(self.higher.shape[0])

    def numpy(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(higher, tied, tied_true) as int64 numpy arrays."""
        return tuple(
            np.asarray(x.detach().cpu(), dtype=np.int64) for x in (self.higher, self.tied, self.tied_true)
        )

    def expected_rank(self) -> np.ndarray:
        """Expected 1-based rank of the first true candidate under random tie-breaking, float64[Q]."""
        h, t, m = self.numpy()
        return 1.0 + h + t / (m + 1.0)

    def hit_probability(self, k: int) -> np.ndarray:
        """Exact probability that a true candidate lands in the first ``k`` under random tie-breaking, float64[Q]."""
        h, t, m = (a.astype(np.float64) for a in self.numpy())
        slots = k - h
        miss = np.ones_like(h)  # P(X ≥ slots) = prod_{i < slots} (t − i) / (t + m − i)
        for i in range(int(k)):
            factor = np.where(i < slots, np.clip(t - i, 0.0, None) / np.maximum(t + m - i, 1.0), 1.0)
            miss *= factor
        return np.where(slots >= 1, 1.0 - miss, 0.0)

    def strictly_first(self) -> Tensor:
        """Bool[Q]: the truth is first with no tie (a hit whatever the tie-breaking)."""
        return (self.higher == 0) & (self.tied == 0)


@torch.no_grad()
def rank_counts(
    queries: Tensor,
    candidates: Tensor,
    true_index: Tensor | None = None,
    *,
    truth: MaskSpec = None,
    allowed: MaskSpec = None,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    tie_tolerance: float = 1e-6,
) -> RankCounts:
    """Counts of candidates above and tied with each query's best true candidate (:class:`RankCounts`).

    The truth is either ``true_index`` Long[Q] (one true candidate per query) or ``truth`` (a mask, see the
    module docstring: several true candidates per query — e.g. a structure's within-source duplicates — every
    row with at least one; the best-scoring one counts). Scores within ``tie_tolerance`` (cosine) of the best
    true score are ties, so float rounding never splits a tie in anyone's favour. Only ``allowed`` non-true
    candidates are counted.
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
    num_q = queries.shape[0]
    higher = torch.zeros(num_q, dtype=torch.long, device=queries.device)
    tied = torch.zeros_like(higher)
    tied_true = torch.ones_like(higher) if true_index is not None else torch.zeros_like(higher)
    c_chunks = _chunks(candidates.shape[0], chunk_size)
    for qs in _chunks(num_q, query_chunk_size):
        q = _unit(queries[qs])

        def sims(cs: slice, q: Tensor = q) -> Tensor:
            return q @ _unit(candidates[cs].to(q.device)).T

        def is_true(cs: slice, qs: slice = qs, q: Tensor = q) -> Tensor:
            if truth is not None:
                return _mask_block(truth, qs, cs, q.device)
            block = torch.zeros((q.shape[0], cs.stop - cs.start), dtype=torch.bool, device=q.device)
            t_idx = true_index[qs]
            rows = torch.nonzero((t_idx >= cs.start) & (t_idx < cs.stop)).squeeze(1)
            block[rows, t_idx[rows] - cs.start] = True
            return block

        if true_index is not None:
            t_idx = true_index[qs]
            s_true = (q * _unit(candidates[t_idx.to(candidates.device)].to(q.device))).sum(
                dim=1, keepdim=True
            )
        else:
            s_true = torch.full((q.shape[0], 1), float("-inf"), device=q.device)
            for cs in c_chunks:
                scores = torch.nan_to_num(sims(cs), nan=float("-inf"))
                best = torch.where(is_true(cs), scores, float("-inf")).amax(dim=1, keepdim=True)
                s_true = torch.maximum(s_true, best)
        missed = ~torch.isfinite(s_true)  # no finite embedding for the query or its truth: ranks last
        for cs in c_chunks:
            s = sims(cs)
            true_block = is_true(cs)
            other = ~true_block
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                other &= block
            above = (s > s_true + tie_tolerance) | missed
            level = (~above) & (s >= s_true - tie_tolerance)
            higher[qs] += (above & other).sum(dim=1)
            tied[qs] += (level & other).sum(dim=1)
            if truth is not None:
                tied_true[qs] += (level & true_block).sum(dim=1)
    return RankCounts(higher, tied, tied_true.clamp(min=1))


def rank_of_true(
    queries: Tensor, candidates: Tensor, true_index: Tensor | None = None, **kwargs: Any
) -> Tensor:
    """Expected 1-based rank of each query's truth under random tie-breaking, Float64[Q] (see :func:`rank_counts`
    for the arguments and :class:`RankCounts` for the formula)."""
    counts = rank_counts(queries, candidates, true_index, **kwargs)
    return torch.as_tensor(counts.expected_rank())


def retrieval_per_query(
    ranks: RankCounts | Tensor | np.ndarray, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, np.ndarray]:
    """Per-query values whose means are the retrieval metrics: ``top{k}`` (100 × the probability of a hit under
    random tie-breaking) and ``mean_rank`` (the expected rank), float64 arrays (what the bootstrap resamples).

    ``ranks``: :class:`RankCounts`, or plain integer ranks (no ties: a hit is rank ≤ k).
    """
    if isinstance(ranks, RankCounts):
        if len(ranks) == 0:
            raise InputError("ranks", "no queries")
        out = {f"top{k}": 100.0 * ranks.hit_probability(k) for k in ks}
        out["mean_rank"] = ranks.expected_rank()
        return out
    r = ranks.detach().cpu().numpy() if isinstance(ranks, Tensor) else np.asarray(ranks)
    r = r.astype(np.float64)
    if r.size == 0:
        raise InputError("ranks", "no queries")
    out = {f"top{k}": (r <= k) * 100.0 for k in ks}
    out["mean_rank"] = r
    return out


def retrieval_metrics(
    ranks: RankCounts | Tensor | np.ndarray, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, float | int]:
    """Top-k hit rates ``top{k}`` (%), ``mean_rank``, ``median_rank`` (of the expected ranks) and ``n``."""
    per_query = retrieval_per_query(ranks, ks)
    r = per_query["mean_rank"]
    out: dict[str, float | int] = {key: float(values.mean()) for key, values in per_query.items()}
    out["median_rank"] = float(np.median(r))
    out["n"] = int(r.size)
    return out


@torch.no_grad()
def top1_right_share(
    queries: Tensor,
    candidates: Tensor,
    right: MaskSpec,
    *,
    allowed: MaskSpec = None,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    tie_tolerance: float = 1e-6,
) -> np.ndarray:
    """The probability that the top-1 candidate after random tie-breaking is ``right`` (a mask spec, see the module
    docstring; e.g. "has the query's space group"): per query, the share of the allowed candidates tied at the top
    score (within ``tie_tolerance``) that are right — 1 or 0 without ties, 0 when nothing is allowed. float64[Q]."""
    _check_embeddings(queries, candidates)
    num_q = queries.shape[0]
    best = topk_similarities(
        queries,
        candidates,
        1,
        chunk_size=chunk_size,
        query_chunk_size=query_chunk_size,
        candidate_mask=allowed,
    )[0][:, 0]
    tied = torch.zeros(num_q, dtype=torch.float64, device=queries.device)
    hits = torch.zeros_like(tied)
    for qs in _chunks(num_q, query_chunk_size):
        q = _unit(queries[qs])
        for cs in _chunks(candidates.shape[0], chunk_size):
            level = (q @ _unit(candidates[cs].to(q.device)).T) >= best[qs, None] - tie_tolerance
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                level &= block
            tied[qs] += level.sum(dim=1)
            hits[qs] += (level & _mask_block(right, qs, cs, q.device)).sum(dim=1)
    share = torch.where(tied > 0, hits / tied.clamp(min=1), torch.zeros_like(tied))
    share[torch.isneginf(best)] = 0.0
    return share.cpu().numpy()


def same_label(query_labels: Any, candidate_labels: Any) -> Callable[[slice, slice], Tensor]:
    """The mask spec "the candidate's label equals the query's" (e.g. space groups) for :func:`top1_right_share`.
    Labels are compared as given: an unknown code only matches itself."""
    q = torch.as_tensor(query_labels).long()
    c = torch.as_tensor(candidate_labels).long()

    def block(qs: slice, cs: slice) -> Tensor:
        return q[qs, None] == c[None, cs]

    return block
