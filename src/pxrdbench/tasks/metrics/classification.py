"""Classification metrics: accuracy, balanced, per-class and top-k accuracy, subgroup-graph hop errors.

All rates are percentages (0–100). Items whose true label is −1 (unknown) are ignored everywhere. Inputs may
be numpy arrays or torch tensors; nothing is modified in place.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pxrdbench.errors import InputError
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS  # noqa: F401 (re-exported: class names in label order)

TOP_KS: tuple[int, ...] = (1, 3, 5)


def as_numpy(x: Any) -> np.ndarray:
    """A numpy view/copy of a numpy array, torch tensor (any device) or sequence."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _labels(y: Any, name: str) -> np.ndarray:
    arr = as_numpy(y)
    if arr.ndim != 1:
        raise InputError(name, f"expected a 1-D label array, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer) and not np.all(np.mod(arr, 1) == 0):
        raise InputError(name, "labels must be integers")
    return arr.astype(np.int64)


def per_item_correct(y_true: Any, y_pred_or_probs: Any) -> np.ndarray:
    """0/1 correctness per item (labels −1 dropped), e.g. for the bootstrap in ``evaluation.bootstrap``.

    Scores (N, C) are reduced by argmax first.
    """
    truth = _labels(y_true, "y_true")
    pred = as_numpy(y_pred_or_probs)
    pred = pred.argmax(axis=1) if pred.ndim == 2 else pred.astype(np.int64)
    keep = truth >= 0
    return (pred[keep] == truth[keep]).astype(np.float64)


def _recall_per_class(
    truth: np.ndarray, pred: np.ndarray, minlength: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(counts per class, recall of the classes present in ``truth``); labels −1 must be dropped already."""
    counts = np.bincount(truth, minlength=minlength)
    hits = np.bincount(truth, weights=(pred == truth).astype(np.float64), minlength=minlength)
    present = np.flatnonzero(counts)
    return counts, hits[present] / counts[present]


def balanced_accuracy(y_true: Any, y_pred: Any) -> float:
    """Mean per-class recall (%) over the classes present in ``y_true`` (labels −1 ignored); predicted labels."""
    truth = _labels(y_true, "y_true")
    pred = _labels(y_pred, "y_pred")
    keep = truth >= 0
    if not keep.any():
        raise InputError("y_true", "no item has a known label (all are -1 or the array is empty)")
    return 100.0 * float(_recall_per_class(truth[keep], pred[keep])[1].mean())


def classification_metrics(
    y_true: Any,
    y_pred_or_probs: Any,
    num_classes: int,
    *,
    class_names: list[str] | tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class accuracy and (given scores) top-k accuracy, all in %.

    Args:
        y_true: integer labels in [0, num_classes) of shape (N,); −1 marks an unknown label (ignored).
        y_pred_or_probs: predicted labels (N,) or class scores (N, num_classes) (probabilities or logits;
            only their order matters). With scores, top-k accuracy is reported for k = 1, 3, 5
            (k < num_classes).
        num_classes: number of classes.
        class_names: names for the per-class keys (default: the class index as a string); for crystal systems
            pass :data:`CRYSTAL_SYSTEMS`.

    Returns:
        ``accuracy`` (%), ``balanced_accuracy`` (mean recall over classes present in y_true, %),
        ``per_class_accuracy`` {name: %} and ``per_class_count`` {name: n} for classes present in y_true,
        ``top{k}_accuracy`` (%) when scores are given, and ``n`` (items used).
    """
    truth = _labels(y_true, "y_true")
    scores = as_numpy(y_pred_or_probs)
    if scores.shape[0] != truth.shape[0]:
        raise InputError("y_pred_or_probs", f"has {scores.shape[0]} rows but y_true has {truth.shape[0]}")
    if scores.ndim == 2 and scores.shape[1] != num_classes:
        raise InputError("y_pred_or_probs", f"has {scores.shape[1]} score columns, expected {num_classes}")
    if scores.ndim not in (1, 2):
        raise InputError("y_pred_or_probs", f"expected shape (N,) or (N, C), got {scores.shape}")
    if class_names is not None and len(class_names) != num_classes:
        raise InputError("class_names", f"has {len(class_names)} names for {num_classes} classes")
    if np.any(truth >= num_classes) or np.any(truth < -1):
        raise InputError("y_true", f"labels must lie in [0, {num_classes}) or be -1")

    keep = truth >= 0
    truth = truth[keep]
    scores = scores[keep]
    pred = scores.argmax(axis=1) if scores.ndim == 2 else scores.astype(np.int64)
    n = int(truth.size)
    if n == 0:
        raise InputError("y_true", "no item has a known label (all are -1 or the array is empty)")

    correct = pred == truth
    counts, recall = _recall_per_class(truth, pred, num_classes)
    present = np.flatnonzero(counts)
    names = [class_names[i] if class_names is not None else str(i) for i in range(num_classes)]

    out: dict[str, Any] = {
        "accuracy": 100.0 * float(correct.mean()),
        "balanced_accuracy": balanced_accuracy(truth, pred),
        "per_class_accuracy": {names[c]: 100.0 * float(r) for c, r in zip(present, recall, strict=True)},
        "per_class_count": {names[c]: int(counts[c]) for c in present},
        "n": n,
    }
    if scores.ndim == 2:
        # Stable descending order: ties go to the lower class index as in argmax, so top1 == accuracy.
        order = np.argsort(-scores, axis=1, kind="stable")
        for k in TOP_KS:
            if k < num_classes or k == 1:
                hit = (order[:, :k] == truth[:, None]).any(axis=1)
                out[f"top{k}_accuracy"] = 100.0 * float(hit.mean())
    return out


def space_group_error_hops(y_true_sg: Any, y_pred_sg: Any, hop_matrix: np.ndarray) -> dict[str, Any]:
    """Subgroup-graph hop distance between predicted and true space groups.

    ``hop_matrix[i, j]`` is the number of edges between space groups i+1 and j+1 in the (undirected)
    maximal-subgroup graph; a negative or non-finite entry means unreachable. Space-group numbers are 1-based
    (1–230); a true label ≤ 0 is ignored.

    Returns:
        ``hop_counts`` (list, index = hop distance), ``hop_share`` (list, % of reachable predictions),
        ``within_1_edge`` (% of all predictions with hop ≤ 1, i.e. correct or one edge away), ``mean_hop``
        (edges, over reachable predictions), ``unreachable`` (count) and ``n``.
    """
    truth = _labels(y_true_sg, "y_true_sg")
    pred = _labels(y_pred_sg, "y_pred_sg")
    hops_table = np.asarray(hop_matrix, dtype=np.float64)
    if hops_table.ndim != 2 or hops_table.shape[0] != hops_table.shape[1]:
        raise InputError("hop_matrix", f"expected a square matrix, got shape {hops_table.shape}")
    if pred.shape != truth.shape:
        raise InputError("y_pred_sg", f"has shape {pred.shape} but y_true_sg has {truth.shape}")
    keep = truth > 0
    truth, pred = truth[keep], pred[keep]
    size = hops_table.shape[0]
    for name, arr in (("y_true_sg", truth), ("y_pred_sg", pred)):
        if arr.size and (arr.min() < 1 or arr.max() > size):
            raise InputError(name, f"space-group numbers must lie in 1..{size}")
    n = int(truth.size)
    if n == 0:
        raise InputError("y_true_sg", "no item has a known space group")

    hops = hops_table[truth - 1, pred - 1]
    reachable = np.isfinite(hops) & (hops >= 0)
    hop_int = hops[reachable].astype(np.int64)
    counts = np.bincount(hop_int, minlength=1) if hop_int.size else np.zeros(1, dtype=np.int64)
    n_reach = int(reachable.sum())
    return {
        "hop_counts": [int(c) for c in counts],
        "hop_share": [100.0 * float(c) / n_reach if n_reach else 0.0 for c in counts],
        "within_1_edge": 100.0 * float((hop_int <= 1).sum()) / n,
        "mean_hop": float(hop_int.mean()) if n_reach else float("nan"),
        "unreachable": n - n_reach,
        "n": n,
    }
