"""Bootstrap intervals: the item and cluster bootstrap, its coverage, stratified balanced accuracy, paired
differences, seed summaries."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.bootstrap import (
    ITEMS_KEY,
    balanced_accuracy_with_ci,
    bootstrap_ci,
    bootstrap_distribution,
    mean_with_ci,
    metric_entry,
    paired_difference,
    seed_summary,
    strip_items,
)


def test_bootstrap_is_seeded_and_brackets_the_mean() -> None:
    hits = (np.arange(400) % 2 == 0).astype(float)  # p = 0.5, N = 400
    low, high = bootstrap_ci(hits, n_boot=2000, seed=3)
    assert (low, high) == bootstrap_ci(hits, n_boot=2000, seed=3)
    assert bootstrap_ci(hits, n_boot=2000, seed=4) != (low, high)
    assert low < 0.5 < high
    # normal approximation: half-width 1.96 * sqrt(p (1 - p) / N) = 0.049
    assert (high - low) / 2 == pytest.approx(0.049, rel=0.15)


def test_chunked_resampling_gives_the_same_distribution_shape() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=50_000)
    stats = bootstrap_distribution(values, n_boot=200, seed=0)  # forces several chunks (4e6 / 5e4 = 80)
    assert stats.shape == (200,)
    assert stats.std() == pytest.approx(values.std() / np.sqrt(values.size), rel=0.2)


def _clustered(rng: np.random.Generator, n_groups: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """0/1 outcomes in groups of 1–30 items sharing a group effect; the population mean is exactly 0.5
    (group probabilities symmetric about 0.5)."""
    sizes = rng.integers(1, 31, size=n_groups)
    p = rng.choice([0.1, 0.9], size=n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    values = (rng.random(groups.size) < p[groups]).astype(float)
    return values, groups


def test_cluster_bootstrap_covers_the_true_mean_in_90_to_99_percent_of_draws() -> None:
    rng = np.random.default_rng(11)
    draws, covered, covered_items = 200, 0, 0
    for seed in range(draws):
        values, groups = _clustered(rng)
        low, high = bootstrap_ci(values, groups, n_boot=400, seed=seed)
        covered += low <= 0.5 <= high
        low_i, high_i = bootstrap_ci(values, None, n_boot=400, seed=seed)
        covered_items += low_i <= 0.5 <= high_i
    assert 0.90 <= covered / draws <= 0.99
    assert covered_items / draws < 0.6  # resampling correlated items instead: far too narrow


def test_cluster_interval_is_wider_than_the_item_interval_for_correlated_groups() -> None:
    values, groups = _clustered(np.random.default_rng(0))
    item = bootstrap_ci(values, n_boot=1000)
    cluster = bootstrap_ci(values, groups, n_boot=1000)
    assert cluster[1] - cluster[0] > 2.0 * (item[1] - item[0])


def test_groups_of_one_item_reproduce_the_item_bootstrap() -> None:
    values = np.random.default_rng(1).random(300)
    assert bootstrap_ci(values, np.arange(300), n_boot=500, seed=2) == bootstrap_ci(
        values, None, n_boot=500, seed=2
    )
    with pytest.raises(InputError, match="groups"):
        bootstrap_ci(values, np.arange(5))


def test_stratified_balanced_accuracy_keeps_every_class_and_its_point_inside() -> None:
    rng = np.random.default_rng(3)
    y = np.concatenate([np.zeros(300, int), np.ones(20, int), np.full(3, 2)])  # one rare class of 3 items
    correct = np.concatenate([rng.random(300) < 0.9, rng.random(20) < 0.3, [0.0, 0.0, 1.0]]).astype(float)
    entry = balanced_accuracy_with_ci(y, correct, n_boot=1000)
    point = 100.0 * np.mean([correct[y == c].mean() for c in range(3)])
    assert entry["value"] == pytest.approx(point)
    assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1]
    assert entry["n"] == y.size


def test_mean_entry_carries_items_for_pairs_and_strips_to_the_schema() -> None:
    values = np.array([1.0, 0.0, 1.0, 1.0])
    entry = mean_with_ci(values, scale=100.0, n_boot=50)
    assert entry["value"] == pytest.approx(75.0)
    np.testing.assert_allclose(entry[ITEMS_KEY], values * 100.0)
    assert set(strip_items(entry)) == {"value", "ci95", "n", "std"}
    assert metric_entry(1, 5) == {"value": 1.0, "ci95": None, "n": 5, "std": None}


def test_paired_difference_is_the_bootstrap_of_per_item_differences() -> None:
    rng = np.random.default_rng(5)
    values, groups = _clustered(rng)
    method = mean_with_ci(values * 100.0, groups=groups, n_boot=500)
    baseline = np.full(values.size, 100.0 / 7.0)
    diff = paired_difference(method, baseline, n_boot=500)
    assert diff is not None and set(diff) == {"value", "ci95", "n", "std"}
    assert diff["value"] == pytest.approx(method["value"] - 100.0 / 7.0)
    # a constant baseline shifts the interval: the same replicates
    assert diff["ci95"][0] == pytest.approx(method["ci95"][0] - 100.0 / 7.0)
    assert paired_difference(method, baseline[:-1]) is None


def test_seed_summary_uses_sample_std() -> None:
    s = seed_summary([80.0, 82.0, 84.0])
    assert s == {"mean": pytest.approx(82.0), "std": pytest.approx(2.0), "n_seeds": 3}
    assert seed_summary([5.0])["std"] is None
    with pytest.raises(InputError):
        seed_summary([])
    with pytest.raises(InputError, match="alpha"):
        bootstrap_ci([1.0, 2.0], alpha=1.5)


def test_float_noise_between_equal_values_is_no_paired_difference() -> None:
    values = np.full(50, 100.0 / 3.0)
    method = mean_with_ci(values, n_boot=50)
    diff = paired_difference(method, values - 3e-15, n_boot=50)
    assert diff is not None and diff["value"] == 0.0 and diff["ci95"] == [0.0, 0.0]
