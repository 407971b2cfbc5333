"""The leaderboard's task pages (``tasks/<task>.md``): per dataset, one table with a row per metric and a
column per method × preset, then each per-class / per-query breakdown as a table of its own (a row per class or
query). Methods are columns because a task has tens of metrics and a handful of methods; the page stays
readable as both grow.

Breakdown keys look like ``[<qualifier>/]per_class/<item>/<metric>`` (also ``per_query``). A task's own
breakdowns (no qualifier, e.g. per space group in ``space_group``) are always shown; qualified ones (a perturbation
set's, an experimental subtask's) only when they have at most :data:`MAX_QUALIFIED_ITEMS` items, so the crystal
systems of RRUFF are shown and the 230 space groups of each perturbed set stay in the results files.

Space-group rows (``per_class`` of the ``space_group`` task, or behind a ``…/space_group/`` qualifier) are labelled by
number and Hermann–Mauguin symbol (``225 Fm-3m``); the page reads their items as 1-based space-group numbers.
Results files without an ``evaluation`` field (``evaluation.version`` < 2) hold 0-based class indices there;
:func:`~pxrdbench.report.leaderboard.board.one_based_space_group_keys` shifts them (index + 1) as
:func:`~pxrdbench.report.leaderboard.board.load_board` reads the files. Crystal-system and extinction-group rows keep their names.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Collection

from pxrdbench.report.leaderboard.board import (  # noqa: F401 (one_based_space_group_keys re-exported)
    MISSING,
    NOT_APPLICABLE,
    Board,
    Cell,
    best_value,
    is_best,
    one_based_space_group_keys,
)
from pxrdbench.report.leaderboard.learning_curves import curve_section
from pxrdbench.report.leaderboard.markdown import ARROW, esc, format_cell, legend, table
from pxrdbench.report.results import evaluation_version  # noqa: F401 (re-exported)
from pxrdbench.symmetry.spacegroups import space_group_label
from pxrdbench.tasks.specs import TASKS, base_metric, metric_spec, sort_metric_keys

MAX_QUALIFIED_ITEMS = 30
_BREAKDOWN = re.compile(r"^(?P<prefix>(?:.+/)?)(?P<kind>per_class|per_query)/(?P<item>[^/]+)/(?P<metric>.+)$")
_KIND_LABEL = {"per_class": "class", "per_query": "query"}
_KIND_PLURAL = {"per_class": "classes", "per_query": "queries"}


def split_breakdown(key: str) -> tuple[str, str, str, str] | None:
    """(qualifier prefix, kind, item, metric) of a breakdown key, or None for a summary metric."""
    match = _BREAKDOWN.match(key)
    if match is None:
        return None
    return match["prefix"], match["kind"], match["item"], match["metric"]


def is_space_group_breakdown(task: str, prefix: str, kind: str) -> bool:
    """Whether the breakdown ``<prefix><kind>/<item>/…`` of ``task`` is per space group: ``per_class`` of the
    ``space_group`` task itself, or behind a qualifier ending in ``space_group/`` (``space_group/``,
    ``fwhm_0.5/space_group/``)."""
    if kind != "per_class":
        return False
    return (not prefix and task == "space_group") or prefix.rstrip("/").split("/")[-1] == "space_group"


def row_label(task: str, prefix: str, kind: str, item: str) -> str:
    """A breakdown row's label: ``"225 Fm-3m"`` for a 1-based space-group item, else the item itself."""
    if is_space_group_breakdown(task, prefix, kind) and item.isdigit() and 1 <= int(item) <= 230:
        return space_group_label(int(item))
    return item


def _item_order(item: str) -> tuple[int, float, str]:
    return (0, float(item), "") if item.replace(".", "", 1).isdigit() else (1, 0.0, item)


def _row_cells(board: Board, columns: list[tuple[str, str]], dataset: str, task: str, key: str) -> list[str]:
    """Formatted cells of one metric row over method columns; the best by the metric's direction in bold."""
    raw: list[Cell | str] = [board.cell(col, dataset, task, key) for col in columns]
    best = best_value(raw, key, min_count=2)
    out = []
    for c in raw:
        if isinstance(c, str):
            out.append(MISSING if c == MISSING else c)
        else:
            out.append(format_cell(c, key, bold=is_best(c, key, best)))
    return out


