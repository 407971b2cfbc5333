"""Training recipes on a real Trainer: one fit, and two stages (pre-train → fine-tune) on the same weights."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.errors import ConfigError
from pxrdbench.methods.supervised import AlphaDiffract
from pxrdbench.models.heads.mlp import MLPHead
from pxrdbench.models.heads.symmetry import LatticeHead
from pxrdbench.models.xrd.convnext1d import ConvNeXt1D
from pxrdbench.run.budget import TrainingBudget
from pxrdbench.run.learning_curve import LearningCurve
from pxrdbench.run.recipes import PretrainFinetune, SingleFit, TrainingContext

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"
)


class TwoStageToy(AlphaDiffract):
    """AlphaDiffract whose pre-training stage optimises the lattice term alone (a stand-in for a self-supervised
    objective), then everything; it records the stages it was switched to."""

    def set_training_stage(self, stage: str) -> None:
        self.stage = stage
        self.stages_seen = [*getattr(self, "stages_seen", []), stage]

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        losses = super().compute_losses(outputs, batch)
        if getattr(self, "stage", "finetune") == "pretrain":
            losses["loss"] = losses["loss_lattice"]
        return losses


def _toy(seed: int, cls: type = TwoStageToy) -> AlphaDiffract:
    torch.manual_seed(seed)
    return cls(
        encoder=ConvNeXt1D(input_length=8192, channels=4, kernel_sizes=(5,), expansion=2, block_pool=8),
        cs_head=partial(MLPHead, hidden=(8,), out_dim=7),
        sg_head=partial(MLPHead, hidden=(8,), out_dim=230),
        lattice_head=partial(LatticeHead, hidden=(8,)),
        gemd_weight=0.0,
    )


def _context(cache: DatasetCache, tmp_path: Path, build: Any, epochs: int) -> TrainingContext:
    dm = SimulatedDataModule(cache, "alphadiffract", batch_size=4, seed=0)
    dm.setup()

    def make_trainer(directory: Path, budget: TrainingBudget, stage: str = "fit") -> L.Trainer:
        return L.Trainer(
            max_epochs=budget.max_epochs, accelerator="cpu", devices=1, logger=False,
            default_root_dir=directory, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, callbacks=[LearningCurve(stage, budget.global_batch)],
        )  # fmt: skip

    budget = TrainingBudget(max_epochs=epochs, global_batch=4)
    return TrainingContext(build, make_trainer, dm, seed=0, run_dir=tmp_path, budget=budget)


def test_pretrain_finetune_runs_both_stages_on_the_same_weights(cache: DatasetCache, tmp_path: Path) -> None:
    built: list[AlphaDiffract] = []

    def build(seed: int) -> AlphaDiffract:
        built.append(_toy(seed))
        return built[-1]

    recipe = PretrainFinetune(pretrain_fraction=0.5)
    trained = recipe.train(_context(cache, tmp_path, build, epochs=3))
    assert len(built) == 1 and trained.method is built[0]  # one model, carried from stage 1 into stage 2
    assert trained.method.stages_seen == ["pretrain", "finetune"]
    assert [(s["stage"], s["epochs"]) for s in trained.stages] == [("pretrain", 2), ("finetune", 1)]
    assert all(s["steps"] > 0 for s in trained.stages)
    assert trained.patterns_seen == sum(s["patterns"] for s in trained.stages)
    assert recipe.describe() == {"name": "PretrainFinetune", "members": 1, "pretrain_fraction": 0.5}


def test_budget_split_gives_each_stage_at_least_one_epoch() -> None:
    def epochs(total: int, share: float) -> tuple[int | None, ...]:
        return tuple(b.max_epochs for b in TrainingBudget(max_epochs=total).split(share))

    assert epochs(1, 0.5) == (1, 1) and epochs(10, 0.9) == (9, 1) and epochs(10, 0.1) == (1, 9)
    with pytest.raises(ConfigError):
        PretrainFinetune(1.0)


def test_a_one_stage_method_refuses_a_training_stage(cache: DatasetCache, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no training stage 'pretrain'"):
        _toy(0, AlphaDiffract).set_training_stage("pretrain")
    trained = SingleFit().train(_context(cache, tmp_path, lambda seed: _toy(seed, AlphaDiffract), epochs=1))
    assert [s["stage"] for s in trained.stages] == ["fit"] and trained.stages[0]["steps"] > 0


def test_a_fit_records_its_learning_curve_in_patterns_seen(cache: DatasetCache, tmp_path: Path) -> None:
    trained = SingleFit().train(_context(cache, tmp_path, lambda seed: _toy(seed, AlphaDiffract), epochs=2))
    curve, per_epoch = trained.curve, len(cache.split_indices("train")) // 4 * 4  # full batches of 4 only
    assert [p["epoch"] for p in curve] == [0, 1]  # one point per validation pass
    assert [p["patterns"] for p in curve] == [per_epoch, 2 * per_epoch]
    assert trained.patterns_seen == 2 * per_epoch == trained.stages[0]["steps"] * 4 and not trained.truncated
    assert all(p["train_loss"] is not None and p["val_loss"] is not None for p in curve)
    assert "crystal_system_acc" in curve[-1]["val"] and 0.0 <= curve[-1]["val"]["crystal_system_acc"] <= 1.0
