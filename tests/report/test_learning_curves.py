"""The leaderboard reads the results files' ``training`` block: truncated runs are kept out of the rankings, legacy
wall-clock runs are flagged, and the task pages embed the learning curves of ``training.curve``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pxrdbench.report.leaderboard import build_leaderboard, load_board
from pxrdbench.report.leaderboard.learning_curves import caption, curve_plots
from pxrdbench.report.leaderboard.training import budget_patterns, kept_out_reason, training_columns
from pxrdbench.report.results import write_results

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bench"
BUDGET = 28_800


def _training(curve: list[dict[str, Any]], *, truncated: bool = False, seen: int = BUDGET) -> dict[str, Any]:
    """A ``training`` block exactly as SPEC_training_record.md describes it (pattern budget of 28,800)."""
    return {
        "stages": [{"stage": "fit", "seed": 0, "steps": seen // 64, "epochs": 36, "patterns": seen}],
        "patterns_seen": seen,
        "steps": seen // 64,
        "epochs": seen / 800,
        "wall_time_s": 1620.4,
        "truncated": truncated,
        "budget": {
            "kind": "train_patterns",
            "train_patterns": BUDGET,
            "epochs": None,
            "max_steps": BUDGET // 64,
            "global_batch": 64,
            "family": "classifier",
            "schedule": {"name": "warmup_cosine", "warmup_fraction": 0.05, "min_lr_fraction": 0.0},
        },
        "lr": {"peak_lr": 0.0006, "source": "config", "procedure": "config", "sweep": []},
        "curve": curve,
    }


def _point(step: int, **val: float) -> dict[str, Any]:
    return {"stage": "fit", "step": step, "patterns": step * 64, "epoch": step * 64 // 800,
            "train_loss": 4.0 / step, "val_loss": 3.0 / step, "val": val}  # fmt: skip


def _fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


def _results(directory: Path) -> Path:
    """Five runs on toy_a/toy_b: two trained with curves, a truncated one (the best top1 if it were ranked), a
    baseline under the pattern-budget format (empty curve), and a legacy wall-clock run (no ``training``)."""
    runs = []
    alpha = _fixture("alphadiffract__toy_a__ci__seed0")
    alpha["training"] = _training(
        [_point(s, crystal_system_acc=0.1 * s / 45, space_group_acc=0.05 * s / 45, lattice_length_mae=9.0 - s / 90)
         for s in (45, 90, 180, 450)]
    )  # fmt: skip
    runs.append(alpha)
    den_kan = _fixture("den_kan__toy_a__ci__seed0")
    den_kan["training"] = _training([_point(s, retrieval_top1=0.2 + s / 1000) for s in (45, 225, 450)])
    runs.append(den_kan)
    xtalnet = _fixture("xtalnet_cpcp__toy_a__ci__seed0")
    xtalnet["metrics"]["retrieval"]["top1"]["value"] = 99.0
    xtalnet["training"] = _training([_point(45, retrieval_top1=0.9)], truncated=True, seen=12_800)
    runs.append(xtalnet)
    majority = _fixture("majority_class__toy_a__ci__seed0")
    majority["training"] = _training([], seen=800) | {"lr": None}
    majority["training"]["budget"] |= {"kind": "baseline", "family": "baseline", "train_patterns": None}
    runs.append(majority)
    runs.append(_fixture("alphadiffract__toy_b__ci__seed0"))  # legacy: no training block
    directory.mkdir(parents=True)
    for run in runs:
        write_results(run, directory)
    return directory


def _build(tmp_path: Path, name: str) -> Path:
    out = tmp_path / name / "board"
    build_leaderboard(_results(tmp_path / name / "results"), out, figures=True)
    return out


def test_training_fields_are_read_as_the_spec_says() -> None:
    run = _fixture("xtalnet_cpcp__toy_a__ci__seed0")
    run["training"] = _training([], truncated=True, seen=12_800)
    assert kept_out_reason(run) == "stopped by the wall-clock safety limit after 12,800 of 28,800 patterns"
    assert training_columns(run) == ("12,800", "16.00", "1,620 s")
    run["training"]["budget"] |= {"train_patterns": None, "max_steps": None, "epochs": 2}
    assert budget_patterns(run) == 2 * run["dataset"]["n_train"]
    legacy = _fixture("alphadiffract__toy_b__ci__seed0")
    assert kept_out_reason(legacy) is None and training_columns(legacy) == ("—", "—", "12 s")


def test_truncated_runs_are_kept_out_and_legacy_runs_are_flagged(tmp_path: Path) -> None:
    out = _build(tmp_path, "a")
    readme = (out / "README.md").read_text(encoding="utf-8")
    kept = readme[readme.index("## Runs kept out of the rankings") : readme.index("## Runs\n")]
    assert (
        "| xtalnet_cpcp | toy_a | ci | 0 | stopped by the wall-clock safety limit after 12,800 of 28,800 "
        in kept
    )
    ranked = readme.replace(kept, "")
    assert "xtalnet_cpcp" not in ranked.split("## Published")[0] and "99.00" not in readme
    assert "(1 kept out of the rankings, see below)" in readme
    for page in (out / "tasks").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "xtalnet_cpcp" not in text and "99.00" not in text
    legacy = next(line for line in readme.splitlines() if "wall-clock budget (legacy preset)" in line)
    assert "alphadiffract / toy_b / ci" in legacy and "alphadiffract / toy_a / ci" not in legacy
    assert "not comparable across machines" in legacy
    runs = readme[readme.index("## Runs\n") :]
    assert "| budget | patterns seen | epochs | wall time |" in runs
    assert "| train_patterns | 28,800 | 36.00 | 1,620 s |" in runs
    assert "| wall clock (legacy) | — | — | 12 s |" in runs


def test_learning_curves_are_drawn_and_embedded_in_the_task_pages(tmp_path: Path) -> None:
    out = _build(tmp_path, "a")
    names = sorted(p.name for p in (out / "figures").glob("learning_curve__*.png"))
    assert names == [
        "learning_curve__crystal_system__toy_a.png",
        "learning_curve__lattice__toy_a.png",
        "learning_curve__retrieval__toy_a.png",
        "learning_curve__space_group__toy_a.png",
    ]  # fmt: skip  (no curve from the truncated run, the baseline or the legacy toy_b run)
    for name in names:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "tasks" / "crystal_system.md").read_text(encoding="utf-8")
    toy_a = page[page.index("## toy_a") : page.index("## toy_b")]
    ref = "![learning_curve__crystal_system__toy_a](../figures/learning_curve__crystal_system__toy_a.png)"
    assert ref in toy_a and caption("crystal_system") in toy_a
    assert "learning_curve" not in page[page.index("## toy_b") :]
    retrieval = (out / "tasks" / "retrieval.md").read_text(encoding="utf-8")
    assert "in-batch top-1 on the validation split" in retrieval
    plots = {(p.task, p.dataset): p for p in curve_plots(load_board(tmp_path / "a" / "results"))}
    cs = plots[("crystal_system", "toy_a")]
    assert {r["label"] for r in cs.records} == {"alphadiffract (ci)"}
    assert [round(r["value"], 6) for r in cs.records] == [10.0, 20.0, 40.0, 100.0]  # fractions shown as %
    assert [r["value"] for r in plots[("lattice", "toy_a")].records][0] == 8.5  # Å, unscaled
    assert {r["label"] for r in plots[("retrieval", "toy_a")].records} == {"den_kan (ci)"}


def test_build_is_deterministic(tmp_path: Path) -> None:
    a, b = _build(tmp_path, "a"), _build(tmp_path, "b")
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
