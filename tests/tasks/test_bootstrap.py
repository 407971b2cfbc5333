"""Bootstrap intervals and seed summaries."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.bootstrap import (
    bootstrap_ci,
    bootstrap_distribution,
    fn_with_ci,
    mean_with_ci,
    metric_entry,
    seed_summary,
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


def test_metric_fn_form_and_entries_fit_the_results_schema() -> None:
    y_true = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1, 1] * 10)
    y_pred = np.array([0, 1, 0, 0, 1, 1, 1, 0, 1, 1] * 10)

    def accuracy(t: np.ndarray, p: np.ndarray) -> float:
        return 100.0 * float((t == p).mean())

    entry = fn_with_ci(accuracy, [y_true, y_pred], n_boot=300)
    assert entry["value"] == pytest.approx(80.0) and entry["n"] == 100
    assert entry["ci95"][0] < 80.0 < entry["ci95"][1]
    same = mean_with_ci((y_true == y_pred).astype(float), scale=100.0, n_boot=300)
    assert same["value"] == pytest.approx(80.0) and same["std"] is None
    assert metric_entry(1, 5) == {"value": 1.0, "ci95": None, "n": 5, "std": None}


def test_seed_summary_uses_sample_std() -> None:
    s = seed_summary([80.0, 82.0, 84.0])
    assert s == {"mean": pytest.approx(82.0), "std": pytest.approx(2.0), "n_seeds": 3}
    assert seed_summary([5.0])["std"] is None
    with pytest.raises(InputError):
        seed_summary([])
    with pytest.raises(InputError, match="alpha"):
        bootstrap_ci([1.0, 2.0], alpha=1.5)
