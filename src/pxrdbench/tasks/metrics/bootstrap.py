"""Uncertainty of metrics: the percentile cluster bootstrap over test groups, its stratified form for balanced
accuracy, paired differences against baselines, and mean ± std over seeds.

Test items of one split group (an AMCSD mineral's pressure/temperature series, one compound's polymorphs) are
strongly correlated, so resampling items makes intervals too narrow (by about √(Σ n_g² / N) for groups of sizes
n_g). Here the **groups** are resampled with replacement (a cluster bootstrap): each replicate draws G groups
out of the G present, and a mean over items becomes the ratio Σ_g c_g S_g / Σ_g c_g n_g (c_g = how often
group g was drawn, S_g its sum, n_g its size). Without groups every item is its own group (the ordinary item
bootstrap; e.g. the measured RRUFF patterns, which carry no ids). Balanced accuracy is resampled within each
class (stratified: each class's groups are drawn from that class's items, so every class is in every
replicate and the point estimate lies inside its interval). The interval is the (α/2, 1 − α/2) percentile
pair of the replicates: 95 % for α = 0.05. Everything is seeded and deterministic; a paired difference uses
the same replicates for the method and the baseline because it resamples their per-item differences.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.classification import as_numpy

MetricFn = Callable[..., float]

INTERVAL_METHOD = "percentile cluster bootstrap, 95 %"
"""How every ``ci95`` of a results file written by this code was made (recorded in the file)."""
BALANCED_METHOD = "stratified by class: groups resampled within each class"
"""How balanced accuracy's ``ci95`` was made."""
ITEMS_KEY = "_items"
"""Private metric-entry key holding the per-item values (float64[N]) a paired difference needs; never written."""
GROUPS_KEY = "_groups"
"""Private metric-entry key holding the items' resampling groups (or None); never written."""

PAIRED_ZERO = 1e-9
"""Relative size below which a per-item difference between a method and a baseline is float noise (set to 0)."""

_MAX_RESAMPLE_ELEMENTS = 4_000_000
"""Count-matrix elements (replicates × groups) materialised at once; bounds memory."""


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise InputError("n_boot", f"must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha", f"must lie in (0, 1), got {alpha}")


def group_codes(groups: Any, n: int) -> tuple[np.ndarray, int]:
    """(group code in 0..G−1 per item, G); ``groups`` None makes every item its own group."""
    if groups is None:
        return np.arange(n, dtype=np.int64), n
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise InputError("groups", f"need one group per item ({n}), got shape {labels.shape}")
    uniques, codes = np.unique(labels, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), int(len(uniques))


