"""The training loss ratio, bands from several seeds and the band rules of pxrdbench.report.regression, on
synthetic results and bands files (fast: nothing is trained)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from pxrdbench.report.regression import (
    LOSS_RATIO,
    band_problems,
    check_bands,
    final_train_loss,
    loss_ratio,
    make_bands,
    tracked_values,
)

ROOT = Path(__file__).resolve().parents[2]


def _point(stage: str, step: int, train_loss: float | None, val_loss: float = 1.0) -> dict:
    return {"stage": stage, "step": step, "patterns": 16 * step, "epoch": step // 4, "train_loss": train_loss,
            "val_loss": val_loss, "val": {"crystal_system_acc": 0.5}}  # fmt: skip


def _result(curve: list[dict] | None, **metrics: dict) -> dict:
    result: dict = {"metrics": metrics or {"crystal_system": {"accuracy": {"value": 50.0, "n": 6}}}}
    if curve is not None:
        result["training"] = {"stages": [], "curve": curve}
    return result


# --- training/loss_ratio ------------------------------------------------------------------------------------


def test_loss_ratio_is_last_over_first_train_loss_of_the_fit() -> None:
    curve = [_point("fit", 4 * (i + 1), loss) for i, loss in enumerate([4.0, 3.0, 2.5, 2.0, 1.0])]
    values = tracked_values(_result(curve))
    assert values[LOSS_RATIO] == {"value": 0.25, "n": 5, "percent": False}
    assert values["crystal_system/accuracy"] == {"value": 50.0, "n": 6, "percent": True}
    assert final_train_loss(_result(curve)) == 1.0


def test_loss_ratio_uses_the_last_stage_and_skips_points_without_a_train_loss() -> None:
    curve = [
        _point("pretrain", 4, 10.0),
        _point("pretrain", 8, 1.0),
        _point("finetune", 0, None),  # a validation pass before the first training step
        _point("finetune", 4, 5.0),
        _point("finetune", 8, 4.0),
        _point("finetune", 12, 2.0),
    ]
    assert loss_ratio(_result(curve)) == (0.4, 3)
    assert final_train_loss(_result(curve)) == 2.0


@pytest.mark.parametrize(
    "curve",
    [
        None,
        [],
        [_point("fit", 4, 3.0)],
        [_point("fit", 0, None), _point("fit", 4, 3.0)],
        [_point("fit", 4, 0.0), _point("fit", 8, 0.0)],
    ],  # fmt: skip
    ids=["no training block", "baseline (empty curve)", "one point", "one loss", "zero first loss"],
)
def test_loss_ratio_is_absent_without_two_training_losses(curve) -> None:
    assert loss_ratio(_result(curve)) is None
    assert LOSS_RATIO not in tracked_values(_result(curve))


# --- bands from several seeds -------------------------------------------------------------------------------


def _values(**values: tuple[float, int, bool]) -> dict:
    return {k.replace("__", "/"): {"value": v, "n": n, "percent": p} for k, (v, n, p) in values.items()}


def test_bands_need_three_seeds() -> None:
    two = {s: _values(training__loss_ratio=(0.3, 10, False)) for s in (0, 1)}
    with pytest.raises(ValueError, match="at least 3 seeds"):
        make_bands(two)


def test_band_is_mean_plus_minus_three_sigma_with_stated_floors() -> None:
    per_seed = {
        0: _values(training__loss_ratio=(0.30, 10, False), retrieval__top1=(50.0, 6, True),
                   lattice__length_mae=(2.0, 6, False)),
        1: _values(training__loss_ratio=(0.40, 10, False), retrieval__top1=(50.0, 6, True),
                   lattice__length_mae=(2.0, 6, False)),
        2: _values(training__loss_ratio=(0.50, 10, False), retrieval__top1=(50.0, 6, True),
                   lattice__length_mae=(2.0, 6, False)),
    }  # fmt: skip
    bands = make_bands(per_seed)
    ratio = bands[LOSS_RATIO]
    assert ratio["mean"] == pytest.approx(0.4) and ratio["std"] == pytest.approx(0.1)
    assert ratio["band"] == pytest.approx([0.1, 0.7])  # 3σ = 0.3 > floor 2 % of 0.4
    assert (ratio["n"], ratio["seeds"], ratio["percent"]) == (10, [0, 1, 2], False)
    top1 = bands["retrieval/top1"]
    assert top1["std"] == 0.0 and top1["band"] == pytest.approx([50 - 100 / 6, 50 + 100 / 6])  # one item
    assert bands["lattice/length_mae"]["band"] == pytest.approx([1.96, 2.04])  # 2 % of the mean
    tiny = make_bands({s: _values(x__mean_rank=(0.0, 6, False)) for s in (0, 1, 2)})
    assert tiny["x/mean_rank"]["band"] == pytest.approx([-1e-3, 1e-3])


def test_a_metric_missing_in_some_seeds_is_an_error() -> None:
    per_seed = {s: _values(retrieval__top1=(50.0, 6, True)) for s in (0, 1, 2)}
    per_seed[2][LOSS_RATIO] = {"value": 0.3, "n": 10, "percent": False}
    with pytest.raises(ValueError, match=r"training/loss_ratio: .*missing in seeds \[0, 1\]"):
        make_bands(per_seed)


def test_check_bands_reads_the_new_format_and_rejects_the_old_one() -> None:
    bands = make_bands({s: _values(retrieval__top1=(50.0, 6, True)) for s in (0, 1, 2)})
    on_edge = {"retrieval/top1": {"value": 100 / 3, "n": 6, "percent": True}}  # exactly one item below
    assert check_bands(on_edge, bands) == []
    below = {"retrieval/top1": {"value": 100 / 6, "n": 6, "percent": True}}
    assert check_bands(below, bands) == ["retrieval/top1: 16.6667 outside [33.3333, 66.6667]"]
    with pytest.raises(ValueError, match="old .* format: re-run scripts/update_reference_bands.py"):
        check_bands(on_edge, {"retrieval/top1": [33.3, 66.7]})


# --- band rules ---------------------------------------------------------------------------------------------


def _entry(mean: float, half: float, n: int, percent: bool, std: float | None = None) -> dict:
    std = half / 3 if std is None else std
    return {"band": [mean - half, mean + half], "mean": mean, "std": std, "n": n, "seeds": [0, 1, 2],
            "percent": percent}  # fmt: skip


def _baselines() -> dict:
    return {
        "chance_tiny": {
            "experimental_rruff908/crystal_system/accuracy": _entry(14.3, 3.0, 64, True),
            "crystal_system/accuracy": _entry(14.3, 100 / 6, 6, True),
            "lattice/length_mae": _entry(1.7, 0.05, 6, False),
            "retrieval/top1": _entry(16.7, 100 / 6, 6, True),
        },
        "majority_tiny": {
            "experimental_rruff908/crystal_system/accuracy": _entry(25.0, 100 / 64, 64, True, std=0.0),
            "crystal_system/accuracy": _entry(33.3, 100 / 6, 6, True, std=0.0),
            "lattice/length_mae": _entry(1.7, 0.05, 6, False),
        },
        # a nearest-neighbour baseline: not a learned model, so not held to the rules
        "pattern_nn_tiny": {"crystal_system/accuracy": _entry(20.0, 100 / 6, 6, True)},
    }


def _file(**models: dict) -> dict:
    return {**_baselines(), **models}


def test_a_learned_model_with_a_falling_loss_passes() -> None:
    model = {
        LOSS_RATIO: _entry(0.30, 0.06, 10, False),
        "crystal_system/accuracy": _entry(
            33.3, 100 / 6, 6, True
        ),  # n = 6 separates nothing: may contain both
        "lattice/length_mae": _entry(100.0, 5.0, 6, False),  # worse than chance: allowed, but tells nothing
    }
    assert band_problems(_file(alphadiffract_tiny=model)) == []


def test_a_separating_band_that_contains_chance_is_rejected() -> None:
    """n = 64: a mean of 40 % is 25.7 points from chance's 14.3 %, 3·se = 13.1: a (hand-widened) band must not
    reach 14.3."""
    model = {
        LOSS_RATIO: _entry(0.30, 0.06, 10, False),
        "experimental_rruff908/crystal_system/accuracy": _entry(40.0, 30.0, 64, True, std=2.0),
    }
    se = 100 * math.sqrt(0.143 * 0.857 / 64)
    assert band_problems(_file(alphadiffract_tiny=model)) == [
        "alphadiffract_tiny experimental_rruff908/crystal_system/accuracy: band [10, 70] contains chance value "
        f"14.3 although n=64 separates them (|mean−b| = 25.7 ≥ 3·se = {3 * se:.4g})"
    ]


def test_a_mean_the_seeds_scatter_widely_does_not_separate() -> None:
    """Same mean and n, but the seeds' σ (10 points) exceeds the binomial error: 3σ = 30 > 25.7, so the band may
    contain chance (it is not counted as separating either)."""
    model = {
        LOSS_RATIO: _entry(0.30, 0.06, 10, False),
        "experimental_rruff908/crystal_system/accuracy": _entry(40.0, 30.0, 64, True),
    }
    assert band_problems(_file(alphadiffract_tiny=model)) == []


def test_a_loss_ratio_band_that_reaches_one_is_rejected_when_the_seeds_separate_it() -> None:
    model = {LOSS_RATIO: {**_entry(0.30, 0.06, 10, False), "band": [0.2, 1.05]}}  # a hand-widened band
    problems = band_problems(_file(den_kan_tiny=model))
    assert problems[0] == (
        "den_kan_tiny training/loss_ratio: band [0.2, 1.05] contains no-learning value 1 although n=10 separates "
        "them (|mean−b| = 0.7 ≥ 3·se = 0.06)"
    )
    assert problems[1].startswith("den_kan_tiny: no band separates it from chance/majority")


def test_a_model_whose_loss_does_not_fall_cannot_pass() -> None:
    model = {LOSS_RATIO: _entry(0.97, 0.15, 10, False), "retrieval/top1": _entry(16.7, 100 / 6, 6, True)}
    assert band_problems(_file(wa_kan_tiny=model)) == [
        "wa_kan_tiny: no band separates it from chance/majority — the ci run cannot tell a model that does not "
        "learn"
    ]


def test_separating_from_chance_but_not_from_majority_does_not_count() -> None:
    """A classifier that collapses to the majority class does not learn either."""
    model = {"experimental_rruff908/crystal_system/accuracy": _entry(30.0, 100 / 64, 64, True)}
    problems = band_problems(_file(alphadiffract_tiny=model))
    assert problems == [
        "alphadiffract_tiny: no band separates it from chance/majority — the ci run cannot tell a model that "
        "does not learn"
    ]
    model = {"experimental_rruff908/crystal_system/accuracy": _entry(50.0, 100 / 64, 64, True)}
    assert band_problems(_file(alphadiffract_tiny=model)) == []


def test_separating_on_the_worse_side_does_not_count() -> None:
    model = {"lattice/length_mae": _entry(100.0, 5.0, 6, False), LOSS_RATIO: _entry(0.99, 0.03, 10, False)}
    assert band_problems(_file(alphadiffract_tiny=model))[-1].startswith(
        "alphadiffract_tiny: no band separates it from chance/majority"
    )
    better = {"lattice/length_mae": _entry(0.5, 0.05, 6, False)}
    assert band_problems(_file(alphadiffract_tiny=better)) == []


def test_old_format_and_missing_baselines_are_reported() -> None:
    old = {**_baselines(), "alphadiffract_tiny": {LOSS_RATIO: [0.2, 0.4]}}
    assert band_problems(old) == [
        "alphadiffract_tiny training/loss_ratio: band in the old [lo, hi] list format: re-run "
        "scripts/update_reference_bands.py (bands from >= 3 seeds)"
    ]
    old_baseline = {**_baselines(), "chance_tiny": {"retrieval/top1": [0.0, 33.3]}}
    assert band_problems(old_baseline)[0].startswith("chance_tiny retrieval/top1: band in the old")
    no_majority = {k: v for k, v in _baselines().items() if k != "majority_tiny"}
    assert band_problems(no_majority) == [
        "majority_tiny: missing from the bands file; the band rules need its values"
    ]


# --- the update script --------------------------------------------------------------------------------------


def _script():
    spec = importlib.util.spec_from_file_location(
        "update_reference_bands", ROOT / "scripts/update_reference_bands.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_update_script_runs_every_seed_and_writes_the_new_format(monkeypatch, tmp_path, capsys) -> None:
    script = _script()
    calls: list[tuple[str, int]] = []

    def fake_run_ci(model: str, workdir: Path, **overrides) -> dict:
        seed = overrides["seed"]
        calls.append((model, seed))
        curve = [_point("fit", 4, 4.0), _point("fit", 8, 1.0 + 0.1 * seed)]
        return _result(curve, retrieval={"top1": {"value": 100.0, "n": 6}})

    saved: dict = {}
    monkeypatch.setattr(script, "run_ci", fake_run_ci)
    monkeypatch.setattr(script, "load_bands", lambda: _baselines())
    monkeypatch.setattr(script, "save_bands", saved.update)
    assert script.main(["den_kan_tiny"]) == 0
    assert calls == [("den_kan_tiny", 0), ("den_kan_tiny", 1), ("den_kan_tiny", 2)]
    ratio = saved["den_kan_tiny"][LOSS_RATIO]
    assert ratio["seeds"] == [0, 1, 2] and ratio["mean"] == pytest.approx(0.275) and not ratio["percent"]
    assert saved["chance_tiny"] == _baselines()["chance_tiny"]
    with pytest.raises(SystemExit):
        script.parse_args(["den_kan_tiny", "--seeds", "0", "1"])
    assert "at least 3 distinct seeds" in capsys.readouterr().err
    assert script.parse_args(["--seeds", "3", "4", "5"]).seeds == [3, 4, 5]
