"""Every registered tiny model trains the ci preset on a fixed subset: deterministic, and inside the committed
reference bands, which obey the band rules (see pxrdbench.report.regression)."""

from __future__ import annotations

import pytest

from pxrdbench.report.regression import (
    band_problems,
    check_bands,
    load_bands,
    not_evaluated,
    regression_models,
    run_ci,
    tracked_values,
)

BANDS = load_bands()


@pytest.mark.parametrize("model", regression_models())
def test_ci_run_inside_reference_bands(model, use_regression_cache, tmp_path) -> None:
    if model not in BANDS:
        pytest.fail(f"no reference bands for {model}: run scripts/update_reference_bands.py {model}")
    result = run_ci(model, tmp_path)
    assert not result["training"].get("truncated"), (
        f"{model}: the ci safety stop ended training (machine too slow?)"
    )
    values = tracked_values(result)
    assert values, f"{model}: no tracked metric in the results"
    problems = check_bands(values, BANDS[model], not_evaluated(result))
    assert not problems, f"{model} left its reference bands:\n" + "\n".join(problems)


def test_committed_bands_obey_the_rules() -> None:
    """No committed band contains a chance/majority (or no-learning) value that its n separates, and every learned
    model has a band that tells it from a model that does not learn."""
    problems = band_problems(BANDS)
    assert not problems, "the committed reference bands break the band rules:\n" + "\n".join(problems)


def test_ci_run_is_deterministic(use_regression_cache, tmp_path) -> None:
    """Two runs on the same machine: identical metrics, dataset and learning curve (every logged value)."""
    first = run_ci("alphadiffract_tiny", tmp_path / "a")
    second = run_ci("alphadiffract_tiny", tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    assert first["dataset"] == second["dataset"]
    first_curve = (first.get("training") or {}).get("curve")
    second_curve = (second.get("training") or {}).get("curve")
    assert first_curve == second_curve


def _band(lo: float, hi: float, n: int, percent: bool) -> dict:
    return {
        "band": [lo, hi],
        "mean": (lo + hi) / 2,
        "std": 0.0,
        "n": n,
        "seeds": [0, 1, 2],
        "percent": percent,
    }


def test_a_band_of_an_experimental_set_that_is_absent_here_is_skipped_not_lost() -> None:
    bands = {
        "experimental_rruff908/crystal_system/accuracy": _band(10.0, 12.0, 64, True),
        "retrieval/top1": _band(0.0, 20.0, 6, True),
    }
    values = {"retrieval/top1": {"value": 10.0, "n": 6, "percent": True}}
    absent = {"notes": "command: x; experimental_rruff908 not evaluated: RRUFF-908 file not found"}
    assert check_bands(values, bands, not_evaluated(absent)) == []
    assert check_bands(values, bands, not_evaluated({"notes": ""})) == [
        "experimental_rruff908/crystal_system/accuracy: missing from the results (band [10, 12])"
    ]
