"""The runner trains K independently seeded members when a preset asks for an ensemble and evaluates their
averaged probabilities (AlphaDiffract's 10-model ensemble, here K = 2 on the ci subset)."""

from __future__ import annotations

import dataclasses

from pxrdbench.models.registry import count_parameters, create_model
from pxrdbench.report.regression import run_ci
from pxrdbench.run import bench as runner
from pxrdbench.run.settings import load_preset


def test_two_member_ensemble(use_regression_cache, tmp_path, monkeypatch) -> None:
    ci = load_preset("ci")
    two = dataclasses.replace(ci, budget={**ci.budget, "ensemble": 2})
    monkeypatch.setattr(runner, "load_preset", lambda name: two)
    result = run_ci("alphadiffract_tiny", tmp_path)
    assert (tmp_path / "runs" / "alphadiffract_tiny__amcsd__ci__seed0" / "member1" / "checkpoints").is_dir()
    one = result["method"]["config"]["model"]
    member_parameters = count_parameters(create_model("alphadiffract_tiny", **one))
    assert result["efficiency"]["parameters"] == 2 * member_parameters
    assert 0.0 <= result["metrics"]["crystal_system"]["accuracy"]["value"] <= 100.0
