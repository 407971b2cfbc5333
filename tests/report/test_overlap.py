"""The leaderboard's RRUFF ↔ AMCSD overlap section and its histogram figure, on small hand-written results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pxrdbench.report.leaderboard.overlap import HEADING, rruff_overlap_section
from pxrdbench.tasks.rruff_overlap import (
    OVERLAP_BINS,
    OVERLAP_THRESHOLD,
    REFERENCE_PREFIX,
    SIMILARITY_PREFIX,
    histogram_key,
    similarity_block,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bench"


def _entry(value: float, n: int, ci: list[float] | None = None) -> dict[str, Any]:
    return {"value": value, "ci95": ci, "n": n, "std": None}


def _result(method: str, metrics: dict[str, Any], seeds: tuple[int, ...] = (0,)) -> dict[str, Any]:
    return {
        "method": {"name": method, "tasks": ["crystal_system", "space_group", "experimental_rruff908"]},
        "dataset": {"name": "amcsd"},
        "preset": {"name": "quick"},
        "seeds": list(seeds),
        "metrics": {"experimental_rruff908": metrics},
    }


def _old_rruff() -> dict[str, Any]:
    return {
        "crystal_system/accuracy": _entry(41.0, 454, [36.6, 45.6]),
        "space_group/accuracy": _entry(32.4, 454, [28.2, 36.8]),
    }


def _new_rruff(rng_seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(rng_seed)
    similarity = rng.beta(8, 2, size=454)
    reference = rng.beta(5, 2, size=90)
    metrics = _old_rruff()
    metrics |= similarity_block(similarity, SIMILARITY_PREFIX, threshold=OVERLAP_THRESHOLD, n_boot=50)
    metrics |= similarity_block(
        reference, REFERENCE_PREFIX, threshold=OVERLAP_THRESHOLD, n_boot=50, intervals=False
    )
    n_low = int((similarity < OVERLAP_THRESHOLD).sum())
    metrics["low_overlap/crystal_system/accuracy"] = _entry(12.5, n_low, [8.0, 17.0])
    metrics["low_overlap/space_group/accuracy"] = _entry(3.25, n_low, [1.0, 6.0])
    return metrics


def test_without_overlap_entries_the_section_is_the_note() -> None:
    old = json.loads((FIXTURES / "alphadiffract__toy_a__ci__seed0.json").read_text(encoding="utf-8"))
    for results in ([], [old], [_result("pattern_nn", _old_rruff())]):
        lines = rruff_overlap_section(results)
        text = "\n".join(lines)
        assert lines[0] == HEADING
        assert "AMCSD" in text and "RRUFF project's own structure database" in text
        assert "not generalisation to unseen minerals" in text
        assert "no RRUFF ids, mineral names or cells" in text
        assert f"below {OVERLAP_THRESHOLD:g}" in text
        assert "No results file carries the overlap measurement yet" in text
        assert not any(line.startswith("|") for line in lines)


def test_with_overlap_entries_the_section_tabulates_full_vs_low_overlap() -> None:
    metrics = _new_rruff()
    n_low = metrics["low_overlap/crystal_system/accuracy"]["n"]
    results = [
        _result("pattern_nn", metrics),
        _result("majority", _old_rruff()),
        _result("alphadiffract", metrics),
    ]
    lines = rruff_overlap_section(results)
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 3  # header + the two files that carry the overlap entries, sorted by method
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    assert header[:4] == ["method (preset)", "dataset", "seeds", "n"]
    assert "low_overlap/crystal_system/accuracy" in header and "n low overlap" in header
    first, second = ([c.strip() for c in row.strip("|").split("|")] for row in rows[1:])
    assert first[0] == "alphadiffract (quick)" and second[0] == "pattern_nn (quick)"
    cells = dict(zip(header, second, strict=True))
    assert cells["n"] == "454" and cells["n low overlap"] == str(n_low)
    assert cells["crystal_system/accuracy"] == "41.00 [36.60, 45.60]"
    assert cells["low_overlap/space_group/accuracy"] == "3.25 [1.00, 6.00]"
    median = metrics[f"{SIMILARITY_PREFIX}median"]["value"]
    assert cells["median max train similarity (RRUFF)"].startswith(f"{median:.3f} [")
    assert (
        cells["median max train similarity (test split)"]
        == f"{metrics[f'{REFERENCE_PREFIX}median']['value']:.3f}"
    )
    assert rruff_overlap_section(list(reversed(results))) == lines  # deterministic


def test_a_run_without_low_overlap_patterns_shows_zero() -> None:
    metrics = {k: v for k, v in _new_rruff().items() if not k.startswith("low_overlap/")}
    lines = rruff_overlap_section([_result("pattern_nn", metrics)])
    cells = [
        c.strip()
        for c in lines[[i for i, x in enumerate(lines) if x.startswith("| ")][1]].strip("|").split("|")
    ]
    assert cells[6] == "0" and cells[7] == "—"


def test_the_histogram_figure_is_drawn_from_a_results_file(tmp_path: Path) -> None:
    pytest.importorskip("seaborn")
    from pxrdbench.report.plots import rruff_overlap_figure

    metrics = _new_rruff()
    assert sum(metrics[histogram_key(SIMILARITY_PREFIX, k)]["value"] for k in range(OVERLAP_BINS)) == 454
    path = tmp_path / "results.json"
    path.write_text(json.dumps(_result("pattern_nn", metrics)), encoding="utf-8")
    out = rruff_overlap_figure(path, tmp_path / "figures" / "rruff_overlap.png")
    assert out == tmp_path / "figures" / "rruff_overlap.png" and out.stat().st_size > 1000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rruff_overlap_figure(_result("majority", _old_rruff()), tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()
