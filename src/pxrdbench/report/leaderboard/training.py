"""What the leaderboard reads from a results file's ``training`` block (see docs of the results format).

A run is *kept out of the rankings* when ``training.truncated`` is true: the preset's wall-clock safety stop
ended it before its pattern (or epoch) budget, so its numbers measure the machine as much as the method. A run is
*legacy* when its file has no ``training.budget``: it was trained under the older wall-clock presets
(``preset.budget.max_time``); it is still shown, with a note, until it is re-run under the pattern budget.
Pure functions of one results object; nothing here formats tables or draws.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MISSING = "—"

CURVE_METRICS: dict[str, tuple[str, float, str]] = {
    "crystal_system": ("crystal_system_acc", 100.0, "%"),
    "space_group": ("space_group_acc", 100.0, "%"),
    "extinction_group": ("extinction_group_acc", 100.0, "%"),
    "lattice": ("lattice_length_mae", 1.0, "Å"),
    "retrieval": ("retrieval_top1", 100.0, "%"),
}
"""Task → (validation metric of ``training.curve[*].val``, scale to the shown unit, unit) of its learning curve."""
CURVE_NOTES: dict[str, str] = {
    "retrieval": "in-batch top-1 on the validation split (the other patterns of the batch are the candidates), "
    "not the benchmark's pool metric `top1`",
}
"""Task → what its curve metric is, where it differs from the task's own metric."""


def training_block(result: Mapping[str, Any]) -> Mapping[str, Any]:
    """The file's ``training`` block, ``{}`` when it has none."""
    block = result.get("training")
    return block if isinstance(block, Mapping) else {}


def is_truncated(result: Mapping[str, Any]) -> bool:
    """True when the wall-clock safety stop ended training before the budget (``training.truncated``)."""
    return bool(training_block(result).get("truncated", False))


def is_legacy(result: Mapping[str, Any]) -> bool:
    """True for a run trained under a wall-clock budget (legacy preset): its file has no ``training.budget``."""
    return not isinstance(training_block(result).get("budget"), Mapping)


def budget_kind(result: Mapping[str, Any]) -> str:
    """``"train_patterns"``, ``"epochs"``, ``"baseline"`` (from ``training.budget.kind``) or ``"wall clock
    (legacy)"``."""
    if is_legacy(result):
        return "wall clock (legacy)"
    return str(training_block(result)["budget"].get("kind", MISSING))


def budget_patterns(result: Mapping[str, Any]) -> int | None:
    """The run's pattern budget: ``budget.train_patterns``, else ``max_steps × global_batch``, else ``epochs ×
    dataset.n_train``; None when the file says none of these."""
    budget = training_block(result).get("budget")
    if not isinstance(budget, Mapping):
        return None
    if budget.get("train_patterns") is not None:
        return int(budget["train_patterns"])
    if budget.get("max_steps") is not None and budget.get("global_batch") is not None:
        return int(budget["max_steps"]) * int(budget["global_batch"])
    n_train = result.get("dataset", {}).get("n_train")
    if budget.get("epochs") is not None and n_train is not None:
        return int(round(float(budget["epochs"]) * int(n_train)))
    return None


def kept_out_reason(result: Mapping[str, Any]) -> str | None:
    """Why the run is not ranked (``"stopped by the wall-clock safety limit after N of M patterns"``), or None."""
    if not is_truncated(result):
        return None
    seen = training_block(result).get("patterns_seen")
    total = budget_patterns(result)
    done = f"{int(seen):,}" if seen is not None else "an unknown number"
    of = f" of {total:,}" if total is not None else ""
    return f"stopped by the wall-clock safety limit after {done}{of} patterns"


def _number(value: Any, fmt: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return MISSING
    return format(value, fmt)


def training_columns(result: Mapping[str, Any]) -> tuple[str, str, str]:
    """(patterns seen, epochs, wall time) as shown: ``training.patterns_seen``, ``training.epochs``,
    ``training.wall_time_s`` (else ``efficiency.train_time_s``); "—" where the file has none."""
    block = training_block(result)
    wall = block.get("wall_time_s")
    if wall is None:
        wall = result.get("efficiency", {}).get("train_time_s")
    seconds = _number(wall, ",.0f")
    return (
        _number(block.get("patterns_seen"), ",.0f"),
        _number(block.get("epochs"), ".2f"),
        seconds if seconds == MISSING else f"{seconds} s",
    )


def curve_by_stage(result: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The file's ``training.curve`` points grouped by ``stage`` (points in file order); ``{}`` when none."""
    curve = training_block(result).get("curve") or []
    stages: dict[str, list[dict[str, Any]]] = {}
    for point in curve:
        if isinstance(point, Mapping):
            stages.setdefault(str(point.get("stage", "fit")), []).append(dict(point))
    return stages
