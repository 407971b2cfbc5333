"""Learning-curve figures: validation metric (left) and validation loss (right) vs training patterns seen.

The x axis is logarithmic: runs of one task can differ in budget by orders of magnitude (a quick preset and a
full one, a pretrain stage and a fine-tune), and the early passes, where curves differ most, stay readable. One
line with markers per (method, preset, stage). Drawn like :mod:`pxrdbench.report.plots` (``Figure`` objects, no
pyplot state, PNGs through :func:`~pxrdbench.report.plots.save_figure`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from pxrdbench.report.plots import DPI, PALETTE, save_figure

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")


def patterns_label(x: float, _pos: object = None) -> str:
    """A tick label of a pattern count: ``500``, ``2k``, ``1.5M``."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"


class CurveSpec(Protocol):
    """What :func:`write_learning_curves` draws (the leaderboard's ``CurvePlot``)."""

    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def ylabel(self) -> str: ...
    @property
    def records(self) -> Sequence[Mapping[str, Any]]: ...


def learning_curve_figure(rows: pd.DataFrame, title: str, ylabel: str) -> Figure:
    """Validation metric and validation loss vs patterns seen (log x), one line per ``label``.

    ``rows`` columns: ``label`` (run and stage), ``patterns`` (> 0), ``value`` (the metric in the shown unit),
    ``val_loss`` (NaN where absent). Lines are drawn in sorted label order, points in row order.
    """
    labels = sorted(rows["label"].unique())
    colours = sns.color_palette(PALETTE, n_colors=max(1, len(labels)))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(11.0, 4.2), dpi=DPI)
        ax_metric, ax_loss = fig.subplots(1, 2)
        for i, (label, colour) in enumerate(zip(labels, colours, strict=False)):
            sub = rows[rows["label"] == label]
            style = {"color": colour, "marker": MARKERS[i % len(MARKERS)], "markersize": 4, "linewidth": 1.2}
            ax_metric.plot(sub["patterns"], sub["value"], label=label, **style)
            loss = sub[np.isfinite(sub["val_loss"].astype(float))]
            if len(loss):
                ax_loss.plot(loss["patterns"], loss["val_loss"], label=label, **style)
        for ax in (ax_metric, ax_loss):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(patterns_label))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("training patterns seen (log)")
        losses = rows["val_loss"].astype(float)
        if bool((losses[np.isfinite(losses)] > 0).all()) and np.isfinite(losses).any():
            ax_loss.set_yscale("log")
        ax_metric.set_ylabel(ylabel)
        if "%" in ylabel:
            ax_metric.set_ylim(0, 100)
        ax_loss.set_ylabel("validation loss (own objective)")
        ax_metric.set_title(title, fontsize="medium")
        ax_loss.set_title("validation loss", fontsize="medium")
        ax_metric.legend(fontsize="x-small", loc="best")
        fig.tight_layout()
    return fig


def write_learning_curves(plots: Iterable[CurveSpec], fig_dir: Path) -> list[Path]:
    """Draw each learning curve to ``fig_dir/<plot.name>``; return the paths written, in input order."""
    written: list[Path] = []
    for plot in plots:
        rows = pd.DataFrame(list(plot.records), columns=["label", "patterns", "value", "val_loss"])
        written.append(save_figure(learning_curve_figure(rows, plot.title, plot.ylabel), fig_dir / plot.name))
    return written
