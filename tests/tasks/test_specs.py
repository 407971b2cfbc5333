"""The task registry: directions declared once, qualified keys, and agreement with the metric functions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pxrdbench.errors import ConfigError
from pxrdbench.tasks.metrics.classification import classification_metrics, space_group_error_hops
from pxrdbench.tasks.metrics.confidence import open_set_test
from pxrdbench.tasks.metrics.lattice import lattice_metrics
from pxrdbench.tasks.metrics.pools import element_random_baseline
from pxrdbench.tasks.metrics.retrieval import retrieval_metrics
from pxrdbench.tasks.specs import (
    METRICS,
    TASKS,
    get_task,
    headline_keys,
    metric_direction,
    sort_metric_keys,
    task_has_metric,
)

REQUIRED_TASKS = {
    "crystal_system",
    "extinction_group",
    "space_group",
    "lattice",
    "retrieval",
    "robustness",
    "experimental_rruff908",
    "efficiency",
}


def test_registry_has_the_benchmark_tasks_and_declared_headlines() -> None:
    assert set(TASKS) >= REQUIRED_TASKS
    for name, task in TASKS.items():
        assert task.inputs and task.metrics and task.headline, name
        for pattern in task.headline:
            assert pattern.rsplit("/", 1)[-1] in METRICS, (name, pattern)


def test_directions_resolve_through_qualifiers() -> None:
    assert metric_direction("top1") == "higher"
    assert metric_direction("prescreen/top1") == "higher"
    assert metric_direction("mean_rank") == "lower"
    assert metric_direction("fwhm_0.5/lattice/length_mae") == "lower"
    assert metric_direction("hop_share_2") is None
    with pytest.raises(ConfigError, match="top1"):
        metric_direction("prescreen/topp1")
    with pytest.raises(ConfigError, match="retrieval"):
        get_task("retreival")


def test_task_metric_patterns_and_ordering() -> None:
    assert task_has_metric("retrieval", "prescreen/top5")
    assert task_has_metric("robustness", "noise_0.05/crystal_system/accuracy")
    assert not task_has_metric("lattice", "accuracy")
    assert headline_keys("retrieval", {"top1", "mean_rank"}) == ["top1", "prescreen/top1"]
    assert headline_keys("robustness", {"b/space_group/accuracy", "a/crystal_system/accuracy"}) == [
        "a/crystal_system/accuracy",
        "b/space_group/accuracy",
    ]
    assert sort_metric_keys("space_group", {"mean_hop", "accuracy", "hop_share_1"}) == [
        "accuracy",
        "mean_hop",
        "hop_share_1",
    ]


def test_every_key_the_metric_functions_emit_is_declared_for_its_task() -> None:
    rng = np.random.default_rng(0)
    cls = classification_metrics(rng.integers(0, 7, 50), rng.random((50, 7)), 7)
    hops = space_group_error_hops([1, 2], [1, 3], np.ones((230, 230)))
    lat = lattice_metrics(rng.random((5, 6)) + 1, rng.random((5, 6)) + 1)
    ret = retrieval_metrics(np.array([1, 2, 5]))
    emb = torch.randn(4, 3)
    openset = open_set_test(emb, emb, torch.arange(4))
    sets = torch.eye(4, 100, dtype=torch.bool)
    rnd = element_random_baseline(sets, sets, [1, 1, 1, 1])
    emitted = {
        "crystal_system": [k for k in cls if k not in ("n", "per_class_accuracy", "per_class_count")],
        "space_group": [
            "within_1_edge",
            "mean_hop",
            *(f"hop_share_{h}" for h in range(len(hops["hop_share"]))),
        ],
        "lattice": [k for k in lat if k != "n"],
        "retrieval": [
            *(k for k in ret if k != "n"),
            *(k for k in openset if k != "n"),
            *(f"element_random/{k}" for k in rnd),
            "prescreen/top1",
        ],
    }
    for task, keys in emitted.items():
        for key in keys:
            assert task_has_metric(task, key), (task, key)
            metric_direction(key)  # declared


def test_element_random_baseline_is_informational_whatever_its_base_metric() -> None:
    from pxrdbench.tasks.specs import metric_spec

    assert metric_spec("top1").direction == "higher" and metric_spec("prescreen/top1").direction == "higher"
    assert metric_spec("element_random/top1").direction is None
    assert metric_spec("fullpool/element_random/top5").direction is None
    assert metric_spec("fullpool/element_random/top5").unit == "%"
