"""Leaderboard figures (seaborn on matplotlib's Agg canvas, no pyplot state).

Figures are built on ``matplotlib.figure.Figure`` objects directly, so no global backend or interactive state
is touched; styles are applied with seaborn context managers, not ``set_theme``. PNGs are written at a fixed
dpi with the "Software" metadata removed, so repeated runs give the same pixels on one machine (byte
identity of PNGs is not promised across matplotlib versions; the markdown is what must be byte-identical).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

DPI = 100
PALETTE = "colorblind"


def accuracy_figure(rows: pd.DataFrame, title: str, ylabel: str = "accuracy (%)") -> Figure:
    """Grouped bars of a metric per method row (x) and dataset (colour) with asymmetric error bars.

    ``rows`` columns: ``label`` (method row), ``dataset``, ``value``, ``low``, ``high`` (error-bar ends: the
    95 % CI, or mean ± std over seeds; NaN where there is none). Row and dataset order is the sorted order.
    """
    labels = sorted(rows["label"].unique())
    datasets = sorted(rows["dataset"].unique())
    colours = sns.color_palette(PALETTE, n_colors=max(1, len(datasets)))
    width = 0.8 / max(1, len(datasets))
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(max(4.0, 1.2 * len(labels) + 2.0), 4.0), dpi=DPI)
        ax = fig.subplots()
        for j, (dataset, colour) in enumerate(zip(datasets, colours, strict=False)):
            sub = rows[rows["dataset"] == dataset].set_index("label")
            xs, ys, err_lo, err_hi = [], [], [], []
            for i, label in enumerate(labels):
                if label not in sub.index:
                    continue
                row = sub.loc[label]
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(float(row["value"]))
                err_lo.append(
                    max(0.0, float(row["value"]) - float(row["low"])) if np.isfinite(row["low"]) else 0.0
                )
                err_hi.append(
                    max(0.0, float(row["high"]) - float(row["value"])) if np.isfinite(row["high"]) else 0.0
                )
            ax.bar(xs, ys, width=width * 0.95, color=colour, label=dataset)
            ax.errorbar(xs, ys, yerr=[err_lo, err_hi], fmt="none", ecolor="black", elinewidth=1, capsize=3)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100 if "%" in ylabel else None)
        ax.set_title(title, fontsize="medium")
        if datasets:
            ax.legend(title="dataset", fontsize="small")
        fig.tight_layout()
    return fig


def hop_histogram_figure(rows: pd.DataFrame, title: str) -> Figure:
    """Share of space-group predictions at each subgroup-graph hop distance, one bar colour per method row.

    ``rows`` columns: ``label`` (method row), ``hop`` (int, 0 = correct), ``share`` (% of predictions).
    """
    data = rows.sort_values(["label", "hop"]).reset_index(drop=True)
    hue_order = sorted(data["label"].unique())
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(6.5, 4.0), dpi=DPI)
        ax = fig.subplots()
        sns.barplot(
            data=data,
            x="hop",
            y="share",
            hue="label",
            hue_order=hue_order,
            order=sorted(data["hop"].unique()),
            palette=PALETTE,
            errorbar=None,
            ax=ax,
        )
        ax.set_xlabel("hop distance in the maximal-subgroup graph (0 = correct)")
        ax.set_ylabel("share of predictions (%)")
        ax.set_title(title, fontsize="medium")
        ax.legend(title="method (preset)", fontsize="small")
        fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG at :data:`DPI` with no "Software" metadata; return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, format="png", metadata={"Software": None})
    return out


BAR_FIGURES: tuple[tuple[str, str, str], ...] = (
    ("crystal_system", "accuracy", "crystal_system_accuracy"),
    ("extinction_group", "accuracy", "extinction_group_accuracy"),
    ("space_group", "accuracy", "space_group_accuracy"),
    ("retrieval", "top1", "retrieval_top1"),
    ("retrieval", "prescreen/top1", "retrieval_prescreen_top1"),
    ("experimental_rietveld", "prescreen/top1", "experimental_rietveld_prescreen_top1"),
)
"""(task, metric key, file stem) of each bar chart: one bar per method row and dataset, with its interval."""
ANALYTIC_BARS: dict[tuple[str, str], tuple[str, str]] = {
    ("retrieval", "top1"): ("uniform_random/top1", "random ranking (analytic)"),
    ("retrieval", "prescreen/top1"): ("element_random/top1", "element-only random (analytic)"),
    ("experimental_rietveld", "prescreen/top1"): ("element_random/top1", "element-only random (analytic)"),
}
"""Bars drawn beside the methods: the exact random expectation every run of the task stores (first run per dataset)."""


def _nan_if_none(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def write_leaderboard_figures(groups: Mapping[tuple[str, str, str], Any], fig_dir: Path) -> list[Path]:
    """Draw the leaderboard figures from aggregated runs; return the PNG paths written.

    ``groups`` maps (method, dataset, preset) to an object whose ``metrics[task][key]`` has ``value``, ``low``
    and ``high`` (the leaderboard's ``RunGroup``). Writes one bar chart per :data:`BAR_FIGURES` entry with
    results and ``space_group_hops__<dataset>.png`` per dataset with hop-distance shares.
    """
    written: list[Path] = []
    items = sorted(groups.items())
    for task, key, stem in BAR_FIGURES:
        recs = []
        for (method, dataset, preset), group in items:
            cell = group.metrics.get(task, {}).get(key)
            if cell is not None:
                label = f"{method} ({preset})"
                low, high = _nan_if_none(cell.low), _nan_if_none(cell.high)
                recs.append(
                    {"label": label, "dataset": dataset, "value": cell.value, "low": low, "high": high}
                )
        if (task, key) in ANALYTIC_BARS:
            source, label = ANALYTIC_BARS[task, key]
            for dataset in sorted({d for _, d, _ in groups}):
                newest_first = sorted(items, key=lambda kv: -max(getattr(kv[1], "evaluation_versions", {1})))
                cell = next(
                    (
                        g.metrics[task][source]
                        for (_, d, _), g in newest_first
                        if d == dataset and source in g.metrics.get(task, {})
                    ),
                    None,
                )
                if cell is not None and recs:
                    recs.append(
                        {
                            "label": label,
                            "dataset": dataset,
                            "value": cell.value,
                            "low": np.nan,
                            "high": np.nan,
                        }
                    )
        if recs:
            fig = accuracy_figure(pd.DataFrame(recs), f"{task}: {key} (bars: 95 % CI or ± std)", f"{key} (%)")
            written.append(save_figure(fig, fig_dir / f"{stem}.png"))
    for dataset in sorted({d for _, d, _ in groups}):
        recs = [
            {"label": f"{m} ({p})", "hop": int(key.rsplit("_", 1)[1]), "share": cell.value}
            for (m, d, p), group in items
            if d == dataset
            for key, cell in sorted(group.metrics.get("space_group", {}).items())
            if key.startswith("hop_share_")
        ]
        if recs:
            title = f"space-group errors by subgroup-graph distance: {dataset}"
            fig = hop_histogram_figure(pd.DataFrame(recs), title)
            written.append(save_figure(fig, fig_dir / f"space_group_hops__{dataset}.png"))
    return written


def rruff_overlap_figure(
    results: str | os.PathLike[str] | Mapping[str, Any], path: str | os.PathLike[str]
) -> Path | None:
    """Draw the histogram of the RRUFF patterns' max train similarities of one results file (and of the held-out
    simulated test split, when stored) with the low-overlap threshold; write it to ``path`` and return the path,
    or None when the file has no ``experimental_rruff908`` overlap histogram (files written before it existed).

    ``results``: a results file's path or its loaded object. Reads the entries
    ``overlap/[reference_test/]max_train_similarity/histogram/bin_XX/count`` (bin k = [k/B, (k+1)/B)) and
    ``overlap/max_train_similarity/threshold``; bars are shares of each set's patterns (%), so sets of
    different sizes compare.
    """
    import json

    from pxrdbench.tasks.rruff_overlap import REFERENCE_PREFIX, SIMILARITY_PREFIX

    if isinstance(results, Mapping):
        obj = results
    else:
        obj = json.loads(Path(results).read_text(encoding="utf-8"))
    metrics = obj.get("metrics", {}).get("experimental_rruff908", {})

    series: list[tuple[str, np.ndarray]] = []
    for prefix, name in ((SIMILARITY_PREFIX, "RRUFF"), (REFERENCE_PREFIX, "simulated test split")):
        keys = sorted(k for k in metrics if k.startswith(f"{prefix}histogram/bin_") and k.endswith("/count"))
        counts = np.array([float(metrics[k]["value"]) for k in keys])
        if counts.sum() > 0:
            series.append((f"{name} (n = {int(counts.sum())})", counts))
    if not series:
        return None
    n_bins = len(series[0][1])
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    width = (edges[1] - edges[0]) / len(series)
    colours = sns.color_palette(PALETTE, n_colors=len(series))
    threshold = metrics.get(f"{SIMILARITY_PREFIX}threshold", {}).get("value")
    method, preset, dataset = obj["method"]["name"], obj["preset"]["name"], obj["dataset"]["name"]
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        fig = Figure(figsize=(6.5, 4.0), dpi=DPI)
        ax = fig.subplots()
        for j, ((name, counts), colour) in enumerate(zip(series, colours, strict=True)):
            share = 100.0 * counts / counts.sum()
            ax.bar(edges[:-1] + width * j, share, width=width * 0.95, align="edge", color=colour, label=name)
        if threshold is not None:
            label = f"low-overlap threshold {float(threshold):g}"
            ax.axvline(float(threshold), color="black", linestyle="--", linewidth=1, label=label)
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel("max cosine similarity to a training-split simulated pattern")
        ax.set_ylabel("share of patterns (%)")
        ax.set_title(f"RRUFF ↔ training overlap: {method} ({preset}) on {dataset}", fontsize="medium")
        ax.legend(fontsize="small")
        fig.tight_layout()
    return save_figure(fig, path)