def _group_draws(n_groups: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Chunks of Int[b, G]: how often each group is drawn in each replicate (G draws with replacement)."""
    chunk = max(1, _MAX_RESAMPLE_ELEMENTS // max(1, n_groups))
    probabilities = np.full(n_groups, 1.0 / n_groups)
    for start in range(0, n_boot, chunk):
        yield rng.multinomial(n_groups, probabilities, size=min(chunk, n_boot - start)).astype(np.float64)


def _ratio_replicates(
    sums: np.ndarray, sizes: np.ndarray, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Replicates of Σ c_g S_g / Σ c_g n_g (group sums S_g, group sizes n_g)."""
    return np.concatenate([(c @ sums) / (c @ sizes) for c in _group_draws(len(sizes), n_boot, rng)])


def bootstrap_distribution(values: Any, groups: Any = None, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """The ``n_boot`` cluster-bootstrap replicates of the mean of per-item values (N,) or (N, ...) (rows
    averaged first), resampling ``groups`` (one label per item; None: items)."""
    _check(n_boot, 0.05)
    arr = as_numpy(values).astype(np.float64)
    n = arr.shape[0] if arr.ndim else 0
    if n == 0:
        raise InputError("per_item_values", "need at least one item")
    flat = arr.reshape(n, -1).mean(axis=1)
    codes, n_groups = group_codes(groups, n)
    sums = np.bincount(codes, weights=flat, minlength=n_groups)
    sizes = np.bincount(codes, minlength=n_groups).astype(np.float64)
    return _ratio_replicates(sums, sizes, n_boot, np.random.default_rng(seed))


def percentile_interval(replicates: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (α/2, 1 − α/2) percentiles of the replicates."""
    low, high = np.quantile(np.asarray(replicates, dtype=np.float64), [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_ci(
    values: Any, groups: Any = None, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile cluster-bootstrap interval (low, high) at level 1 − α of the mean of per-item values, in the
    values' units (per-item 0/100 correctness → %)."""
    _check(n_boot, alpha)
    return percentile_interval(bootstrap_distribution(values, groups, n_boot=n_boot, seed=seed), alpha)


def metric_entry(
    value: float,
    n: int,
    *,
    ci95: tuple[float, float] | list[float] | None = None,
    std: float | None = None,
) -> dict[str, Any]:
    """A results-file metric entry ``{"value", "ci95", "n", "std"}`` with plain Python floats."""
    return {
        "value": float(value),
        "ci95": None if ci95 is None else [float(ci95[0]), float(ci95[1])],
        "n": int(n),
        "std": None if std is None else float(std),
    }


def mean_with_ci(
    per_item_values: Any,
    *,
    scale: float = 1.0,
    groups: Any = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Metric entry for the mean of per-item values times ``scale`` (100 for 0/1 hits → %), with its cluster
    bootstrap CI; the per-item values and groups ride along under :data:`ITEMS_KEY` / :data:`GROUPS_KEY` for
    paired differences (:func:`strip_items` removes them before writing)."""
    values = (
        as_numpy(per_item_values).astype(np.float64).reshape(len(per_item_values), -1).mean(axis=1) * scale
    )
    low, high = bootstrap_ci(values, groups, n_boot=n_boot, alpha=alpha, seed=seed)
    entry = metric_entry(float(values.mean()), values.shape[0], ci95=(low, high))
    entry[ITEMS_KEY] = values
    entry[GROUPS_KEY] = None if groups is None else np.asarray(groups)
    return entry


def balanced_accuracy_with_ci(
    y_true: Any,
    correct: Any,
    *,
    groups: Any = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Balanced accuracy (%) — the mean over the classes present of each class's mean per-item correctness
    (``correct`` in [0, 1]: expected correctness under random tie-breaking) — with a stratified cluster
    bootstrap CI: within each class, that class's groups are drawn with replacement (:data:`BALANCED_METHOD`)."""
    _check(n_boot, alpha)
    truth = as_numpy(y_true).astype(np.int64)
    hits = as_numpy(correct).astype(np.float64)
    if truth.shape != hits.shape or truth.size == 0:
        raise InputError(
            "y_true/correct", f"need equal, non-empty shapes, got {truth.shape} and {hits.shape}"
        )
    codes, _ = group_codes(groups, truth.size)
    rng = np.random.default_rng(seed)
    classes = np.unique(truth)
    recalls = np.empty((len(classes), n_boot))
    point = []
    for i, label in enumerate(classes):
        members = truth == label
        class_codes, n_groups = group_codes(codes[members], int(members.sum()))
        sums = np.bincount(class_codes, weights=hits[members], minlength=n_groups)
        sizes = np.bincount(class_codes, minlength=n_groups).astype(np.float64)
        recalls[i] = _ratio_replicates(sums, sizes, n_boot, rng)
        point.append(hits[members].mean())
    replicates = 100.0 * recalls.mean(axis=0)
    return metric_entry(
        100.0 * float(np.mean(point)), truth.size, ci95=percentile_interval(replicates, alpha)
    )


def paired_difference(
    method_entry: dict[str, Any],
    baseline_values: Any,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Entry for (method − baseline) of a mean metric on the same items: the cluster bootstrap of the per-item
    differences (the same replicates for both). None when the entry carries no per-item values or the item
    counts differ."""
    values = method_entry.get(ITEMS_KEY)
    if values is None:
        return None
    baseline = np.asarray(baseline_values, dtype=np.float64).reshape(-1)
    if baseline.shape != values.shape:
        return None
    difference = values - baseline
    # equal values computed along different float paths differ by ~1e-14: such a difference is 0, not a win
    difference[np.abs(difference) <= PAIRED_ZERO * np.maximum(1.0, np.abs(values))] = 0.0
    return strip_items(
        mean_with_ci(difference, groups=method_entry.get(GROUPS_KEY), n_boot=n_boot, alpha=alpha, seed=seed)
    )


def strip_items(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry without its private per-item keys (in place; returned for chaining)."""
    entry.pop(ITEMS_KEY, None)
    entry.pop(GROUPS_KEY, None)
    return entry


def seed_summary(values: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (ddof = 1; ``None`` for a single seed) of one metric over seeds."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise InputError("values", "need at least one seed's value")
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
        "n_seeds": int(arr.size),
    }
