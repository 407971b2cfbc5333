"""Every registered tiny model trains the ci preset on a fixed subset: deterministic, and inside the committed
reference bands (see pxrdbench.report.regression)."""

from __future__ import annotations

import pytest

from pxrdbench.report.regression import (
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
    values = tracked_values(result)
    assert values, f"{model}: no tracked metric in the results"
    problems = check_bands(values, BANDS[model], not_evaluated(result))
    assert not problems, f"{model} left its reference bands:\n" + "\n".join(problems)


def test_ci_run_is_deterministic(use_regression_cache, tmp_path) -> None:
    first = run_ci("alphadiffract_tiny", tmp_path / "a")
    second = run_ci("alphadiffract_tiny", tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    assert first["dataset"] == second["dataset"]


def test_a_band_of_an_experimental_set_that_is_absent_here_is_skipped_not_lost() -> None:
    bands = {"experimental_rruff908/crystal_system/accuracy": [10.0, 12.0], "retrieval/top1": [0.0, 20.0]}
    values = {"retrieval/top1": {"value": 10.0, "n": 6, "percent": True}}
    absent = {"notes": "command: x; experimental_rruff908 not evaluated: RRUFF-908 file not found"}
    assert check_bands(values, bands, not_evaluated(absent)) == []
    assert check_bands(values, bands, not_evaluated({"notes": ""})) == [
        "experimental_rruff908/crystal_system/accuracy: missing from the results (band [10, 12])"
    ]
