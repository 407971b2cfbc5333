"""The leaderboard's overview page (``README.md``): the headline table (a row per method × preset, one key metric
per task and dataset), then one table per task headline metric (rows = the methods that serve the task, columns =
datasets; each cell says which baselines the method beats or loses to by the paired difference, and the
retrieval tables carry the analytic random rankings), the runs kept out of the rankings, the runs with their
provenance, training budget and evaluation version, the figures, and the papers' own numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pxrdbench.report.leaderboard.board import MISSING, NOT_APPLICABLE, Board, Cell, best_value, is_best
from pxrdbench.report.leaderboard.markdown import esc, format_cell, grid, legend, metric_title, table
from pxrdbench.report.leaderboard.training import kept_out_reason, training_columns
from pxrdbench.report.published import published_rows
from pxrdbench.tasks.specs import PAIRED_BASELINES, TASKS, headline_keys, metric_spec

HEADLINE_SKIP = ("robustness", "efficiency")
"""Tasks without a column in the headline table (their own tables follow)."""
RANDOM_ROWS: dict[str, tuple[str, str]] = {
    "top1": ("uniform_random/top1", "random ranking of the whole pool (analytic)"),
    "prescreen/top1": ("element_random/top1", "random pick among same-element-set candidates (analytic)"),
}
"""Retrieval headline metric → (the key every retrieval block carries for its exact random expectation, label)."""

_RUN_HEADER = [
    "method",
    "dataset",
    "preset",
    "seeds",
    "config hash",
    "cache hash",
    "split hash",
    "git commit",
    "date",
    "budget",
    "patterns seen",
    "epochs",
    "wall time",
    "evaluation",
]
_PUBLISHED_NOTE = (
    "The papers' own numbers under their own data, splits, pools and budgets. They are **not** comparable "
    "with the tables above and never enter a ranking."
)

VIA_MARK = "†"
VIA_RETRIEVAL: dict[tuple[str, str], tuple[str, str]] = {
    ("space_group", "accuracy"): ("retrieval", "space_group_via_top1/accuracy"),
}
"""Overview cells a retrieval method fills from another task's metric (XCCP reports the space group of the
top-1 structure as its space-group accuracy), marked with :data:`VIA_MARK`."""


def _fill_via_retrieval(
    board: Board, cells: list[list[str]], via: tuple[str, str], rows: list[tuple[str, str]]
) -> list[list[str]]:
    """Replace "n/a" cells of methods that cannot classify by their retrieval-derived value (never bold)."""
    out = []
    for row, row_cells in zip(rows, cells, strict=True):
        filled = []
        for dataset, cell in zip(board.datasets, row_cells, strict=True):
            derived = board.cell(row, dataset, *via) if cell == NOT_APPLICABLE else None
            filled.append(
                format_cell(derived, via[1]) + f" {VIA_MARK}" if isinstance(derived, Cell) else cell
            )
        out.append(filled)
    return out


def paired_marks(board: Board, row: tuple[str, str], dataset: str, task: str, key: str) -> str:
    """`` (> chance, majority; < pattern_nn)``: the baselines whose paired-difference interval
    (``<key>/vs_<baseline>``) lies wholly on the better (>) or worse (<) side of 0; empty when none does."""
    direction = metric_spec(key).direction
    better, worse = [], []
    for baseline in PAIRED_BASELINES:
        cell = board.cell(row, dataset, task, f"{key}/vs_{baseline}")
        if not isinstance(cell, Cell) or cell.low is None or cell.high is None or direction is None:
            continue
        above, below = cell.low > 0, cell.high < 0
        if (above and direction == "higher") or (below and direction == "lower"):
            better.append(baseline)
        elif above or below:
            worse.append(baseline)
    parts = [f"> {', '.join(better)}"] * bool(better) + [f"< {', '.join(worse)}"] * bool(worse)
    return f" ({'; '.join(parts)})" if parts else ""


def _serving_rows(board: Board, task: str, via: tuple[str, str] | None) -> list[tuple[str, str]]:
    """The (method, preset) rows that serve ``task`` (or fill it via retrieval)."""
    return [
        row
        for row in board.rows
        if task in board.method_tasks[row[0]] or (via is not None and via[0] in board.method_tasks[row[0]])
    ]


def _random_row(board: Board, key: str) -> list[str] | None:
    """The analytic random-ranking row of a retrieval headline table (values from any run on the dataset)."""
    if key not in RANDOM_ROWS:
        return None
    source, label = RANDOM_ROWS[key]
    cells = []
    for dataset in board.datasets:
        values = [  # from the newest evaluation code first: older files lack the duplicate truth sets
            g.metrics["retrieval"][source].value
            for _, (_, d, _), g in sorted(
                (-max(g.evaluation_versions), key, g) for key, g in board.groups.items()
            )
            if d == dataset and source in g.metrics.get("retrieval", {})
        ]
        cells.append(format_cell(Cell(values[0]), key) if values else MISSING)
    return [esc(label), "—", "analytic", *cells]


def headline_table(board: Board) -> list[str]:
    """One row per method × preset, one column per (task, dataset) with results: the task's first headline
    metric, value only (intervals and baselines in the tables below); best per column bold."""
    columns: list[tuple[str, str, str]] = []
    for task in TASKS:
        if task in HEADLINE_SKIP:
            continue
        keys = headline_keys(task, board.metric_keys(task))
        for dataset in board.datasets:
            key = next((k for k in keys if k in board.metric_keys(task, [dataset])), None)
            if key is not None:
                columns.append((task, dataset, key))
    if not columns or not board.rows:
        return []
    raw = [[board.cell(row, d, t, k) for t, d, k in columns] for row in board.rows]
    rows = []
    for row, cells in zip(board.rows, raw, strict=True):
        shown = []
        for j, cell in enumerate(cells):
            key = columns[j][2]
            if isinstance(cell, Cell):
                best = best_value([r[j] for r in raw], key, min_count=2)
                value = Cell(cell.value)
                shown.append(format_cell(value, key, bold=is_best(cell, key, best)))
            else:
                shown.append(cell)
        rows.append([esc(row[0]), esc(row[1]), *shown])
    header = ["method", "preset", *(f"{t}: {k} ({d})" for t, d, k in columns)]
    return ["## Headline", "", *table(header, rows), ""]


def predating_note(board: Board) -> list[str]:
    """Which runs were computed by evaluation code older than the current version (to be re-run)."""
    old = sorted(
        f"{m} / {d} / {p}" for (m, d, p), g in board.groups.items() if min(g.evaluation_versions) < 2
    )
    if not old:
        return []
    return [
        f"**{len(old)} of {len(board.groups)} runs predate evaluation version 2** (ties then counted as hits, "
        "item bootstrap, no duplicate truth sets, no paired differences, 0-based space-group rows): "
        f'{", ".join(old)}. They are re-run under the "Honest numbers II" issue; until then their retrieval '
        "numbers overstate and their intervals are too narrow.",
        "",
    ]


def legacy_note(board: Board) -> list[str]:
    """Which runs were trained under a wall-clock budget (legacy presets, no ``training.budget``)."""
    old = sorted(f"{m} / {d} / {p}" for (m, d, p), g in board.groups.items() if g.legacy)
    if not old:
        return []
    return [
        f"**{len(old)} of {len(board.groups)} runs were trained under a wall-clock budget (legacy preset)**: "
        f"{', '.join(old)}. They are to be re-run under the pattern budget; until then how far each trained "
        "depends on the machine's speed, so their numbers are not comparable across machines (see the budget, "
        "patterns seen and wall time of each run under Runs).",
        "",
    ]


def _run_key(result: dict[str, Any]) -> tuple[str, str, str, list[int]]:
    return (result["method"]["name"], result["dataset"]["name"], result["preset"]["name"],
            [int(s) for s in result["seeds"]])  # fmt: skip


def kept_out_section(board: Board) -> list[str]:
    """The runs no table ranks (``training.truncated``) and why; ``[]`` when there are none."""
    if not board.kept_out:
        return []
    rows = []
    for res in sorted(board.kept_out, key=_run_key):
        method, dataset, preset, seeds = _run_key(res)
        _, epochs, wall = training_columns(res)
        names = (method, dataset, preset, ",".join(map(str, seeds)), kept_out_reason(res) or "")
        rows.append([*(esc(x) for x in names), epochs, wall])
    return [
        "## Runs kept out of the rankings",
        "",
        "Their results files are committed, but no table, bold mark or figure ranks them: training ended "
        "before the run's budget, so the numbers measure the machine as much as the method.",
        "",
        *table(["method", "dataset", "preset", "seeds", "reason", "epochs", "wall time"], rows),
        "",
    ]


def render_readme(board: Board, results_ref: str, figures: list[str]) -> str:
    """The overview markdown: headline table, task headline tables, runs, figures, the published table."""
    from pxrdbench.report.leaderboard.overlap import rruff_overlap_section

    lines = ["# pxrdbench leaderboard", ""]
    source = f"Generated by `pxrdbench leaderboard` from {board.n_files} results files in `{results_ref}`"
    if board.kept_out:
        source += f" ({len(board.kept_out)} kept out of the rankings, see below)"
    lines += [f"{source}. Do not edit by hand; regenerate it.", ""]
    lines += legend()
    lines += legacy_note(board)
    lines += predating_note(board)
    lines += headline_table(board)
    lines += ["## Overview", ""]
    if not board.rows:
        lines += ["No results yet.", ""]
    for task, spec in TASKS.items():
        lines += [
            f"### `{task}`: {spec.description}",
            "",
            f"All metrics: [tasks/{task}.md](tasks/{task}.md).",
            "",
        ]
        if task == "experimental_rruff908":
            lines += rruff_overlap_section(board.results)
        for key in headline_keys(task, board.metric_keys(task)):
            via = VIA_RETRIEVAL.get((task, key))
            serving = _serving_rows(board, task, via)
            if not serving:
                continue
            cells = grid(board, task, [(d, key) for d in board.datasets], serving)
            if via is not None:
                cells = _fill_via_retrieval(board, cells, via, serving)
            rows = [
                [esc(m), esc(p), esc(board.hardware((m, p))),
                 *(c + paired_marks(board, (m, p), d, task, key) for d, c in zip(board.datasets, cs, strict=True))]
                for (m, p), cs in zip(serving, cells, strict=True)
                if any(c != NOT_APPLICABLE for c in cs)  # e.g. a classifier under a retrieval robustness key
            ]  # fmt: skip
            random_row = _random_row(board, key) if task == "retrieval" else None
            if random_row is not None:
                rows.append(random_row)
            lines += [metric_title(key), ""]
            lines += table(["method", "preset", "hardware", *board.datasets], rows) + [""]
            if via is not None and any(c.endswith(VIA_MARK) for r in cells for c in r):
                lines += [
                    f"{VIA_MARK} A retrieval method's space group: that of its top-1 retrieved structure "
                    f"(`{via[0]}/{via[1]}`, test-split pool, which holds the true structure). Not ranked "
                    "against the classifiers: the protocol differs.",
                    "",
                ]
        others = sorted({m for m, _ in board.rows} - {m for m, _ in _serving_rows(board, task, None)})
        if others:
            lines += [f"Not serving `{task}`: {', '.join(others)}.", ""]
    lines += kept_out_section(board)
    lines += ["## Runs", ""]
    run_rows = []
    for (m, d, p), g in sorted(board.groups.items()):
        version = "v" + "/".join(str(v) for v in sorted(g.evaluation_versions))
        for prov in sorted(g.provenance):
            run_rows.append([esc(x) for x in (m, d, p, *prov, version)])
    lines += table(_RUN_HEADER, run_rows) + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    lines += ["## Published (paper's protocol, not comparable)", ""]
    lines += [_PUBLISHED_NOTE, ""]
    header = ["method", "task", "metric", "value", "dataset", "protocol", "paper"]
    lines += table(header, [[esc(x) for x in row] for row in published_rows()]) + [""]
    return "\n".join(lines)
