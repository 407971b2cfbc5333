"""The committed leaderboard markdown is exactly what `pxrdbench leaderboard` writes from the committed results."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pxrdbench.report.leaderboard import build_leaderboard

BOARD = Path(__file__).resolve().parents[2] / "leaderboards"


@pytest.mark.skipif(
    not (BOARD / "results").is_dir(), reason="no committed leaderboards/results in this checkout"
)
def test_committed_markdown_is_regenerated_from_committed_results(tmp_path: Path) -> None:
    shutil.copytree(BOARD / "results", tmp_path / "results")  # same relative layout as the committed board
    build_leaderboard(tmp_path / "results", tmp_path, figures=True)
    fresh = {
        str(p.relative_to(tmp_path)): p.read_text(encoding="utf-8") for p in sorted(tmp_path.rglob("*.md"))
    }
    committed = {
        str(p.relative_to(BOARD)): p.read_text(encoding="utf-8") for p in sorted(BOARD.rglob("*.md"))
    }
    assert fresh.keys() == committed.keys()
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"leaderboard markdown out of date, run `pxrdbench leaderboard`: {stale}"
