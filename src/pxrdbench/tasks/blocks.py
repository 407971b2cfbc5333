"""Results-file metric blocks from predictions (classification, lattice, retrieval ranks), each returning
``{metric_key: {"value", "ci95", "n", "std"}}`` with 95 % cluster-bootstrap intervals over test groups
(:mod:`pxrdbench.tasks.metrics.bootstrap`); entries of mean metrics also carry their per-item values (private
keys, stripped before writing) for paired differences against baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.bootstrap import (
    GROUPS_KEY,
    ITEMS_KEY,
    balanced_accuracy_with_ci,
    mean_with_ci,
    metric_entry,
)
from pxrdbench.tasks.metrics.classification import (
    classification_metrics,
    expected_topk_correct,
    space_group_error_hops,
)
from pxrdbench.tasks.metrics.lattice import lattice_abs_errors, lattice_metrics
from pxrdbench.tasks.metrics.retrieval import retrieval_per_query

TOP_KS = (1, 3, 5, 10)
"""The k of the retrieval hit rates ``top{k}``."""


def tied_top(scores: np.ndarray) -> np.ndarray:
    """Bool[N, C]: the classes tied at each item's top score (within the classification tie tolerance)."""
    from pxrdbench.tasks.metrics.classification import TIE_TOLERANCE

    scores = np.asarray(scores, dtype=np.float64)
    return scores >= scores.max(axis=1, keepdims=True) - TIE_TOLERANCE


def classification_block(
    y_true: np.ndarray,
    proba: np.ndarray,
    num_classes: int,
    *,
    n_boot: int,
    class_names: tuple[str, ...] | None = None,
    hop_matrix: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Accuracy and balanced accuracy with CIs, top-k, per-class accuracy; space-group hop statistics if given.

    Every rate is tie-aware (ties among class scores broken uniformly at random, in expectation). ``groups``:
    the items' split groups, resampled by the cluster bootstrap (None: items)."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    keep = y_true >= 0
    y_true, proba = y_true[keep], proba[keep]
    groups = None if groups is None else np.asarray(groups)[keep]
    n = len(y_true)
    if n == 0:
        return {}
    correct = expected_topk_correct(y_true, proba, 1)
    out: dict[str, dict[str, Any]] = {
        "accuracy": mean_with_ci(correct, scale=100.0, groups=groups, n_boot=n_boot),
        "balanced_accuracy": balanced_accuracy_with_ci(y_true, correct, groups=groups, n_boot=n_boot),
    }
    summary = classification_metrics(y_true, proba, num_classes, class_names=class_names)
    for k in (3, 5):
        key = f"top{k}_accuracy"
        if key in summary and k < num_classes:
            out[key] = metric_entry(summary[key], n)
    counts = summary.get("per_class_count", {})
    for name, acc in summary.get("per_class_accuracy", {}).items():
        if acc is not None and not (isinstance(acc, float) and np.isnan(acc)):
            out[f"per_class/{name}/accuracy"] = metric_entry(acc, int(counts.get(name, 0)))
    if hop_matrix is not None:
        y_pred = proba.argmax(axis=1)
        hops = space_group_error_hops(y_true + 1, y_pred + 1, hop_matrix)
        table = np.asarray(hop_matrix, dtype=np.float64)[y_true]
        near = np.isfinite(table) & (table >= 0) & (table <= 1)
        tied = tied_top(proba)
        within = (tied & near).sum(axis=1) / tied.sum(axis=1)
        out["within_1_edge"] = mean_with_ci(within, scale=100.0, groups=groups, n_boot=n_boot)
        out["mean_hop"] = metric_entry(hops["mean_hop"], n)
        for h, share in enumerate(hops["hop_share"]):
            out[f"hop_share_{h}"] = metric_entry(share, n)
    return out


def lattice_block(
    true: np.ndarray, pred: np.ndarray, *, n_boot: int, groups: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """Length/angle MAE (with cluster-bootstrap CIs over ``groups``), MAPE, R² and per-parameter MAE on Niggli
    cells."""
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    summary = lattice_metrics(true, pred)
    n = int(summary["n"])
    errors = lattice_abs_errors(true, pred)
    if groups is not None:
        known = np.isfinite(true).all(axis=1)  # the rows lattice_abs_errors keeps
        groups = np.asarray(groups)[known] if len(groups) == len(true) else groups
        if len(groups) != len(errors):
            raise InputError("groups", f"{len(groups)} groups for {len(errors)} items with a known lattice")
    out = {
        "length_mae": mean_with_ci(errors[:, :3].mean(axis=1), groups=groups, n_boot=n_boot),
        "angle_mae": mean_with_ci(errors[:, 3:].mean(axis=1), groups=groups, n_boot=n_boot),
    }
    for key, value in summary.items():
        if key in ("n", "length_mae", "angle_mae"):
            continue
        if value is not None and np.isfinite(value):
            out[key] = metric_entry(value, n)
    return out


def rank_block(
    ranks: Any, prefix: str = "", *, n_boot: int, groups: np.ndarray | None = None
) -> dict[str, dict[str, Any]]:
    """``{prefix}top{k}`` (%) and ``{prefix}mean_rank`` with cluster-bootstrap CIs over query ``groups``,
    ``{prefix}median_rank``; tie-aware when ``ranks`` is a :class:`~pxrdbench.tasks.metrics.retrieval.RankCounts`."""
    per_query = retrieval_per_query(ranks, TOP_KS)
    out = {
        f"{prefix}{key}": mean_with_ci(values, groups=groups, n_boot=n_boot)
        for key, values in per_query.items()
    }
    out[f"{prefix}median_rank"] = metric_entry(
        float(np.median(per_query["mean_rank"])), len(per_query["mean_rank"])
    )
    return out


def random_block(
    per_query: dict[str, np.ndarray], prefix: str, *, groups: Any = None
) -> dict[str, dict[str, Any]]:
    """``{prefix}top{k}`` / ``{prefix}mean_rank`` of an analytic random baseline (per-query expectations): the
    exact values, no interval; per-query values kept for paired differences."""
    out = {}
    for key, values in per_query.items():
        entry = metric_entry(float(np.mean(values)), len(values))
        entry[ITEMS_KEY] = np.asarray(values, dtype=np.float64)
        entry[GROUPS_KEY] = groups
        out[f"{prefix}{key}"] = entry
    return out


def prefixed(prefix: str, block: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same metrics under ``prefix/``."""
    return {f"{prefix}/{k}": v for k, v in block.items()}
