"""The learning-rate sweep: same procedure for every method, chosen on the validation loss, recorded."""

from __future__ import annotations

import math
from pathlib import Path

from pxrdbench.run.budget import steps_budget
from pxrdbench.run.lr_sweep import config_learning_rate, final_val_loss, sweep_learning_rate
from pxrdbench.run.recipes import Recipe, Trained, TrainingContext


class _LossOfFactor(Recipe):
    """A stand-in recipe whose final validation loss is a known function of the learning-rate factor."""

    def __init__(self, losses: dict[float, float]) -> None:
        self.losses = losses
        self.seen: list[tuple[float, int | None, Path]] = []

    def train(self, ctx: TrainingContext) -> Trained:
        self.seen.append((ctx.lr_factor, ctx.budget.max_steps, ctx.run_dir))
        loss = self.losses[round(ctx.lr_factor, 4)]
        stage = {
            "stage": "fit",
            "curve": [{"patterns": 1, "val_loss": 9.0}, {"patterns": 2, "val_loss": loss}],
        }
        return Trained(None, 2, [stage])


def _ctx(tmp_path: Path) -> TrainingContext:
    budget = steps_budget(450, 64, curve_points=10, safety_max_time=None)
    return TrainingContext(lambda seed: None, lambda *a: None, None, 0, tmp_path, budget)


def test_the_lowest_validation_loss_wins_at_a_tenth_of_the_budget(tmp_path: Path) -> None:
    recipe = _LossOfFactor({0.3333: 2.0, 1.0: 1.5, 3.0: float("nan")})
    record = sweep_learning_rate(recipe, _ctx(tmp_path), 2e-4, [3.0, 1.0, 0.33333333], 0.1)
    assert record["factor"] == 1.0 and math.isclose(record["peak_lr"], 2e-4)
    assert [c["val_loss"] for c in record["sweep"]] == [2.0, 1.5, None]  # a diverged candidate loses
    assert {steps for _, steps, _ in recipe.seen} == {45}  # 10 % of the 450-step budget
    assert len({path for _, _, path in recipe.seen}) == 3 and record["source"] == "sweep"
    assert "lowest validation loss" in record["procedure"] and record["sweep_budget"]["max_steps"] == 45


def test_ties_go_to_the_smaller_learning_rate(tmp_path: Path) -> None:
    record = sweep_learning_rate(_LossOfFactor({0.5: 1.0, 2.0: 1.0}), _ctx(tmp_path), 1e-3, [2.0, 0.5], 0.1)
    assert record["factor"] == 0.5


def test_final_val_loss_and_the_config_record() -> None:
    assert final_val_loss([]) == math.inf
    assert final_val_loss([{"curve": [{"val_loss": 3.0}]}, {"curve": [{"val_loss": None}]}]) == math.inf
    assert final_val_loss([{"curve": [{"val_loss": 3.0}]}]) == 3.0
    assert config_learning_rate(1e-3) == {
        "source": "config", "peak_lr": 1e-3, "factor": 1.0, "config_lr": 1e-3, "procedure": "the config's",
    }  # fmt: skip
