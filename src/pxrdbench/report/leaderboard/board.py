"""The leaderboard's data model: results files grouped per (method, dataset, preset), seeds aggregated.

:class:`Board` is the aggregated view the markdown pages and figures are drawn from; :func:`load_board` reads
``results/*.json`` into one. Nothing here formats markdown (see :mod:`.markdown`); :func:`best_value` decides
which value of a column is the best by the metric's declared direction.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pxrdbench.report.leaderboard.training import (
    budget_kind,
    curve_by_stage,
    is_legacy,
    is_truncated,
    training_columns,
)
from pxrdbench.report.results import evaluation_version, load_all
from pxrdbench.tasks.metrics.bootstrap import seed_summary
from pxrdbench.tasks.specs import TASKS, get_task, metric_spec

MISSING = "—"
NOT_APPLICABLE = "n/a"
_EFFICIENCY_KEYS = get_task("efficiency").metrics


@dataclass(frozen=True)
class Cell:
    """One aggregated metric value; ``low``/``high``: CI ends (kind "ci") or mean ∓ std (kind "std")."""

    value: float
    low: float | None = None
    high: float | None = None
    kind: str = "plain"
    n_seeds: int = 1


@dataclass
class RunGroup:
    """All results files of one (method, dataset, preset), seeds aggregated."""

    method: str
    dataset: str
    preset: str
    seeds: list[int] = field(default_factory=list)
    tasks: set[str] = field(default_factory=set)
    metrics: dict[str, dict[str, Cell]] = field(default_factory=dict)
    hardware: set[str] = field(default_factory=set)
    provenance: set[tuple[str, ...]] = field(default_factory=set)
    evaluation_versions: set[int] = field(default_factory=set)
    legacy: bool = False
    """True when a file of the group was trained under a wall-clock budget (no ``training.budget``)."""
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """``training.curve`` by stage, from the file with the lowest seeds that has one (``{}`` for baselines)."""


def hardware_label(hw: dict[str, Any]) -> str:
    """A short hardware description, e.g. ``"cuda 1× NVIDIA H100"`` or ``"cpu (2 threads)"``."""
    names = sorted(set(hw["device_names"]))
    devices = f" {hw['device_count']}× {', '.join(names)}" if names and hw["device_count"] else ""
    return f"{hw['accelerator']}{devices} ({hw['num_threads']} threads)"


def _entries(result: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The file's metrics, plus the ``efficiency`` section as task "efficiency" when the file has none."""
    metrics = dict(result["metrics"])
    if "efficiency" not in metrics:
        eff = result["efficiency"]
        metrics["efficiency"] = {
            k: {"value": eff[k], "ci95": None, "n": 1, "std": None}
            for k in _EFFICIENCY_KEYS
            if eff.get(k) is not None
        }
    return metrics


