"""Classification metrics and subgroup-graph hop errors on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.classification import (
    CRYSTAL_SYSTEMS,
    classification_metrics,
    per_item_correct,
    space_group_error_hops,
)


def test_accuracy_balanced_and_per_class_ignore_unknown_labels() -> None:
    y_true = np.array([0, 0, 0, 0, 1, 1, 6, -1, -1])
    y_pred = np.array([0, 0, 0, 1, 1, 0, 6, 3, 3])
    m = classification_metrics(y_true, y_pred, 7, class_names=CRYSTAL_SYSTEMS)
    assert m["n"] == 7
    assert m["accuracy"] == pytest.approx(100 * 5 / 7)
    # recalls: triclinic 3/4, monoclinic 1/2, cubic 1/1 -> mean over the 3 present classes
    assert m["balanced_accuracy"] == pytest.approx(100 * (0.75 + 0.5 + 1.0) / 3)
    assert m["per_class_accuracy"] == pytest.approx({"triclinic": 75.0, "monoclinic": 50.0, "cubic": 100.0})
    assert m["per_class_count"] == {"triclinic": 4, "monoclinic": 2, "cubic": 1}
    assert "top3_accuracy" not in m  # labels only: no top-k


def test_topk_from_scores_breaks_ties_uniformly_at_random_in_expectation() -> None:
    probs = torch.tensor(
        [
            [0.5, 0.3, 0.2, 0.0, 0.0, 0.0],  # true 0: rank 1
            [0.5, 0.3, 0.2, 0.0, 0.0, 0.0],  # true 2: rank 3
            [0.1, 0.1, 0.1, 0.1, 0.3, 0.3],  # true 2: 2 above, tied with 3 others -> P(top-k) = (k - 2) / 4
            [0.4, 0.4, 0.2, 0.0, 0.0, 0.0],  # true 1: tied with class 0 at the top -> half right at top-1
        ]
    )
    y_true = torch.tensor([0, 2, 2, 1])
    m = classification_metrics(y_true, probs, 6)
    assert m["accuracy"] == pytest.approx(100 * 1.5 / 4)
    assert m["top1_accuracy"] == pytest.approx(m["accuracy"])
    assert m["top3_accuracy"] == pytest.approx(100 * 3.25 / 4)
    assert m["top5_accuracy"] == pytest.approx(100 * 3.75 / 4)
    assert per_item_correct(y_true, probs).tolist() == [1.0, 0.0, 0.0, 0.5]


def test_uniform_scores_score_exactly_chance_never_the_truth() -> None:
    y_true = np.array([0, 3, 6, 2, 2])
    uniform = np.full((5, 7), 1.0 / 7.0)
    m = classification_metrics(y_true, uniform, 7)
    assert m["accuracy"] == pytest.approx(100.0 / 7.0)
    assert m["balanced_accuracy"] == pytest.approx(100.0 / 7.0)
    assert m["top3_accuracy"] == pytest.approx(300.0 / 7.0)
    assert per_item_correct(y_true, np.zeros((5, 7))).tolist() == pytest.approx([1 / 7] * 5)


def test_classification_rejects_bad_inputs() -> None:
    with pytest.raises(InputError, match="y_true"):
        classification_metrics(np.array([0, 9]), np.array([0, 1]), 7)
    with pytest.raises(InputError, match="score columns"):
        classification_metrics(np.array([0, 1]), np.zeros((2, 5)), 7)
    with pytest.raises(InputError, match="no item"):
        classification_metrics(np.array([-1, -1]), np.array([0, 1]), 7)
    with pytest.raises(InputError, match="class_names"):
        classification_metrics(np.array([0]), np.array([0]), 7, class_names=["a", "b"])


def _path_graph_hops(size: int = 230) -> np.ndarray:
    idx = np.arange(size)
    return np.abs(idx[:, None] - idx[None, :]).astype(float)


def test_space_group_hops_on_a_hand_made_matrix() -> None:
    hops = _path_graph_hops()
    y_true = np.array([10, 10, 10, 10, 200, 0])  # the last one is unknown (0) and ignored
    y_pred = np.array([10, 11, 9, 13, 200, 5])
    out = space_group_error_hops(y_true, y_pred, hops)
    assert out["n"] == 5
    assert out["hop_counts"] == [2, 2, 0, 1]
    assert out["hop_share"] == pytest.approx([40.0, 40.0, 0.0, 20.0])
    assert out["within_1_edge"] == pytest.approx(80.0)
    assert out["mean_hop"] == pytest.approx((0 + 1 + 1 + 3 + 0) / 5)
    assert out["unreachable"] == 0


def test_space_group_hops_count_unreachable_pairs() -> None:
    hops = _path_graph_hops()
    hops[0, 229] = hops[229, 0] = -1  # pretend SG 1 and SG 230 are disconnected
    out = space_group_error_hops([1, 1], [230, 1], hops)
    assert out["unreachable"] == 1
    assert out["within_1_edge"] == pytest.approx(50.0)
    assert out["hop_counts"] == [1]
    with pytest.raises(InputError, match="1..230"):
        space_group_error_hops([1], [231], hops)
