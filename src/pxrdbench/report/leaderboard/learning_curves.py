"""Which learning curves the task pages show, and the markdown that embeds them.

Per (task, dataset) one figure, ``figures/learning_curve__<task>__<dataset>.png``, with a line per ranked run that
serves the task and has the task's curve metric (:data:`~.training.CURVE_METRICS`) in its ``training.curve``: one
line per (method, preset, stage), from the file with the lowest seeds. Baselines (empty curves) and runs kept out
of the rankings are absent. Pure functions of the :class:`~.board.Board`; the drawing is
:func:`pxrdbench.report.curves.write_learning_curves`.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pxrdbench.report.leaderboard.board import Board
from pxrdbench.report.leaderboard.training import CURVE_METRICS, CURVE_NOTES

FIGURE_DIR = "figures"


@dataclass(frozen=True)
class CurvePlot:
    """One learning-curve figure: ``records`` has a dict per point (``label``, ``patterns``, ``value`` in the
    shown unit, ``val_loss``, NaN where absent), in (label, file) order."""

    task: str
    dataset: str
    metric: str
    unit: str
    records: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return figure_name(self.task, self.dataset)

    @property
    def title(self) -> str:
        return f"{self.task} on {self.dataset}: validation {self.metric}"

    @property
    def ylabel(self) -> str:
        return f"validation {self.metric} ({self.unit})"


def figure_name(task: str, dataset: str) -> str:
    """``learning_curve__<task>__<dataset>.png``."""
    return f"learning_curve__{task}__{dataset}.png"


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def curve_plot(board: Board, task: str, dataset: str) -> CurvePlot | None:
    """The learning-curve figure of ``task`` on ``dataset``, or None when no ranked run has the curve metric."""
    if task not in CURVE_METRICS:
        return None
    metric, scale, unit = CURVE_METRICS[task]
    records: list[dict[str, Any]] = []
    for (method, d, preset), group in sorted(board.groups.items()):
        if d != dataset or task not in group.tasks:
            continue
        for stage, points in sorted(group.curves.items()):
            label = f"{method} ({preset})" + ("" if stage == "fit" else f" [{stage}]")
            for point in points:
                value = _float(point.get("val", {}).get(metric))
                patterns = _float(point.get("patterns"))
                if math.isfinite(value) and math.isfinite(patterns) and patterns > 0:
                    loss = _float(point.get("val_loss"))
                    records.append(
                        {"label": label, "patterns": patterns, "value": value * scale, "val_loss": loss}
                    )
    if not records:
        return None
    return CurvePlot(task, dataset, metric, unit, tuple(records))


def curve_plots(board: Board) -> list[CurvePlot]:
    """Every learning-curve figure of the board, sorted by (task, dataset)."""
    plots = (curve_plot(board, task, dataset) for task in sorted(CURVE_METRICS) for dataset in board.datasets)
    return [p for p in plots if p is not None]


def caption(task: str) -> str:
    """The one-line caption under a task's learning-curve figure."""
    metric, _, unit = CURVE_METRICS[task]
    note = f" `{metric}` here is {CURVE_NOTES[task]}." if task in CURVE_NOTES else ""
    return (
        f"Validation `{metric}` ({unit}) vs training patterns seen (log axis; right: validation loss, each "
        "method's own objective, not comparable across methods); one line per run; from `training.curve` of "
        f"the results files.{note}"
    )


def curve_section(board: Board, task: str, dataset: str, figures: Collection[str]) -> list[str]:
    """Markdown lines embedding the task's learning curve on ``dataset`` in ``tasks/<task>.md``, when it was drawn
    (``figures``: the written figures, relative to the leaderboard directory); ``[]`` otherwise."""
    plot = curve_plot(board, task, dataset)
    ref = f"{FIGURE_DIR}/{figure_name(task, dataset)}"
    if plot is None or ref not in figures:
        return []
    return [f"### Learning curves on `{dataset}`", "", f"![{ref[len(FIGURE_DIR) + 1 : -4]}](../{ref})", "",
            caption(task), ""]  # fmt: skip
