"""The leaderboard: a pure function of ``results/*.json`` → markdown tables (byte-identical) and figures.

``build_leaderboard(results_dir, out_dir)`` writes ``README.md`` (one overview table per task headline metric:
rows = method × preset, columns = datasets), ``tasks/<task>.md`` (every metric of the task) and
``figures/*.png``. Same inputs give byte-identical markdown: no timestamps, everything sorted.

Cell rules: "—" = no result for a task the method declares it can serve; "n/a" = the method cannot serve
the task (absent from its ``method.tasks``); a value is shown with its 95 % CI as stored, or as mean ± std
(sample std) when several seeds' files exist for one (method, dataset, preset). Nothing is ever averaged
across tasks or datasets. Best per column is bold, by the metric's direction declared in ``evaluation/tasks``.
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pxrdbench.report.published import published_rows
from pxrdbench.report.results import load_all
from pxrdbench.tasks.metrics.bootstrap import seed_summary
from pxrdbench.tasks.specs import TASKS, get_task, headline_keys, metric_spec

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
]
_PUBLISHED_NOTE = (
    "The papers' own numbers under their own data, splits, pools and budgets. They are **not** comparable "
    "with the tables above and never enter a ranking."
)
MISSING = "—"
NOT_APPLICABLE = "n/a"
_ARROW = {"higher": "↑ higher is better", "lower": "↓ lower is better", None: "informational, not ranked"}
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
            if eff[k] is not None
        }
    return metrics


def aggregate_runs(results: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str], RunGroup]:
    """Group results by (method, dataset, preset); several files of one group are aggregated as mean ± std."""
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
        ds = res["dataset"]
        seeds = ",".join(str(s) for s in res["seeds"])
        commit = res["git_commit"] + (" (dirty)" if res.get("git_dirty") else "")
        group.provenance.add(
            (seeds, res["method"]["config_hash"], ds["cache_hash"], ds["split_hash"], commit, res["date"])
        )
        for task, per_task in _entries(res).items():
            for metric, entry in per_task.items():
                values[key][(task, metric)].append(entry)
    for key, per_metric in values.items():
        for (task, metric), entries in per_metric.items():
            groups[key].metrics.setdefault(task, {})[metric] = _aggregate(entries)
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


def _esc(text: str) -> str:
    return str(text).replace("|", "\\|")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_esc(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


class Board:
    """The aggregated view the markdown and figures are drawn from."""

    def __init__(self, results: Sequence[dict[str, Any]]) -> None:
        self.n_files = len(results)
        self.groups = aggregate_runs(results)
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

    def grid(self, task: str, columns: Sequence[tuple[str, str]]) -> list[list[str]]:
        """Formatted cells (one list per row) for columns of (dataset, metric key); best per column bold."""
        raw = [[self.cell(row, dataset, task, key) for dataset, key in columns] for row in self.rows]
        out = [[c if isinstance(c, str) else "" for c in r] for r in raw]
        for j, (_, key) in enumerate(columns):
            spec = metric_spec(key)
            shown = [round(r[j].value, spec.decimals) for r in raw if isinstance(r[j], Cell)]
            best = None
            if shown and spec.direction is not None:
                best = max(shown) if spec.direction == "higher" else min(shown)
            for i, r in enumerate(raw):
                if isinstance(r[j], Cell):
                    is_best = best is not None and round(r[j].value, spec.decimals) == best
                    out[i][j] = format_cell(r[j], key, bold=is_best)
        return out


def _legend() -> list[str]:
    return [
        "Cells: `value [low, high]` = the run's 95 % bootstrap CI over test items; `mean ± std (k seeds)` = "
        "several seeds' results files of one (method, dataset, preset), sample std (ddof = 1). "
        f"`{MISSING}` = no result yet; `{NOT_APPLICABLE}` = the method cannot serve this task. "
        "**Bold** = best in its column by the metric's declared direction. No number is ever averaged across "
        "tasks or datasets.",
        "",
    ]


VIA_MARK = "†"
VIA_RETRIEVAL: dict[tuple[str, str], tuple[str, str]] = {
    ("space_group", "accuracy"): ("retrieval", "space_group_via_top1/accuracy"),
}
"""Overview cells a retrieval method fills from another task's metric (XCCP reports the space group of the
top-1 structure as its space-group accuracy), marked with :data:`VIA_MARK`."""


def _fill_via_retrieval(board: Board, cells: list[list[str]], via: tuple[str, str]) -> list[list[str]]:
    """Replace "n/a" cells of methods that cannot classify by their retrieval-derived value (never bold)."""
    out = []
    for row, row_cells in zip(board.rows, cells, strict=True):
        filled = []
        for dataset, cell in zip(board.datasets, row_cells, strict=True):
            derived = board.cell(row, dataset, *via) if cell == NOT_APPLICABLE else None
            filled.append(
                format_cell(derived, via[1]) + f" {VIA_MARK}" if isinstance(derived, Cell) else cell
            )
        out.append(filled)
    return out


def _metric_title(key: str) -> str:
    spec = metric_spec(key)
    unit = f", {spec.unit}" if spec.unit else ""
    return f"`{key}` ({_ARROW[spec.direction]}{unit})"


def render_readme(board: Board, results_ref: str, figures: list[str]) -> str:
    """The overview markdown: task headline tables, runs, figures, the published (non-comparable) table."""
    lines = ["# pxrdbench leaderboard", ""]
    source = f"Generated by `pxrdbench leaderboard` from {board.n_files} results files in `{results_ref}`."
    lines += [f"{source} Do not edit by hand; regenerate it.", ""]
    lines += _legend()
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
        for key in headline_keys(task, board.metric_keys(task)):
            cells = board.grid(task, [(d, key) for d in board.datasets])
            via = VIA_RETRIEVAL.get((task, key))
            if via is not None:
                cells = _fill_via_retrieval(board, cells, via)
            rows = [
                [_esc(m), _esc(p), _esc(board.hardware((m, p))), *c]
                for (m, p), c in zip(board.rows, cells, strict=True)
            ]
            lines += [_metric_title(key), ""]
            lines += _table(["method", "preset", "hardware", *board.datasets], rows) + [""]
            if via is not None and any(c.endswith(VIA_MARK) for r in cells for c in r):
                lines += [
                    f"{VIA_MARK} A retrieval method's space group: that of its top-1 retrieved structure "
                    f"(`{via[0]}/{via[1]}`, test-split pool, which holds the true structure). Not ranked "
                    "against the classifiers: the protocol differs.",
                    "",
                ]
    lines += ["## Runs", ""]
    run_rows = []
    for (m, d, p), g in sorted(board.groups.items()):
        for prov in sorted(g.provenance):
            run_rows.append([_esc(x) for x in (m, d, p, *prov)])
    lines += _table(_RUN_HEADER, run_rows) + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{Path(f).stem}]({f})" for f in figures] + [""]
    lines += ["## Published (paper's protocol, not comparable)", ""]
    lines += [_PUBLISHED_NOTE, ""]
    header = ["method", "task", "metric", "value", "dataset", "protocol", "paper"]
    lines += _table(header, [[_esc(x) for x in row] for row in published_rows()]) + [""]
    return "\n".join(lines)


def render_task(board: Board, task: str) -> str:
    """Detail markdown of one task (see :mod:`pxrdbench.report.leaderboard_pages`)."""
    from pxrdbench.report.leaderboard_pages import render_task_page

    return render_task_page(board, task)


def build_leaderboard(
    results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, figures: bool = True
) -> list[Path]:
    """Regenerate the leaderboard in ``out_dir`` from ``results_dir/*.json``; return written paths, sorted."""
    board = Board(load_all(results_dir))
    out = Path(out_dir)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    written: list[Path] = []
    if figures:
        from pxrdbench.report.plots import write_leaderboard_figures  # seaborn/matplotlib only when drawing

        for stale in sorted(fig_dir.glob("*.png")):
            stale.unlink()
        written += write_leaderboard_figures(board.groups, fig_dir)
    for task in TASKS:
        path = out / "tasks" / f"{task}.md"
        path.write_text(render_task(board, task), encoding="utf-8")
        written.append(path)
    results_ref = Path(os.path.relpath(Path(results_dir).resolve(), out.resolve())).as_posix()
    fig_refs = [p.relative_to(out).as_posix() for p in written if p.suffix == ".png"]
    readme = out / "README.md"
    readme.write_text(render_readme(board, results_ref, fig_refs), encoding="utf-8")
    return sorted([readme, *written])


def main(argv: Sequence[str] | None = None) -> int:
    """``pxrdbench leaderboard [--results DIR] [--out DIR] [--no-figures]``."""
    parser = argparse.ArgumentParser(prog="pxrdbench leaderboard", description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="leaderboards/results", help="directory of results *.json files")
    parser.add_argument(
        "--out", default="leaderboards", help="output directory (README.md, tasks/, figures/)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write the markdown only")
    args = parser.parse_args(argv)
    for path in build_leaderboard(args.results, args.out, figures=not args.no_figures):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