def _metric_legend(keys: list[str]) -> list[str]:
    """The base metrics used on the page: direction, unit, description (qualifiers explained once)."""
    bases = sorted({base_metric(k) for k in keys})
    lines = ["| base metric | direction | unit | description |", "|---|---|---|---|"]
    for name in bases:
        m = metric_spec(name)
        lines.append(f"| `{name}` | {ARROW[m.direction]} | {m.unit} | {esc(m.description)} |")
    lines += [
        "",
        "A row's key is the base metric with its qualifiers in front (`prescreen/top1`: with the element "
        "pre-screen; `fullpool/…`: candidate pool = the whole dataset; `fwhm_0.5/crystal_system/accuracy`: on "
        "a perturbed set); direction and unit are the base metric's.",
        "",
    ]
    return lines


def _perturbation_units(keys: list[str]) -> list[str]:
    """The units each perturbation set in ``keys`` is defined in (one row per set), so no row mixes grids
    silently: XCCP's sets are defined at Cu Kα and converted through d to each view's wavelength."""
    from pxrdbench.errors import ConfigError
    from pxrdbench.views.perturbations import perturbation_units

    rows = []
    for name in sorted({k.split("/", 1)[0] for k in keys}):
        try:
            rows.append([f"`{esc(name)}`", esc(perturbation_units(name))])
        except ConfigError:
            rows.append([f"`{esc(name)}`", "not a current perturbation set"])
    if not rows:
        return []
    return ["Perturbation sets and the units their widths and shifts are defined in:", "",
            *table(["set", "units"], rows), ""]  # fmt: skip


def render_task_page(board: Board, task: str, figures: Collection[str] = ()) -> str:
    """Markdown of one task: legend, then per dataset the summary table, the breakdown tables and the learning
    curves (when drawn: ``figures`` holds the written figures' paths relative to the leaderboard directory)."""
    spec = TASKS[task]
    lines = [f"# `{task}`: {spec.description}", "", *legend()]
    all_keys = sort_metric_keys(task, board.metric_keys(task))
    if all_keys:
        lines += _metric_legend(all_keys)
    if task == "robustness":
        lines += _perturbation_units(all_keys)
    if not board.rows:
        lines += ["No results yet.", ""]
    unable = [f"{m} ({p})" for m, p in board.rows if task not in board.method_tasks[m]]
    for dataset in board.datasets:
        keys = sort_metric_keys(task, board.metric_keys(task, [dataset]))
        columns = [r for r in board.rows if task in board.method_tasks[r[0]] and board.has_result(r, dataset)]
        waiting = [
            f"{m} ({p})" for m, p in board.rows if task in board.method_tasks[m] and (m, p) not in columns
        ]
        lines += [f"## {dataset}", ""]
        if columns and keys:
            header = ["metric", *(f"{m} ({p})" for m, p in columns)]
            summary = [k for k in keys if split_breakdown(k) is None and "/histogram/" not in k]
            rows = [[f"`{esc(k)}`", *_row_cells(board, columns, dataset, task, k)] for k in summary]
            if rows:
                lines += table(header, rows) + [""]
            lines += _breakdowns(board, columns, dataset, task, keys)
            lines += curve_section(board, task, dataset, figures)
        else:
            lines += ["No result yet.", ""]
        if waiting:
            lines += [f"No result on `{dataset}` yet: {', '.join(waiting)}.", ""]
        if unable:
            lines += [f"`{NOT_APPLICABLE}` (cannot serve `{task}`): {', '.join(unable)}.", ""]
    return "\n".join(lines)


def _breakdowns(
    board: Board, columns: list[tuple[str, str]], dataset: str, task: str, keys: list[str]
) -> list[str]:
    """One table per (qualifier, kind, metric): a row per item, a column per method."""
    groups: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for key in keys:
        parts = split_breakdown(key)
        if parts is not None:
            prefix, kind, item, metric = parts
            groups[(prefix, kind, metric)].append(item)
    lines: list[str] = []
    for (prefix, kind, metric), items in sorted(groups.items()):
        items = sorted(set(items), key=_item_order)
        if prefix and len(items) > MAX_QUALIFIED_ITEMS:
            lines += [
                f"`{prefix}{kind}/<{_KIND_LABEL[kind]}>/{metric}`: {len(items)} {_KIND_PLURAL[kind]}, "
                "in the results files (not tabulated here).",
                "",
            ]
            continue
        label = _KIND_LABEL[kind]
        lines += [f"### `{prefix}{kind}/<{label}>/{metric}`", ""]
        header = [label, *(f"{m} ({p})" for m, p in columns)]
        rows = [
            [
                esc(row_label(task, prefix, kind, item)),
                *_row_cells(board, columns, dataset, task, f"{prefix}{kind}/{item}/{metric}"),
            ]
            for item in items
        ]
        lines += table(header, rows) + [""]
    return lines
