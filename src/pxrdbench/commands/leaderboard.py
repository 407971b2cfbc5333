"""``pxrdbench leaderboard``: regenerate leaderboards/ from leaderboards/results/*.json (a pure function of them)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="leaderboards/results", help="directory of results *.json files")
    parser.add_argument(
        "--out", default="leaderboards", help="output directory (README.md, tasks/, figures/)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write the markdown only")


def run(args: argparse.Namespace) -> int:
    from pxrdbench.report.leaderboard import build_leaderboard

    for path in build_leaderboard(args.results, args.out, figures=not args.no_figures):
        print(path)
    return 0
