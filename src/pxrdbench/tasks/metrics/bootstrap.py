"""Uncertainty of metrics: percentile bootstrap over test items, and mean ± std over seeds.

The bootstrap resamples test items with replacement (the statistic is recomputed on each resample) and reports
the (α/2, 1 − α/2) percentiles of the resampled statistic: the 95 % interval for α = 0.05. It is seeded and
therefore deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.classification import as_numpy

MetricFn = Callable[..., float]

_MAX_RESAMPLE_ELEMENTS = 4_000_000
"""Index-matrix elements (n_boot × N) materialised at once when bootstrapping a mean; bounds memory."""


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise InputError("n_boot", f"must be at least 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise InputError("alpha", f"must lie in (0, 1), got {alpha}")


def bootstrap_distribution(
    data: Any | tuple[MetricFn, Sequence[Any]],
    n_boot: int = 1000,
    seed: int = 0,
) -> np.ndarray:
    """The ``n_boot`` resampled values of a statistic over test items.

    ``data`` is either per-item values (N,) or (N, ...) — the statistic is their mean over items, computed
    vectorised in chunks of resamples — or a pair ``(metric_fn, arrays)``: every array is indexed along axis 0
    with the same resampled item indices and ``metric_fn(*resampled_arrays)`` gives the statistic.
    """
    _check(n_boot, 0.05)
    rng = np.random.default_rng(seed)
    if isinstance(data, tuple) and len(data) == 2 and callable(data[0]):
        metric_fn, arrays = data
        arrs = [as_numpy(a) for a in arrays]
        n = arrs[0].shape[0] if arrs else 0
        if n == 0 or any(a.shape[0] != n for a in arrs):
            raise InputError("arrays", "need one or more arrays with the same, non-zero number of items")
        stats = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, n, size=n)
            stats[b] = float(metric_fn(*(a[idx] for a in arrs)))
        return stats
    values = as_numpy(data).astype(np.float64)
    n = values.shape[0] if values.ndim else 0
    if n == 0:
        raise InputError("per_item_values", "need at least one item")
    flat = values.reshape(n, -1).mean(axis=1)
    chunk = max(1, _MAX_RESAMPLE_ELEMENTS // n)
    stats = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        stats[start:stop] = flat[idx].mean(axis=1)
    return stats


def bootstrap_ci(
    data: Any | tuple[MetricFn, Sequence[Any]],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval (low, high) at level 1 − α of a statistic over test items.

    ``data``: per-item values (statistic = their mean) or ``(metric_fn, arrays)``; see
    :func:`bootstrap_distribution`. Units are those of the statistic (e.g. per-item 0/100 correctness → %).
    """
    _check(n_boot, alpha)
    stats = bootstrap_distribution(data, n_boot=n_boot, seed=seed)
    low, high = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


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
    per_item_values: Any, *, scale: float = 1.0, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """Metric entry for the mean of per-item values times ``scale`` (100 for 0/1 hits → %), with its CI."""
    values = as_numpy(per_item_values).astype(np.float64) * scale
    low, high = bootstrap_ci(values, n_boot=n_boot, alpha=alpha, seed=seed)
    return metric_entry(float(values.mean()), values.shape[0], ci95=(low, high))


def fn_with_ci(
    metric_fn: MetricFn, arrays: Sequence[Any], *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, Any]:
    """Metric entry for ``metric_fn(*arrays)`` on all items, with the bootstrap CI of the same function."""
    value = float(metric_fn(*arrays))
    low, high = bootstrap_ci((metric_fn, arrays), n_boot=n_boot, alpha=alpha, seed=seed)
    return metric_entry(value, as_numpy(arrays[0]).shape[0], ci95=(low, high))


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
