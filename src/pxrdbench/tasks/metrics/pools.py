"""The candidate pool side of retrieval: XCCP's element pre-screen (candidates whose element set equals the
query's) and the exact expectations of random rankings (``uniform_random/…`` over the whole pool,
``element_random/…`` among the same-element-set candidates), which a method whose scores all tie scores exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.errors import InputError

_BITS_PER_WORD = 62


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
