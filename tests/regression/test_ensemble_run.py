"""The runner trains K independently seeded members when asked for an ensemble (``bench --ensemble K``, a preset's
``ensemble`` or the config's ``Ensemble`` recipe) and evaluates their averaged probabilities (AlphaDiffract's
10-model ensemble, here K = 2 on the ci subset)."""

from __future__ import annotations

import pytest

from pxrdbench.methods.registry import count_parameters, create_method
from pxrdbench.report.regression import run_ci


def _check_two_members(result: dict, runs) -> None:
    assert (runs / "alphadiffract_tiny__amcsd__ci__seed0" / "member1" / "checkpoints").is_dir()
    assert result["method"]["config"]["recipe"] == {"name": "Ensemble", "members": 2}
    assert [s["seed"] for s in result["training"]["stages"]] == [0, 1]
    assert result["efficiency"]["parameters"] == 2 * count_parameters(create_method("alphadiffract_tiny"))
    n_test = result["dataset"]["n_test"]
    for task in ("crystal_system", "space_group"):
        assert result["metrics"][task]["accuracy"]["n"] == n_test  # whole split, no sampler padding


def test_two_member_ensemble(use_regression_cache, tmp_path) -> None:
    result = run_ci("alphadiffract_tiny", tmp_path, ensemble=2)
    _check_two_members(result, tmp_path / "runs")


@pytest.mark.slow
def test_two_member_ensemble_under_two_process_ddp(use_regression_cache, tmp_path) -> None:
    """Every rank trains every member (no rank leaves early), rank 0 evaluates whole splits."""
    single = run_ci("alphadiffract_tiny", tmp_path / "single", ensemble=2, batch_size=32)
    ddp = run_ci(
        "alphadiffract_tiny", tmp_path / "ddp", ensemble=2, batch_size=32, gpus=2, strategy="ddp_spawn"
    )
    _check_two_members(ddp, tmp_path / "ddp" / "runs")
    assert ddp["hardware"]["device_count"] == 2
    for result in (single, ddp):  # every member of both runs trained: its training loss fell over its curve
        for member in ("member0", "member1"):
            losses = [p["train_loss"] for p in result["training"]["curve"] if p["stage"] == member]
            assert len(losses) == 10 and losses[-1] < 0.9 * losses[0], (member, losses)
