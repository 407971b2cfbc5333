"""Metric and task declarations for the results validator and the leaderboard: each metric's direction, unit and
precision, and each task's declaration (:class:`TaskSpec`, read from the task registry).

Every metric's direction (higher or lower is better, or informational) is declared ONCE here, in
:data:`METRICS`; the results validator and the leaderboard read it from here and nowhere else.

Metric keys in a results file may carry qualifiers in front of the base name, separated by ``/``:
``"prescreen/top1"`` (retrieval with the element pre-screen), ``"fwhm_0.5/crystal_system/accuracy"``
(a robustness set), ``"per_class/cubic/accuracy"``. The last component is always a base metric declared in
:data:`METRICS`, and it alone decides the direction and the unit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from typing import Literal

from pxrdbench.errors import did_you_mean
from pxrdbench.tasks import registry as _registry
from pxrdbench.tasks.base import TaskSpec

__all__ = [
    "INFORMATIONAL_QUALIFIERS",
    "MAX_REPORTED_HOP",
    "METRICS",
    "TASKS",
    "Direction",
    "MetricSpec",
    "TaskSpec",
    "PAIRED_BASELINES",
    "base_metric",
    "paired_parts",
    "get_task",
    "headline_keys",
    "metric_direction",
    "metric_spec",
    "sort_metric_keys",
    "task_has_metric",
]

Direction = Literal["higher", "lower"] | None

MAX_REPORTED_HOP = 9
"""Hop-distance shares are reported as ``hop_share_0`` … ``hop_share_9`` (the t+k graph has diameter 6)."""


@dataclass(frozen=True)
class MetricSpec:
    """One base metric: its direction (``None`` = informational, never ranked), unit and display precision."""

    name: str
    direction: Direction
    unit: str
    description: str
    decimals: int = 2


def _specs(*items: MetricSpec) -> dict[str, MetricSpec]:
    return {m.name: m for m in items}


METRICS: dict[str, MetricSpec] = _specs(
    MetricSpec("accuracy", "higher", "%", "share of test items predicted correctly (top-1)"),
    MetricSpec(
        "balanced_accuracy", "higher", "%", "mean per-class recall over classes present in the labels"
    ),
    MetricSpec(
        "top1_accuracy", "higher", "%", "top-1 from class scores (equals accuracy; ties go to argmax)"
    ),
    MetricSpec("top3_accuracy", "higher", "%", "share of items whose label is among the 3 most probable"),
    MetricSpec("top5_accuracy", "higher", "%", "share of items whose label is among the 5 most probable"),
    MetricSpec(
        "within_1_edge", "higher", "%", "share of SG predictions at most one subgroup-graph edge away"
    ),
    MetricSpec("mean_hop", "lower", "edges", "mean subgroup-graph hop distance of SG predictions", 3),
    *(
        MetricSpec(f"hop_share_{h}", None, "%", f"share of SG predictions exactly {h} edges from the truth")
        for h in range(MAX_REPORTED_HOP + 1)
    ),
    MetricSpec("length_mae", "lower", "Å", "mean absolute error of a, b, c pooled", 3),
    MetricSpec("length_mape", "lower", "%", "mean absolute percentage error of a, b, c pooled"),
    MetricSpec("length_r2", "higher", "", "coefficient of determination of a, b, c pooled", 4),
    MetricSpec("angle_mae", "lower", "°", "mean absolute error of α, β, γ pooled", 3),
    MetricSpec("angle_mape", "lower", "%", "mean absolute percentage error of α, β, γ pooled"),
    MetricSpec("angle_r2", "higher", "", "coefficient of determination of α, β, γ pooled", 4),
    *(
        MetricSpec(f"{p}_mae", "lower", "°" if p in ("alpha", "beta", "gamma") else "Å", f"MAE of {p}", 3)
        for p in ("a", "b", "c", "alpha", "beta", "gamma")
    ),
    *(
        MetricSpec(f"top{k}", "higher", "%", f"share of queries with the true structure in the top {k}")
        for k in (1, 3, 5, 10)
    ),
    MetricSpec("mean_rank", "lower", "", "mean 1-based rank of the true candidate"),
    MetricSpec("median_rank", "lower", "", "median 1-based rank of the true candidate", 1),
    MetricSpec("rank", "lower", "", "1-based rank of the true structure for this one query", 0),
    MetricSpec("mean_top1_similarity", None, "", "mean cosine similarity of the top-1 candidate", 4),
    MetricSpec("mean_confidence", None, "", "mean XCCP confidence 1/(1+exp(-(s1-0.85)/0.025))", 4),
    MetricSpec("low_confidence_share", None, "%", "share of queries whose top-1 confidence is below 0.5"),
    MetricSpec(
        "median", None, "", "median of a per-item quantity (e.g. the highest cosine similarity to train)", 4
    ),
    MetricSpec("share_above_threshold", None, "%", "share of items at or above the stated threshold"),
    MetricSpec("threshold", None, "", "the threshold a share or subset is defined by", 2),
    MetricSpec("count", None, "", "items in a histogram bin", 0),
    MetricSpec("parameters", None, "", "trainable parameters", 0),
    MetricSpec("train_time_s", "lower", "s", "wall-clock training time", 1),
    MetricSpec("train_patterns_per_s", "higher", "1/s", "training throughput", 1),
    MetricSpec("inference_latency_ms", "lower", "ms", "median inference latency at batch size 1", 3),
    MetricSpec(
        "inference_throughput_per_s",
        "higher",
        "1/s",
        "inference throughput (batch 64 in files before evaluation version 2; the best batch since)",
        1,
    ),
    MetricSpec("latency_ms_batch1", "lower", "ms", "median inference latency per pattern at batch size 1", 3),
    MetricSpec("throughput_batch1", "higher", "1/s", "inference throughput at batch size 1", 1),
    MetricSpec(
        "throughput_best", "higher", "1/s", "inference throughput at the best batch size (best_batch)", 1
    ),
    MetricSpec("best_batch", None, "", "the batch size of throughput_best (ladder 1, 8, 32, 64, 256)", 0),
)

TASKS: dict[str, TaskSpec] = {task.name: task.spec for task in _registry.TASKS}
"""Every task's declaration, by name, in registry order (declared in the task modules, :mod:`pxrdbench.tasks.
registry`)."""


def get_task(name: str) -> TaskSpec:
    """Return the task spec called ``name``; unknown names raise ConfigError with close matches."""
    try:
        return TASKS[name]
    except KeyError:
        raise did_you_mean(name, tuple(TASKS), "task") from None


def base_metric(key: str) -> str:
    """The base metric of a (possibly qualified) metric key: the part after the last ``/`` (for a paired
    difference ``<metric>/vs_<baseline>``, the compared metric's)."""
    paired = paired_parts(key)
    return (paired[0] if paired else key).rsplit("/", 1)[-1]


INFORMATIONAL_QUALIFIERS = frozenset({"element_random", "uniform_random"})
"""Qualifiers whose metrics describe the candidate pool, not the method (the exact expectations of random
rankings): their keys are informational, never ranked, whatever the base metric's direction."""

PAIRED_BASELINES: tuple[str, ...] = ("chance", "majority", "pattern_nn", "element_random")
"""Baselines a headline metric is compared with on the same test items: ``<metric>/vs_<baseline>`` holds the
method's value minus the baseline's, with its cluster-bootstrap interval (see :mod:`pxrdbench.tasks.paired`)."""


def paired_parts(key: str) -> tuple[str, str] | None:
    """``("crystal_system/accuracy"-like metric key, baseline)`` for a paired-difference key
    ``"<metric key>/vs_<baseline>"``, else None."""
    head, _, last = key.rpartition("/")
    if head and last.startswith("vs_") and last[3:] in PAIRED_BASELINES:
        return head, last[3:]
    return None


def metric_spec(key: str) -> MetricSpec:
    """The declared spec of the base metric of ``key`` (direction None under an informational qualifier);
    unknown base names raise ConfigError."""
    base = base_metric(key)
    try:
        spec = METRICS[base]
    except KeyError:
        raise did_you_mean(base, tuple(METRICS), f"metric (in key {key!r})") from None
    if INFORMATIONAL_QUALIFIERS.intersection(key.split("/")[:-1]) or paired_parts(key):
        return replace(spec, direction=None)
    return spec


def metric_direction(key: str) -> Direction:
    """``"higher"``, ``"lower"`` or ``None`` (informational) for a metric key, from :data:`METRICS`."""
    return metric_spec(key).direction


def task_has_metric(task: str, key: str) -> bool:
    """True when ``key`` (or, for a paired difference, the compared metric) matches one of the metric patterns
    task ``task`` declares."""
    paired = paired_parts(key)
    key = paired[0] if paired else key
    return any(fnmatchcase(key, pattern) for pattern in get_task(task).metrics)


def headline_keys(task: str, present: set[str] | list[str]) -> list[str]:
    """The overview metric keys of ``task`` among ``present`` keys, in declared order then sorted."""
    keys: list[str] = []
    for pattern in get_task(task).headline:
        for key in sorted(present):
            if fnmatchcase(key, pattern) and key not in keys:
                keys.append(key)
        if not any(ch in pattern for ch in "*?[") and pattern not in keys:
            keys.append(pattern)
    return keys


def sort_metric_keys(task: str, keys: set[str] | list[str]) -> list[str]:
    """Sort metric keys by the task's declared pattern order, then alphabetically (deterministic)."""
    patterns = get_task(task).metrics

    def order(key: str) -> tuple[int, str]:
        rank = next((i for i, p in enumerate(patterns) if fnmatchcase(key, p)), len(patterns))
        return rank, key

    return sorted(set(keys), key=order)
