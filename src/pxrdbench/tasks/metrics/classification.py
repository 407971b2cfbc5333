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


TIE_TOLERANCE = 1e-7
"""Class scores within this of each other (absolute, in the scores' units) are tied."""


def expected_topk_correct(y_true: Any, scores: Any, k: int = 1) -> np.ndarray:
    """Per item, the probability that the true class is among the first ``k`` after sorting the scores with
    ties broken uniformly at random (float64[N] in [0, 1]; no item is dropped here).

    With h classes scoring strictly above the true one and t others tied with it (within :data:`TIE_TOLERANCE`),
    P = clip((k − h) / (t + 1), 0, 1): the true class takes each of the t + 1 tied places equally often. Ties
    therefore never favour the truth: uniform scores give exactly k/C.
    """
    truth = _labels(y_true, "y_true")
    s = as_numpy(scores).astype(np.float64)
    if s.ndim != 2 or s.shape[0] != truth.shape[0]:
        raise InputError("scores", f"expected shape ({truth.shape[0]}, C), got {s.shape}")
    if truth.size and (truth.min() < 0 or truth.max() >= s.shape[1]):
        raise InputError("y_true", f"labels must lie in [0, {s.shape[1]})")
    true_score = s[np.arange(truth.size), truth][:, None]
    higher = (s > true_score + TIE_TOLERANCE).sum(axis=1)
    tied = (np.abs(s - true_score) <= TIE_TOLERANCE).sum(axis=1) - 1
    return np.clip((k - higher) / (tied + 1.0), 0.0, 1.0)


def per_item_correct(y_true: Any, y_pred_or_probs: Any) -> np.ndarray:
    """Correctness per item in [0, 1] (labels −1 dropped): 0/1 for predicted labels; for scores (N, C) the
    probability that the true class is the top-1 under random tie-breaking (:func:`expected_topk_correct`)."""
    truth = _labels(y_true, "y_true")
    pred = as_numpy(y_pred_or_probs)
    keep = truth >= 0
    if pred.ndim == 2:
        return expected_topk_correct(truth[keep], pred[keep], 1)
    return (pred.astype(np.int64)[keep] == truth[keep]).astype(np.float64)


def _recall_per_class(
    truth: np.ndarray, correct: np.ndarray, minlength: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(counts per class, mean correctness of the classes present in ``truth``); labels −1 dropped already."""
    counts = np.bincount(truth, minlength=minlength)
    hits = np.bincount(truth, weights=correct.astype(np.float64), minlength=minlength)
    present = np.flatnonzero(counts)
    return counts, hits[present] / counts[present]


def balanced_accuracy(y_true: Any, y_pred_or_probs: Any) -> float:
    """Mean per-class recall (%) over the classes present in ``y_true`` (labels −1 ignored), from predicted
    labels or from scores (tie-aware, see :func:`per_item_correct`)."""
    truth = _labels(y_true, "y_true")
    keep = truth >= 0
    if not keep.any():
        raise InputError("y_true", "no item has a known label (all are -1 or the array is empty)")
    correct = per_item_correct(truth, y_pred_or_probs)
    return 100.0 * float(_recall_per_class(truth[keep], correct)[1].mean())


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
            (k < num_classes); ties among scores are broken uniformly at random in expectation
            (:func:`expected_topk_correct`), so uniform scores give exactly k/C.
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

    correct = (
        expected_topk_correct(truth, scores, 1) if scores.ndim == 2 else (pred == truth).astype(np.float64)
    )
    counts, recall = _recall_per_class(truth, correct, num_classes)
    present = np.flatnonzero(counts)
    names = [class_names[i] if class_names is not None else str(i) for i in range(num_classes)]

    out: dict[str, Any] = {
        "accuracy": 100.0 * float(correct.mean()),
        "balanced_accuracy": 100.0 * float(recall.mean()),
        "per_class_accuracy": {names[c]: 100.0 * float(r) for c, r in zip(present, recall, strict=True)},
        "per_class_count": {names[c]: int(counts[c]) for c in present},
        "n": n,
    }
    if scores.ndim == 2:
        for k in TOP_KS:
            if k < num_classes or k == 1:
                out[f"top{k}_accuracy"] = 100.0 * float(expected_topk_correct(truth, scores, k).mean())
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
