"""Results-file metric blocks from predictions (classification, lattice, retrieval ranks), each returning
``{metric_key: {"value", "ci95", "n", "std"}}`` with 95 % bootstrap intervals over test items."""

from __future__ import annotations

from typing import Any

import numpy as np

from pxrdbench.tasks.metrics.bootstrap import bootstrap_ci, fn_with_ci, mean_with_ci, metric_entry
from pxrdbench.tasks.metrics.classification import (
    balanced_accuracy,
    classification_metrics,
    per_item_correct,
    space_group_error_hops,
)
from pxrdbench.tasks.metrics.lattice import lattice_abs_errors, lattice_metrics
from pxrdbench.tasks.metrics.retrieval import retrieval_metrics, retrieval_per_query

TOP_KS = (1, 3, 5, 10)
"""The k of the retrieval hit rates ``top{k}``."""


def classification_block(
    y_true: np.ndarray,
    proba: np.ndarray,
    num_classes: int,
    *,
    n_boot: int,
    class_names: tuple[str, ...] | None = None,
    hop_matrix: np.ndarray | None = None,
) -> dict[str, dict[str, Any]]:
    """Accuracy and balanced accuracy with CIs, top-k, per-class accuracy; space-group hop statistics if given."""
    y_true = np.asarray(y_true)
    proba = np.asarray(proba)
    keep = y_true >= 0
    y_true, proba = y_true[keep], proba[keep]
    n = len(y_true)
    if n == 0:
        return {}
    y_pred = proba.argmax(axis=1)
    out: dict[str, dict[str, Any]] = {
        "accuracy": mean_with_ci(per_item_correct(y_true, y_pred), scale=100.0, n_boot=n_boot),
        "balanced_accuracy": fn_with_ci(balanced_accuracy, [y_true, y_pred], n_boot=n_boot),
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
        hops = space_group_error_hops(y_true + 1, y_pred + 1, hop_matrix)
        out["within_1_edge"] = metric_entry(hops["within_1_edge"], n)
        out["mean_hop"] = metric_entry(hops["mean_hop"], n)
        for h, share in enumerate(hops["hop_share"]):
            out[f"hop_share_{h}"] = metric_entry(share, n)
    return out


def lattice_block(true: np.ndarray, pred: np.ndarray, *, n_boot: int) -> dict[str, dict[str, Any]]:
    """Length/angle MAE (with CIs), MAPE, R² and per-parameter MAE on Niggli cells."""
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    summary = lattice_metrics(true, pred)
    n = int(summary["n"])
    errors = lattice_abs_errors(true, pred)
    out = {
        "length_mae": mean_with_ci(errors[:, :3].mean(axis=1), n_boot=n_boot),
        "angle_mae": mean_with_ci(errors[:, 3:].mean(axis=1), n_boot=n_boot),
    }
    for key, value in summary.items():
        if key in ("n", "length_mae", "angle_mae"):
            continue
        if value is not None and np.isfinite(value):
            out[key] = metric_entry(value, n)
    return out


def rank_block(ranks: Any, prefix: str = "", *, n_boot: int) -> dict[str, dict[str, Any]]:
    """``{prefix}top{k}`` (%) and ``{prefix}mean_rank`` with bootstrap CIs over queries, ``{prefix}median_rank``."""
    summary = retrieval_metrics(ranks, TOP_KS)
    n = int(summary["n"])
    out = {
        f"{prefix}{key}": metric_entry(summary[key], n, ci95=bootstrap_ci(values, n_boot=n_boot))
        for key, values in retrieval_per_query(ranks, TOP_KS).items()
    }
    out[f"{prefix}median_rank"] = metric_entry(summary["median_rank"], n)
    return out


def prefixed(prefix: str, block: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The same metrics under ``prefix/``."""
    return {f"{prefix}/{k}": v for k, v in block.items()}
