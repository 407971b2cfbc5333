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
from dataclasses import dataclass
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
                best = torch.where(is_true(cs), sims(cs), float("-inf")).amax(dim=1, keepdim=True)
                s_true = torch.maximum(s_true, best)
        for cs in c_chunks:
            s = sims(cs)
            true_block = is_true(cs)
            other = ~true_block
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                other &= block
            above = s > s_true + tie_tolerance
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


def random_ranking_per_query(
    n_allowed: Sequence[int] | np.ndarray | Tensor,
    n_true: Sequence[int] | np.ndarray | Tensor,
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, np.ndarray]:
    """Per query, the exact expectation of ranking its allowed candidates in uniformly random order.

    Query q has n allowed candidates of which t are true: a random order puts none of the true ones in the top
    k with probability C(n − t, k) / C(n, k), so P(hit@k) = 1 − C(n − t, k) / C(n, k) (computed exactly in
    integers; k/n for one true candidate), 1 when n < k and t > 0, 0 when t = 0. The expected rank of the first
    true candidate is (n + 1) / (t + 1) (n + 1 when t = 0). Returns ``top{k}`` (100 · P) and ``mean_rank``,
    float64[Q] each — the per-query values the bootstrap resamples, and what a method whose scores are all
    equal (the ``chance`` baseline) scores exactly.
    """
    from math import comb

    def as_ints(x: Any) -> np.ndarray:
        return np.asarray([int(v) for v in (x.tolist() if hasattr(x, "tolist") else x)], dtype=np.int64)

    n_arr, t_arr = as_ints(n_allowed), as_ints(n_true)
    if n_arr.size == 0 or n_arr.shape != t_arr.shape:
        raise InputError(
            "n_allowed", f"need the same non-zero number of queries, got {n_arr.size} and {t_arr.size}"
        )
    pairs, inverse = np.unique(np.stack([n_arr, t_arr], axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)

    def hit(n: int, t: int, k: int) -> float:
        if t <= 0:
            return 0.0
        if n < k:
            return 1.0
        total = comb(n, k)
        return (total - comb(n - t, k)) / total

    out = {
        f"top{k}": 100.0 * np.asarray([hit(int(n), int(t), k) for n, t in pairs], dtype=np.float64)[inverse]
        for k in ks
    }
    out["mean_rank"] = ((n_arr + 1.0) / (np.maximum(t_arr, 0) + 1.0)).astype(np.float64)
    return out


def random_hit_rates(
    n_allowed: Sequence[int] | np.ndarray | Tensor,
    n_true: Sequence[int] | np.ndarray | Tensor,
    ks: Sequence[int] = (1, 3, 5, 10),
) -> dict[str, float]:
    """Expected top-k hit rates (%) of a uniformly random ranking: the means of
    :func:`random_ranking_per_query` over queries. Keys ``top{k}``."""
    per_query = random_ranking_per_query(n_allowed, n_true, ks)
    return {f"top{k}": float(per_query[f"top{k}"].mean()) for k in ks}


def element_set_counts(query_elements: Tensor, cand_elements: Tensor) -> np.ndarray:
    """Per query, the number of candidates whose element set equals the query's (int64[Q]); from packed keys,
    so no Q × C matrix is built."""
    qk = pack_element_sets(query_elements).cpu().numpy()
    ck = pack_element_sets(cand_elements).cpu().numpy()
    _, inverse = np.unique(np.concatenate([ck, qk]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    counts = np.bincount(inverse[: len(ck)], minlength=int(inverse.max()) + 1)
    return counts[inverse[len(ck) :]].astype(np.int64)


def element_random_baseline(
    query_elements: Tensor, cand_elements: Tensor, n_true: Any, ks: Sequence[int] = (1, 3, 5, 10)
) -> dict[str, np.ndarray]:
    """Per query, the exact expectation of picking k random candidates among those with the query's elements.

    ``n_true``: the true candidates of each query in the pool (1, or the size of its duplicate set; true
    candidates share the query's element set). :func:`random_ranking_per_query` with n = the number of
    same-element-set candidates and t = ``n_true``.
    """
    n_q = element_set_counts(query_elements, cand_elements)
    t = np.minimum(np.asarray(n_true, dtype=np.int64).reshape(-1), n_q)
    return random_ranking_per_query(n_q, t, ks)


@torch.no_grad()
def top1_space_group_share(
    queries: Tensor,
    candidates: Tensor,
    query_sg: Tensor,
    candidate_sg: Tensor,
    *,
    allowed: MaskSpec = None,
    chunk_size: int = 16384,
    query_chunk_size: int = 1024,
    tie_tolerance: float = 1e-6,
) -> np.ndarray:
    """Space group via retrieval under random tie-breaking: per query, the share of the allowed candidates tied at
    the top score (within ``tie_tolerance``) whose space group equals the query's — the probability that the
    top-1 after random tie-breaking has the right space group (1 or 0 without ties; 0 when nothing is allowed).
    float64[Q]. Labels are compared as given (an unknown code only matches itself)."""
    _check_embeddings(queries, candidates)
    num_q = queries.shape[0]
    q_sg = torch.as_tensor(query_sg, device=queries.device).long()
    c_sg = torch.as_tensor(candidate_sg).long()
    best = topk_similarities(
        queries,
        candidates,
        1,
        chunk_size=chunk_size,
        query_chunk_size=query_chunk_size,
        candidate_mask=allowed,
    )[0][:, 0]
    tied = torch.zeros(num_q, dtype=torch.float64, device=queries.device)
    right = torch.zeros_like(tied)
    for qs in _chunks(num_q, query_chunk_size):
        q = _unit(queries[qs])
        for cs in _chunks(candidates.shape[0], chunk_size):
            level = (q @ _unit(candidates[cs].to(q.device)).T) >= best[qs, None] - tie_tolerance
            block = _mask_block(allowed, qs, cs, q.device)
            if block is not None:
                level &= block
            same = q_sg[qs, None] == c_sg[cs].to(q.device)[None, :]
            tied[qs] += level.sum(dim=1)
            right[qs] += (level & same).sum(dim=1)
    share = torch.where(tied > 0, right / tied.clamp(min=1), torch.zeros_like(tied))
    share[torch.isneginf(best)] = 0.0
    return share.cpu().numpy()


def tied_top_share(scores: Tensor, right: Tensor, tie_tolerance: float = 1e-6) -> np.ndarray:
    """Per query, the share of the candidates tied at the top score (rows of a dense Float[Q, C]; −inf =
    excluded) that are ``right`` (Bool[Q, C]): the probability that the top-1 after random tie-breaking is
    right. 0 for a row with no finite score. float64[Q]."""
    best = scores.max(dim=1, keepdim=True).values
    level = (scores >= best - tie_tolerance) & torch.isfinite(scores)
    tied = level.sum(dim=1).double()
    share = (level & right.to(level.device)).sum(dim=1).double() / tied.clamp(min=1.0)
    return share.cpu().numpy()
