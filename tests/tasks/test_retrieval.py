"""Retrieval: chunked top-k and ranks vs brute force, element pre-screen, baseline, confidence, open set."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.confidence import confidence, confidence_summary, low_confidence, open_set_test
from pxrdbench.tasks.metrics.pools import (
    element_prescreen,
    element_prescreen_mask,
    element_random_baseline,
    random_hit_rates,
    random_ranking_per_query,
)
from pxrdbench.tasks.metrics.retrieval import (
    rank_counts,
    rank_of_true,
    retrieval_metrics,
    retrieval_per_query,
    same_label,
    top1_right_share,
    topk_similarities,
)


def _data(q: int = 37, c: int = 101, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(q, d, generator=g), torch.randn(c, d, generator=g) * 3.0  # scale must not matter


def _brute(queries: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
    qn = queries / queries.norm(dim=1, keepdim=True)
    cn = candidates / candidates.norm(dim=1, keepdim=True)
    return qn @ cn.T


@pytest.mark.parametrize(("chunk", "qchunk"), [(7, 5), (3, 100), (1000, 1)])
def test_topk_matches_brute_force_for_any_chunking(chunk: int, qchunk: int) -> None:
    queries, candidates = _data()
    values, indices = topk_similarities(queries, candidates, 5, chunk_size=chunk, query_chunk_size=qchunk)
    ref_v, ref_i = _brute(queries, candidates).topk(5, dim=1)
    assert torch.allclose(values, ref_v, atol=1e-5)
    assert torch.equal(indices, ref_i)


def test_mask_as_tensor_or_callable_and_too_few_allowed() -> None:
    queries, candidates = _data(q=6, c=20)
    mask = torch.zeros(6, 20, dtype=torch.bool)
    mask[:, ::4] = True  # 5 allowed candidates per query
    v1, i1 = topk_similarities(queries, candidates, 7, chunk_size=6, candidate_mask=mask)
    v2, i2 = topk_similarities(
        queries, candidates, 7, chunk_size=6, candidate_mask=lambda qs, cs: mask[qs, cs]
    )
    assert torch.equal(i1, i2) and torch.equal(v1, v2)
    assert torch.all(i1[:, :5] % 4 == 0)
    assert torch.all(i1[:, 5:] == -1) and torch.all(torch.isneginf(v1[:, 5:]))


def test_rank_of_true_matches_argsort_with_and_without_mask() -> None:
    queries, candidates = _data()
    true_index = torch.arange(37) * 2
    sims = _brute(queries, candidates)
    expected = 1 + (sims > sims[torch.arange(37), true_index][:, None]).sum(dim=1)
    ranks = rank_of_true(queries, candidates, true_index, chunk_size=9, query_chunk_size=4)
    assert ranks.tolist() == expected.double().tolist()  # no ties among random vectors
    allowed = torch.rand(37, 101, generator=torch.Generator().manual_seed(1)) < 0.3
    masked = rank_of_true(queries, candidates, true_index, allowed=allowed, chunk_size=9)
    higher = (sims > sims[torch.arange(37), true_index][:, None]) & allowed
    assert masked.tolist() == (1 + higher.sum(dim=1)).double().tolist()


def test_a_candidate_tied_with_the_truth_is_half_a_rank_not_a_free_hit() -> None:
    candidates = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])  # 0 and 1 are the same direction
    counts = rank_counts(torch.tensor([[3.0, 0.0]]), candidates, torch.tensor([0]))
    assert counts.expected_rank().tolist() == [1.5]  # 1 + #higher + #tied / 2
    assert counts.hit_probability(1).tolist() == [0.5] and counts.hit_probability(2).tolist() == [1.0]
    assert counts.strictly_first().tolist() == [False]
    assert rank_of_true(torch.tensor([[3.0, 0.0]]), candidates, torch.tensor([0])).tolist() == [1.5]
    with pytest.raises(InputError, match="true_index"):
        rank_of_true(torch.tensor([[3.0, 0.0]]), candidates, torch.tensor([5]))
    with pytest.raises(InputError, match="exactly one"):
        rank_of_true(torch.tensor([[3.0, 0.0]]), candidates)


@pytest.mark.parametrize("chunk", [1, 2, 100])
def test_rank_with_truth_sets_counts_allowed_non_true_candidates_above_the_best_true(chunk: int) -> None:
    angles = torch.tensor([0.9, 0.5, 0.7, 0.8])  # query 0's cosine with four unit candidates
    candidates = torch.stack([angles, (1 - angles**2).sqrt()], dim=1)
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    truth = torch.tensor([[False, False, True, True], [False, False, False, True]])
    ranks = rank_of_true(queries, candidates, truth=truth, chunk_size=chunk)
    sims = _brute(queries, candidates)
    best = torch.where(truth, sims, -torch.inf).amax(dim=1, keepdim=True)
    assert ranks.tolist() == (1 + ((sims > best + 1e-6) & ~truth).sum(dim=1)).double().tolist() == [2, 3]
    allowed = torch.tensor([[False, True, True, True], [True, False, True, True]])
    masked = rank_of_true(queries, candidates, truth=truth, allowed=allowed, chunk_size=chunk)
    assert masked.tolist() == [1, 2]  # the pre-screen removes query 0's 0.9 and query 1's 0.87


def test_one_true_candidate_as_index_or_as_mask_gives_the_same_ranks() -> None:
    queries, candidates = _data()
    true_index = torch.arange(37) * 2
    truth = torch.zeros(37, 101, dtype=torch.bool)
    truth[torch.arange(37), true_index] = True
    assert torch.equal(
        rank_of_true(queries, candidates, true_index), rank_of_true(queries, candidates, truth=truth)
    )


@pytest.mark.parametrize(("n", "t"), [(10, 1), (10, 3), (4, 4), (25, 2)])
def test_a_collapsed_model_scores_exactly_a_uniformly_random_ranking(n: int, t: int) -> None:
    """Every embedding equal: all candidates tie, and the tie-aware metrics equal the analytic expectation."""
    queries, candidates = torch.ones(3, 4), torch.ones(n, 4)
    truth = torch.zeros(3, n, dtype=torch.bool)
    truth[:, :t] = True
    per_query = retrieval_per_query(rank_counts(queries, candidates, truth=truth), ks=(1, 3, 5, 10))
    expected = random_ranking_per_query([n] * 3, [t] * 3, ks=(1, 3, 5, 10))
    for key, values in expected.items():
        np.testing.assert_allclose(per_query[key], values, rtol=1e-12)
    assert per_query["top1"][0] == pytest.approx(100.0 * t / n)
    assert per_query["mean_rank"][0] == pytest.approx((n + 1) / (t + 1))


def test_hit_probability_equals_enumeration_of_all_tie_break_orders() -> None:
    """Scores: 2 non-true above, 3 non-true tied with the best true, 2 true at that score, 1 true below."""
    import itertools

    sims = [0.9, 0.8, 0.5, 0.5, 0.5, 0.5, 0.5, 0.1]
    is_true = [False, False, False, False, False, True, True, True]
    candidates = torch.tensor([[s, (1 - s * s) ** 0.5] for s in sims])
    truth = torch.tensor([is_true])
    counts = rank_counts(torch.tensor([[1.0, 0.0]]), candidates, truth=truth)
    assert (int(counts.higher), int(counts.tied), int(counts.tied_true)) == (2, 3, 2)
    block = [False, False, False, True, True]  # the tied block's members (non-true, true)
    orders = list(set(itertools.permutations(block)))
    first = [2 + 1 + order.index(True) for order in orders]  # rank of the first true in each order
    assert counts.expected_rank()[0] == pytest.approx(np.mean(first))
    for k in range(1, 9):
        assert counts.hit_probability(k)[0] == pytest.approx(np.mean([r <= k for r in first])), k


def test_retrieval_metrics() -> None:
    per_query = retrieval_per_query(np.array([1, 11]), ks=(1,))
    assert per_query["top1"].tolist() == [100.0, 0.0] and per_query["mean_rank"].tolist() == [1.0, 11.0]
    m = retrieval_metrics(torch.tensor([1, 2, 3, 4, 10, 11]))
    assert m["top1"] == pytest.approx(100 / 6)
    assert m["top3"] == pytest.approx(50.0)
    assert m["top10"] == pytest.approx(500 / 6)
    assert m["mean_rank"] == pytest.approx(31 / 6) and m["median_rank"] == pytest.approx(3.5) and m["n"] == 6


def _sets(rows: list[set[int]], width: int = 100) -> torch.Tensor:
    out = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, row in enumerate(rows):
        out[i, sorted(row)] = True
    return out


def test_element_prescreen_equals_set_equality_beyond_one_word() -> None:
    cand = [{0, 7}, {0, 7, 90}, {90}, {7, 0}, {63}, {62}]
    query = [{0, 7}, {90}, {62}, {5}]
    mask = element_prescreen_mask(_sets(query), _sets(cand))
    expected = torch.tensor([[q == c for c in cand] for q in query])
    assert torch.equal(mask, expected)
    block = element_prescreen(_sets(query), _sets(cand))(slice(1, 3), slice(2, 6))
    assert torch.equal(block, expected[1:3, 2:6])


def test_element_random_baseline_is_exact() -> None:
    cand = _sets([{1}, {1}, {1}, {2}, {3, 4}])
    query = _sets([{1}, {2}, {3, 4}, {1}])
    n_true = [1, 1, 1, 2]  # the last query has a duplicate set of two {1}-candidates
    out = element_random_baseline(query, cand, n_true, ks=(1, 3))
    np.testing.assert_allclose(out["top1"], [100 / 3, 100, 100, 200 / 3])
    np.testing.assert_allclose(out["top3"], [100, 100, 100, 100])
    np.testing.assert_allclose(out["mean_rank"], [2.0, 1.0, 1.0, 4 / 3])
    assert random_hit_rates([3, 1, 1, 3], [1, 1, 1, 2], ks=(1, 3)) == pytest.approx(
        {key: float(np.mean(out[key])) for key in ("top1", "top3")}
    )


def test_random_hit_rates_equal_enumeration_of_all_orders() -> None:
    import itertools

    truth = [[True, False, False, False, True], [False, False, True, False, False], [False] * 5]
    allowed = [[True] * 5, [False, True, True, True, False], [True, True, False, False, False]]
    n = [sum(a) for a in allowed]
    t = [sum(x and a for x, a in zip(tr, al, strict=True)) for tr, al in zip(truth, allowed, strict=True)]
    rates = random_hit_rates(n, t, (1, 2, 3))
    for k in (1, 2, 3):
        per_query = []
        for tr, al in zip(truth, allowed, strict=True):
            orders = list(itertools.permutations([i for i in range(5) if al[i]]))
            per_query.append(np.mean([any(tr[i] for i in order[:k]) for order in orders]))
        assert rates[f"top{k}"] == pytest.approx(100.0 * np.mean(per_query))
    assert random_hit_rates([7], [1], (3,))["top3"] == 100.0 * 3 / 7  # k/n exactly for one true candidate


def test_confidence_formula_and_flag() -> None:
    assert confidence(0.85) == pytest.approx(0.5)
    assert confidence(0.9) == pytest.approx(1 / (1 + math.exp(-2.0)))
    assert confidence(-50.0) == pytest.approx(0.0) and confidence(50.0) == pytest.approx(1.0)
    s = torch.tensor([0.80, 0.85, 0.95], dtype=torch.float64)
    assert torch.allclose(confidence(s), torch.from_numpy(confidence(s.numpy())))
    assert low_confidence(np.array([0.80, 0.86])).tolist() == [True, False]
    for top1 in (s, s.numpy()):
        summary = confidence_summary(top1)
        assert summary["mean_top1_similarity"] == pytest.approx(float(s.mean()))
        assert summary["low_confidence_share"] == pytest.approx(100 / 3)


def test_open_set_test_in_pool_vs_removed() -> None:
    cos = 0.6
    candidates = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [cos, math.sqrt(1 - cos**2), 0.0]])
    queries = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = open_set_test(queries, candidates, torch.tensor([0, 1]))
    assert out["in_pool/mean_top1_similarity"] == pytest.approx(1.0)
    # removed: query 0 -> candidate 2 (cos 0.6); query 1 -> candidate 2 (sin = 0.8)
    assert out["removed/mean_top1_similarity"] == pytest.approx((0.6 + 0.8) / 2, abs=1e-6)
    assert out["removed/low_confidence_share"] == pytest.approx(100.0)
    assert out["in_pool/low_confidence_share"] == pytest.approx(0.0)


def test_space_group_via_top1_shares_ties_among_the_tied_candidates() -> None:
    candidates = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # 0, 1, 3 tie for query 0
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    right = same_label(torch.tensor([225, 14]), torch.tensor([225, 14, 14, 62]))
    share = top1_right_share(queries, candidates, right, chunk_size=2)
    np.testing.assert_allclose(share, [1 / 3, 1.0])
    dense = torch.tensor([[True, False, False, True], [False, False, True, False]])
    np.testing.assert_allclose(top1_right_share(queries, candidates, dense), [2 / 3, 1.0])
    nothing = top1_right_share(queries, candidates, right, allowed=torch.zeros(2, 4, dtype=torch.bool))
    assert nothing.tolist() == [0.0, 0.0]  # no candidate allowed: wrong


@pytest.mark.slow
def test_one_million_candidates_fit_in_bounded_memory() -> None:
    g = torch.Generator().manual_seed(0)
    candidates = torch.randn(1_000_000, 64, generator=g)
    true_index = torch.randint(0, 1_000_000, (256,), generator=g)
    queries = candidates[true_index] + 0.05 * torch.randn(256, 64, generator=g)
    start = time.perf_counter()
    values, indices = topk_similarities(queries, candidates, 10, chunk_size=65536)
    elapsed = time.perf_counter() - start
    assert torch.equal(indices[:, 0], true_index)
    ranks = rank_of_true(queries, candidates, true_index, chunk_size=65536)
    assert torch.all(ranks == 1.0)
    print(f"top-10 over 1e6 x 64 candidates, 256 queries: {elapsed:.2f} s")


def test_a_within_source_duplicate_of_the_truth_is_a_correct_answer() -> None:
    """Rows 0 and 2 are exact duplicates (one representative): identical patterns tie, and both are true."""
    from pxrdbench.tasks.retrieval import truth_sets

    rep = np.array([0, 1, 0, 3])
    rows = np.arange(4)
    truth, n_true = truth_sets(rep, rows, rows)
    assert n_true.tolist() == [2, 1, 2, 1]
    embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.7, 0.7]])
    counts = rank_counts(embeddings, embeddings, truth=truth)
    per_query = retrieval_per_query(counts, ks=(1,))
    assert per_query["top1"].tolist() == [100.0, 100.0, 100.0, 100.0]
    # without the truth set the duplicate would be a tie with a non-true candidate: half a hit
    alone = rank_counts(embeddings, embeddings, torch.arange(4))
    assert alone.hit_probability(1).tolist() == [0.5, 1.0, 0.5, 1.0]


def test_candidates_without_an_embedding_rank_last_and_a_query_whose_truth_has_none_is_a_miss() -> None:
    """NaN rows (an encoder that cannot embed a structure) never help: not above, not tied, not in a top-k."""
    queries = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    candidates = torch.tensor([[1.0, 0.0], [0.0, 1.0], [float("nan"), float("nan")], [0.6, 0.8]])
    truth = torch.tensor([0, 2, 3])  # query 1's structure could not be embedded
    for counts in (
        rank_counts(queries, candidates, truth),
        rank_counts(
            queries, candidates, truth=lambda qs, cs: torch.nn.functional.one_hot(truth[qs], 4)[:, cs] > 0
        ),
    ):
        assert counts.higher.tolist() == [0, 3, 0] and counts.tied.tolist() == [0, 0, 0]
        assert counts.expected_rank().tolist() == [1.0, 4.0, 1.0]
    values, indices = topk_similarities(queries, candidates, k=4)
    assert (indices[:, :3] != 2).all() and (indices[:, 3] == -1).all()  # the NaN row: a −inf slot, index −1
    assert torch.isneginf(values[:, 3]).all()
