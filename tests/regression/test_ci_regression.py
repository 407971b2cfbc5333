"""Every registered tiny model trains the ci preset on a fixed subset: deterministic, and inside the committed
reference bands (see pxrdbench.report.regression)."""

from __future__ import annotations

import pytest

from pxrdbench.report.regression import check_bands, load_bands, regression_models, run_ci, tracked_values

BANDS = load_bands()


@pytest.mark.parametrize("model", regression_models())
def test_ci_run_inside_reference_bands(model, use_regression_cache, tmp_path) -> None:
    if model not in BANDS:
        pytest.fail(f"no reference bands for {model}: run scripts/update_reference_bands.py {model}")
    values = tracked_values(run_ci(model, tmp_path))
    assert values, f"{model}: no tracked metric in the results"
    problems = check_bands(values, BANDS[model])
    assert not problems, f"{model} left its reference bands:\n" + "\n".join(problems)


def test_ci_run_is_deterministic(use_regression_cache, tmp_path) -> None:
    first = run_ci("alphadiffract_tiny", tmp_path / "a")
    second = run_ci("alphadiffract_tiny", tmp_path / "b")
    assert first["metrics"] == second["metrics"]
    assert first["dataset"] == second["dataset"]