def aggregate_runs(results: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], RunGroup]:
    """Group results by (method, dataset, preset); several files of one group are aggregated as mean ± std.

    A provenance tuple is (seeds, config hash, cache hash, split hash, commit, date, budget kind, patterns seen,
    epochs, wall time)."""
    groups: dict[tuple[str, str, str], RunGroup] = {}
    values: dict[tuple[str, str, str], dict[tuple[str, str], list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for res in results:
        key = (res["method"]["name"], res["dataset"]["name"], res["preset"]["name"])
        group = groups.setdefault(key, RunGroup(*key))
        group.seeds.extend(res["seeds"])
        group.tasks.update(res["method"]["tasks"])
        group.tasks.add("efficiency")
        group.hardware.add(hardware_label(res["hardware"]))
        group.evaluation_versions.add(evaluation_version(res))
        group.legacy |= is_legacy(res)
        ds = res["dataset"]
        seeds = ",".join(str(s) for s in res["seeds"])
        commit = res["git_commit"] + (" (dirty)" if res.get("git_dirty") else "")
        group.provenance.add(
            (seeds, res["method"]["config_hash"], ds["cache_hash"], ds["split_hash"], commit, res["date"],
             budget_kind(res), *training_columns(res))
        )  # fmt: skip
        for task, per_task in _entries(res).items():
            for metric, entry in per_task.items():
                values[key][(task, metric)].append(entry)
    for key, per_metric in values.items():
        for (task, metric), entries in per_metric.items():
            groups[key].metrics.setdefault(task, {})[metric] = _aggregate(entries)
    for res in sorted(results, key=lambda r: [int(s) for s in r["seeds"]]):
        group = groups[(res["method"]["name"], res["dataset"]["name"], res["preset"]["name"])]
        if not group.curves:
            group.curves = curve_by_stage(res)
    for group in groups.values():
        group.seeds.sort()
    return groups


def _aggregate(entries: list[dict[str, Any]]) -> Cell:
    if len(entries) > 1:
        summary = seed_summary([e["value"] for e in entries])
        mean, std = float(summary["mean"]), float(summary["std"] or 0.0)
        return Cell(mean, mean - std, mean + std, "std", len(entries))
    entry = entries[0]
    if entry["ci95"] is not None:
        return Cell(entry["value"], entry["ci95"][0], entry["ci95"][1], "ci")
    if entry["std"] is not None:
        return Cell(entry["value"], entry["value"] - entry["std"], entry["value"] + entry["std"], "std")
    return Cell(entry["value"])


def best_value(cells: Iterable[Cell | str], metric: str, *, min_count: int = 1) -> float | None:
    """The best of the Cells' values as shown (rounded to the metric's decimals) by the metric's direction;
    None for an unranked metric or fewer than ``min_count`` values ("—" / "n/a" cells are skipped)."""
    spec = metric_spec(metric)
    shown = [round(c.value, spec.decimals) for c in cells if isinstance(c, Cell)]
    if len(shown) < min_count or spec.direction is None:
        return None
    return max(shown) if spec.direction == "higher" else min(shown)


def is_best(cell: Cell, metric: str, best: float | None) -> bool:
    """True when ``cell`` shows the column's best value (see :func:`best_value`)."""
    return best is not None and round(cell.value, metric_spec(metric).decimals) == best


class Board:
    """The aggregated view the markdown and figures are drawn from.

    ``results``/``groups`` hold the ranked runs only; ``kept_out`` the files of runs whose training the wall-clock
    safety stop ended before the budget (``training.truncated``), which no table, bold mark or figure ranks."""

    def __init__(self, results: Sequence[dict[str, Any]]) -> None:
        self.n_files = len(results)
        self.kept_out = [r for r in results if is_truncated(r)]
        self.results = [r for r in results if not is_truncated(r)]
        self.groups = aggregate_runs(self.results)
        self.rows = sorted({(m, p) for m, _, p in self.groups})
        self.datasets = sorted({d for _, d, _ in self.groups})
        self.method_tasks: dict[str, set[str]] = defaultdict(set)
        for (method, _, _), group in self.groups.items():
            self.method_tasks[method] |= group.tasks

    def cell(self, row: tuple[str, str], dataset: str, task: str, metric: str) -> Cell | str:
        """The Cell, or "n/a" (the method cannot serve the task) or "—" (no result)."""
        method, preset = row
        if task not in self.method_tasks[method]:
            return NOT_APPLICABLE
        inner = metric.split("/")[1] if task == "robustness" and "/" in metric else None
        if inner in TASKS and inner not in self.method_tasks[method]:
            return NOT_APPLICABLE  # e.g. "fwhm_0.2/retrieval/…" for a method that cannot retrieve
        group = self.groups.get((method, dataset, preset))
        if group is None or metric not in group.metrics.get(task, {}):
            return MISSING
        return group.metrics[task][metric]

    def has_result(self, row: tuple[str, str], dataset: str) -> bool:
        """True when (method, preset) has a results file on ``dataset``."""
        return (row[0], dataset, row[1]) in self.groups

    def hardware(self, row: tuple[str, str]) -> str:
        labels = set().union(*(g.hardware for (m, _, p), g in self.groups.items() if (m, p) == row))
        return "; ".join(sorted(labels))

    def metric_keys(self, task: str, datasets: Sequence[str] | None = None) -> set[str]:
        keys: set[str] = set()
        for (_, dataset, _), group in self.groups.items():
            if datasets is None or dataset in datasets:
                keys |= set(group.metrics.get(task, {}))
        return keys

    def cells(
        self, task: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[str, str]] | None = None
    ) -> list[list[Cell | str]]:
        """Raw cells (one list per row, default every row) for columns of (dataset, metric key)."""
        return [
            [self.cell(row, d, task, key) for d, key in columns]
            for row in (self.rows if rows is None else rows)
        ]


def load_board(results_dir: str | os.PathLike[str]) -> Board:
    """The Board of every results file ``results_dir/*.json`` (older files' space-group per-class keys made
    1-based, see :func:`one_based_space_group_keys`)."""
    return Board([one_based_space_group_keys(r) for r in load_all(results_dir)])


def one_based_space_group_keys(result: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``result`` whose space-group ``per_class/<n>`` keys hold 1-based space-group numbers:
    files older than evaluation version 2 hold the 0-based class index (index + 1); newer files are unchanged.
    Applies to the ``space_group`` task and to any ``…/space_group/per_class/…`` key (RRUFF, robustness)."""
    if evaluation_version(result) >= 2:
        return dict(result)

    def renamed(task: str, key: str) -> str:
        parts = key.split("/")
        for i in range(len(parts) - 2):
            owner = task if i == 0 else parts[i - 1]
            if parts[i] == "per_class" and owner == "space_group" and parts[i + 1].isdigit():
                parts[i + 1] = str(int(parts[i + 1]) + 1)
        return "/".join(parts)

    out = dict(result)
    out["metrics"] = {
        task: {renamed(task, key): entry for key, entry in block.items()}
        for task, block in result["metrics"].items()
    }
    return out
