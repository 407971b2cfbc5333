"""The leaderboard: a pure function of ``results/*.json`` → markdown tables (byte-identical) and figures.

``build_leaderboard(results_dir, out_dir)`` writes ``README.md`` (one overview table per task headline metric:
rows = method × preset, columns = datasets), ``tasks/<task>.md`` (every metric of the task) and
``figures/*.png``. Same inputs give byte-identical markdown: no timestamps, everything sorted.

Cell rules: "—" = no result for a task the method declares it can serve; "n/a" = the method cannot serve
the task (absent from its ``method.tasks``); a value is shown with its 95 % CI as stored, or as mean ± std
(sample std) when several seeds' files exist for one (method, dataset, preset). Nothing is ever averaged
across tasks or datasets. Best per column is bold, by the metric's direction declared in ``evaluation/tasks``.

Modules: :mod:`.board` (results files → the aggregated :class:`~.board.Board`), :mod:`.markdown` (cell and
table formatting), :mod:`.overview` (``README.md``), :mod:`.task_pages` (``tasks/<task>.md``), :mod:`.training`
(what a results file's ``training`` block says: kept-out and legacy runs), :mod:`.learning_curves` (the task pages'
learning curves, drawn by :mod:`pxrdbench.report.curves`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from pxrdbench.report.leaderboard.board import MISSING, NOT_APPLICABLE, Board, Cell, load_board
from pxrdbench.report.leaderboard.learning_curves import curve_plots
from pxrdbench.report.leaderboard.overview import render_readme
from pxrdbench.report.leaderboard.task_pages import render_task_page
from pxrdbench.tasks.specs import TASKS

__all__ = ["MISSING", "NOT_APPLICABLE", "Board", "Cell", "build_leaderboard", "main"]


def _overlap_figures(board: Board, fig_dir: Path) -> list[Path]:
    """One RRUFF-overlap histogram per (dataset, view), from the first results file (sorted by name) carrying it."""
    from pxrdbench.report.plots import rruff_overlap_figure
    from pxrdbench.report.results import filename_for

    written: list[Path] = []
    done: set[tuple[str, str]] = set()
    for result in sorted(board.results, key=filename_for):
        config = result["method"]["config"]
        view = str(config.get("view") or config.get("data", {}).get("view", "view"))
        key = (result["dataset"]["name"], view)
        if key in done:
            continue
        path = rruff_overlap_figure(result, fig_dir / f"rruff_overlap__{key[0]}__{key[1]}.png")
        if path is not None:
            written.append(path)
            done.add(key)
    return written


def build_leaderboard(
    results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, figures: bool = True
) -> list[Path]:
    """Regenerate the leaderboard in ``out_dir`` from ``results_dir/*.json``; return written paths, sorted."""
    board = load_board(results_dir)
    out = Path(out_dir)
    (out / "tasks").mkdir(parents=True, exist_ok=True)
    fig_dir = out / "figures"
    written: list[Path] = []
    if figures:
        from pxrdbench.report.plots import write_leaderboard_figures  # seaborn/matplotlib only when drawing

        for stale in sorted(fig_dir.glob("*.png")):
            stale.unlink()
        written += write_leaderboard_figures(board.groups, fig_dir)
        written += _overlap_figures(board, fig_dir)
        from pxrdbench.report.curves import write_learning_curves

        curves = write_learning_curves(curve_plots(board), fig_dir)
    else:
        curves = []
    curve_refs = {p.relative_to(out).as_posix() for p in curves}
    for task in TASKS:
        path = out / "tasks" / f"{task}.md"
        path.write_text(render_task_page(board, task, curve_refs), encoding="utf-8")
        written.append(path)
    results_ref = Path(os.path.relpath(Path(results_dir).resolve(), out.resolve())).as_posix()
    fig_refs = [p.relative_to(out).as_posix() for p in written if p.suffix == ".png"]
    written += curves  # on the task pages, not in README's figure list
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
