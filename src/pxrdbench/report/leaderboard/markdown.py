"""Markdown helpers of the leaderboard pages: cell formatting, escaping, tables, the shared legend."""

from __future__ import annotations

from collections.abc import Sequence

from pxrdbench.report.leaderboard.board import MISSING, NOT_APPLICABLE, Board, Cell, best_value, is_best
from pxrdbench.tasks.specs import metric_spec

ARROW = {"higher": "↑ higher is better", "lower": "↓ lower is better", None: "informational, not ranked"}


def _fmt(x: float, decimals: int) -> str:
    return f"{x:,.{decimals}f}"


def format_cell(cell: Cell, metric: str, bold: bool = False) -> str:
    """``v [lo, hi]`` for a CI, ``v ± s (k seeds)`` for seeds, ``v`` otherwise; the value bold if ``bold``."""
    d = metric_spec(metric).decimals
    value = f"**{_fmt(cell.value, d)}**" if bold else _fmt(cell.value, d)
    if cell.kind == "ci":
        return f"{value} [{_fmt(cell.low, d)}, {_fmt(cell.high, d)}]"
    if cell.kind == "std":
        seeds = f" ({cell.n_seeds} seeds)" if cell.n_seeds > 1 else ""
        return f"{value} ± {_fmt(cell.value - cell.low, d)}{seeds}"
    return value


def esc(text: str) -> str:
    """``text`` with ``|`` escaped, safe inside a table cell."""
    return str(text).replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Markdown lines of a table; the header is escaped, the rows are taken as formatted."""
    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def legend() -> list[str]:
    """The cell legend at the top of every page."""
    return [
        "Cells: `value [low, high]` = the run's 95 % cluster-bootstrap CI over the test split's groups (a "
        "mineral's series, a compound's polymorphs; measured RRUFF patterns: each its own); `mean ± std (k "
        "seeds)` = several seeds' results files of one (method, dataset, preset), sample std (ddof = 1). "
        "`(> chance, majority; < pattern_nn)` = the baselines whose **paired difference** on the same items "
        "has a 95 % interval wholly better (>) or worse (<) than 0 — how a method is said to beat a baseline "
        "(`<metric>/vs_<baseline>` in the task pages); a baseline not named is not distinguishable. Ties among "
        "scores never favour the truth (expectation under random tie-breaking). "
        f"`{MISSING}` = no result yet; `{NOT_APPLICABLE}` = the method cannot serve this task. "
        "**Bold** = best in its column by the metric's declared direction. No number is ever averaged across "
        "tasks or datasets.",
        "",
    ]


def metric_title(key: str) -> str:
    """The heading of a metric's table: the key, its direction and its unit."""
    spec = metric_spec(key)
    unit = f", {spec.unit}" if spec.unit else ""
    return f"`{key}` ({ARROW[spec.direction]}{unit})"


def grid(
    board: Board,
    task: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[str, str]] | None = None,
) -> list[list[str]]:
    """Formatted cells (one list per row, default every row) for columns of (dataset, metric key); best per
    column bold."""
    raw = board.cells(task, columns, rows)
    out = [[c if isinstance(c, str) else "" for c in r] for r in raw]
    for j, (_, key) in enumerate(columns):
        best = best_value([r[j] for r in raw], key)
        for i, r in enumerate(raw):
            if isinstance(r[j], Cell):
                out[i][j] = format_cell(r[j], key, bold=is_best(r[j], key, best))
    return out
