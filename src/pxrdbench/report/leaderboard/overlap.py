"""The leaderboard's RRUFF ↔ AMCSD overlap section: a fixed disclosure note and, for results files that carry the
overlap entries of ``experimental_rruff908`` (see :mod:`pxrdbench.tasks.rruff`), a table of full-set vs
low-overlap crystal-system and space-group accuracy per run. Older results files lack those entries; then the
section is the note alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pxrdbench.report.leaderboard.board import MISSING, Cell
from pxrdbench.report.leaderboard.markdown import esc, format_cell, table
from pxrdbench.tasks.rruff import DEV_PATTERNS
from pxrdbench.tasks.rruff_overlap import (
    LOW_OVERLAP_PREFIX,
    OVERLAP_POOL_LENGTH,
    OVERLAP_THRESHOLD,
    REFERENCE_PREFIX,
    SIMILARITY_PREFIX,
)

TASK = "experimental_rruff908"
HEADING = "#### RRUFF ↔ AMCSD overlap"
"""A sub-heading: the section sits under the overview's `experimental_rruff908` heading."""
ACCURACY_KEYS = ("crystal_system/accuracy", "space_group/accuracy")


def overlap_note(threshold: float = OVERLAP_THRESHOLD) -> list[str]:
    """The fixed disclosure: what the RRUFF number measures, why no overlap-free subset exists, the threshold."""
    return [
        f"`{TASK}` scores the {DEV_PATTERNS}-pattern development half of RRUFF-908 (measured RRUFF powder "
        "patterns). AMCSD, the default training data, is the RRUFF project's own structure database, and most "
        "RRUFF minerals have a structure in the AMCSD training split. The RRUFF number therefore measures the "
        "transfer from simulated to measured patterns of largely *seen* minerals, not generalisation to unseen "
        "minerals: a nearest-neighbour lookup over training patterns (`pattern_nn`) scores about as well on "
        "RRUFF as on the held-out simulated test split.",
        "",
        "An overlap-free subset cannot be built: the RRUFF-908 files carry no RRUFF ids, mineral names or cells. "
        "The overlap is measured instead: a pattern's *max train similarity* is its highest cosine similarity to "
        "any training-split simulated pattern, both as dense patterns of the data module's view (training "
        f"patterns rendered with the evaluation pipeline, pooled to {OVERLAP_POOL_LENGTH} bins, over the "
        f"measured range). `low_overlap/…` = the patterns whose max train similarity is below {threshold:g}; "
        "such a subset still holds seen minerals whose measured pattern differs from the simulated one, so it "
        "reduces the lookup advantage rather than removing it. The held-out simulated test split (structures "
        "absent from the training split) is measured the same way as a reference (`overlap/reference_test/…`; "
        'comparable with RRUFF only in noise-free views). See docs/METHODS.md, "RRUFF ↔ AMCSD overlap".',
        "",
    ]


def _entry(metrics: dict[str, Any], key: str) -> dict[str, Any] | None:
    entry = metrics.get(key)
    return entry if isinstance(entry, dict) and "value" in entry else None


def _cell(entry: dict[str, Any] | None, key: str) -> str:
    """``value [low, high]`` (the leaderboard's cell format), ``—`` when absent."""
    if entry is None:
        return MISSING
    ci = entry.get("ci95")
    cell = (
        Cell(float(entry["value"]), float(ci[0]), float(ci[1]), "ci") if ci else Cell(float(entry["value"]))
    )
    return format_cell(cell, key)


def _n(metrics: dict[str, Any], prefix: str) -> str:
    """The number of patterns behind the prefix's accuracy entries (crystal system first), ``0`` when none."""
    for key in ACCURACY_KEYS:
        if (entry := _entry(metrics, prefix + key)) is not None:
            return str(int(entry["n"]))
    return "0"


def _has_overlap(metrics: dict[str, Any]) -> bool:
    return any(key.startswith(SIMILARITY_PREFIX) for key in metrics)


def _row_key(result: dict[str, Any]) -> tuple[str, str, str, tuple[int, ...]]:
    return (
        str(result["method"]["name"]),
        str(result["preset"]["name"]),
        str(result["dataset"]["name"]),
        tuple(int(s) for s in result.get("seeds", [])),
    )


def rruff_overlap_section(results: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines of the section: heading, the note, and (when any results file carries the overlap
    entries) a table with a row per such file: full-set vs low-overlap crystal-system and space-group accuracy
    with their ``n``, and the median max train similarity of the RRUFF patterns and of the test split.

    ``results``: results objects as read by :func:`pxrdbench.report.results.load_all`. Deterministic: rows
    sorted by (method, preset, dataset, seeds).
    """
    measured = [r for r in results if _has_overlap(r.get("metrics", {}).get(TASK, {}))]
    thresholds = sorted(
        {
            float(entry["value"])
            for r in measured
            if (entry := _entry(r["metrics"][TASK], SIMILARITY_PREFIX + "threshold")) is not None
        }
    )
    lines = [HEADING, "", *overlap_note(thresholds[0] if len(thresholds) == 1 else OVERLAP_THRESHOLD)]
    if len(thresholds) > 1:
        shown = ", ".join(f"{t:g}" for t in thresholds)
        lines += [f"The results files below used different thresholds: {shown} (see each run's file).", ""]
    if not measured:
        lines += [
            "No results file carries the overlap measurement yet (files written before it was added).",
            "",
        ]
        return lines
    header = [
        "method (preset)",
        "dataset",
        "seeds",
        "n",
        "crystal_system/accuracy",
        "space_group/accuracy",
        "n low overlap",
        "low_overlap/crystal_system/accuracy",
        "low_overlap/space_group/accuracy",
        "median max train similarity (RRUFF)",
        "median max train similarity (test split)",
    ]
    rows = []
    for result in sorted(measured, key=_row_key):
        metrics = result["metrics"][TASK]
        method, preset, dataset, seeds = _row_key(result)
        rows.append(
            [
                esc(f"{method} ({preset})"),
                esc(dataset),
                ",".join(str(s) for s in seeds),
                _n(metrics, ""),
                *(_cell(_entry(metrics, key), key) for key in ACCURACY_KEYS),
                _n(metrics, LOW_OVERLAP_PREFIX),
                *(_cell(_entry(metrics, LOW_OVERLAP_PREFIX + key), key) for key in ACCURACY_KEYS),
                _similarity(metrics, SIMILARITY_PREFIX),
                _similarity(metrics, REFERENCE_PREFIX),
            ]
        )
    lines += table(header, rows) + [""]
    return lines


def _similarity(metrics: dict[str, Any], prefix: str) -> str:
    """The median similarity with its CI to 3 decimals, ``—`` when absent."""
    entry = _entry(metrics, prefix + "median")
    if entry is None:
        return MISSING
    ci = entry.get("ci95")
    value = f"{float(entry['value']):.3f}"
    return f"{value} [{float(ci[0]):.3f}, {float(ci[1]):.3f}]" if ci else value
