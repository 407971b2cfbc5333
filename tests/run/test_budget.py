"""Budgets are counted in training patterns or epochs (never seconds), and each preset states one."""

from __future__ import annotations

import pytest

from pxrdbench.errors import ConfigError
from pxrdbench.run.budget import TrainingBudget, family_patterns, resolve_budget, steps_budget
from pxrdbench.run.settings import Preset, load_preset


def test_a_pattern_budget_becomes_whole_validation_intervals_of_steps() -> None:
    budget = resolve_budget({"train_patterns": 28800}, "classifier", 64, None, curve_points=10)
    assert (budget.max_steps, budget.val_every_steps, budget.kind) == (450, 45, "train_patterns")
    assert budget.train_patterns == 28800
    odd = resolve_budget({"train_patterns": 1000}, "classifier", 64, None, curve_points=10)
    assert odd.max_steps == 20 and odd.val_every_steps == 2  # ceil(1000/64) = 16 steps -> 10 intervals of 2
    assert odd.max_steps % odd.val_every_steps == 0  # the last step is validated
    assert (
        steps_budget(3, 8, curve_points=10, safety_max_time=None).max_steps == 3
    )  # at most one point a step


def test_each_family_gets_its_own_pattern_budget() -> None:
    per_family = {"classifier": 100, "contrastive": 1000}
    assert family_patterns(per_family, "contrastive") == 1000 and family_patterns(500, "contrastive") == 500
    with pytest.raises(ConfigError, match="no entry for the 'generative' family"):
        family_patterns(per_family, "generative")


def test_an_epoch_budget_falls_back_to_the_config_epochs() -> None:
    assert resolve_budget({"epochs": 3}, "classifier", 16, 100).max_epochs == 3
    assert resolve_budget({"epochs": None}, "classifier", 16, 100).max_epochs == 100
    with pytest.raises(ConfigError, match="in seconds"):
        resolve_budget({"max_time": "00:00:25:00"}, "classifier", 16, 100)
    with pytest.raises(ConfigError, match="not both"):
        resolve_budget({"epochs": 3, "train_patterns": 1000}, "classifier", 16, 100)
    with pytest.raises(ConfigError, match="less than one global batch"):
        resolve_budget({"train_patterns": 10}, "classifier", 16, 100)


def test_fractions_and_splits_of_a_budget() -> None:
    budget = steps_budget(450, 64, curve_points=10, safety_max_time="00:01:00:00")
    short = budget.fraction(0.1, curve_points=1)
    assert (short.max_steps, short.val_every_steps, short.global_batch) == (45, 45, 64)
    first, second = budget.split(0.5)
    assert first.max_steps + second.max_steps == 450 and first.safety_max_time == "00:01:00:00"
    assert TrainingBudget(max_epochs=10).fraction(0.1).max_epochs == 1
    with pytest.raises(ConfigError, match="exactly one"):
        TrainingBudget(max_steps=3, max_epochs=3)


@pytest.mark.parametrize("name", ["ci", "quick", "full"])
def test_every_preset_states_its_budget_in_patterns_or_epochs(name: str) -> None:
    preset = load_preset(name)
    assert "max_time" not in preset.budget
    assert ("train_patterns" in preset.budget) != ("epochs" in preset.budget)


def test_quick_gives_each_family_one_pattern_budget_and_sweeps_the_learning_rate() -> None:
    quick = load_preset("quick")
    assert set(quick.budget["train_patterns"]) == {"classifier", "contrastive"}
    assert quick.schedule["name"] == "warmup_cosine" and len(quick.lr_sweep["factors"]) == 3
    assert load_preset("full").scheduler_for({"name": "multistep"}) == {"name": "multistep"}  # the paper's
    assert quick.scheduler_for({"name": "multistep"})["name"] == "warmup_cosine"


def test_a_preset_with_a_seconds_budget_is_refused() -> None:
    with pytest.raises(ConfigError, match="counted in training patterns or epochs"):
        Preset(name="old", budget={"max_time": "00:00:25:00"}, eval={})
    with pytest.raises(ConfigError, match="lr_sweep"):
        Preset(name="x", budget={"epochs": 1}, eval={}, lr_sweep={"factors": [1.0]})
