"""DIFCON (paper 002) and its supervised ablation: configurations, the two stages (two views + Barlow Twins, then
the symmetry heads), and the PretrainFinetune recipe running both stages on real patterns of the difcon view."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.errors import ConfigError
from pxrdbench.losses.barlow_twins import barlow_twins_loss
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.difcon import DIFCON
from pxrdbench.methods.registry import create_method, parse_method
from pxrdbench.run.budget import TrainingBudget
from pxrdbench.run.learning_curve import LearningCurve
from pxrdbench.run.recipes import PretrainFinetune, TrainingContext
from pxrdbench.views.render import render_batch

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:lightning.pytorch.cli",
    "ignore:LightningCLI's args parameter:UserWarning",
    "ignore::UserWarning",
    "ignore::lightning.fabric.utilities.warnings.PossibleUserWarning",
)


def test_registered_configs() -> None:
    difcon, supervised = create_method("difcon"), create_method("difcon_supervised")
    assert isinstance(difcon, DIFCON) and isinstance(supervised, DIFCON)
    assert difcon.hparams["pretrain"] and not supervised.hparams["pretrain"] and supervised.expander is None
    assert str(parse_method("difcon").config.recipe.class_path).endswith(".PretrainFinetune")
    assert str(parse_method("difcon_supervised").config.recipe.class_path).endswith(".SingleFit")
    assert difcon.expander.output_dim == 2048 and difcon.barlow_twins.off_diagonal_weight is None
    same = sum(p.numel() for p in supervised.parameters())
    assert same == sum(p.numel() for n, p in difcon.named_parameters() if not n.startswith("expander."))
    assert difcon.data_requirements() == DataRequirements(views=1)  # fine-tuning until a recipe switches
    difcon.set_training_stage("pretrain")
    assert difcon.data_requirements() == DataRequirements(views=2)
    with pytest.raises(ConfigError, match="pretrain"):
        supervised.set_training_stage("pretrain")


@pytest.fixture(scope="module")
def two_view_batch(cache: DatasetCache) -> dict:
    """Four training structures rendered as the data module renders a pre-training batch (train ranges, 2 views)."""
    dm = SimulatedDataModule(cache, view="difcon", batch_size=4, seed=0)
    dataset = ReflectionDataset(
        cache, cache.split_indices("train")[:4], dm.view.d_min, dm.view.max_peaks, None
    )
    batch = collate_structures([dataset[i] for i in range(4)])
    return render_batch(dm.view, batch, train=True, seed=0, step=0, rank=0, n_views=2)


def test_the_two_views_of_a_structure_differ(two_view_batch: dict) -> None:
    a, b = two_view_batch["pattern"], two_view_batch["pattern_2"]
    assert a.shape == b.shape == (4, 12000)
    assert not torch.allclose(a, b)


def test_each_stage_trains_one_step_and_touches_only_its_modules(two_view_batch: dict) -> None:
    torch.manual_seed(0)
    method = create_method("difcon_tiny").train()
    method.set_training_stage("pretrain")
    outputs = method.forward_batch(two_view_batch)
    loss = method.compute_losses(outputs, two_view_batch)["loss"]
    expected = barlow_twins_loss(outputs["z_a"], outputs["z_b"], None, "batchnorm")
    assert torch.isclose(loss, expected) and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in method.heads.parameters())
    assert all(p.grad is not None for p in [*method.encoder.parameters(), *method.expander.parameters()])
    method.zero_grad(set_to_none=True)
    method.set_training_stage("finetune")
    losses = method.compute_losses(method.forward_batch(two_view_batch), two_view_batch)
    assert set(losses) == {"loss", "loss_crystal_system", "loss_extinction_group", "loss_space_group"}
    losses["loss"].backward()
    assert all(p.grad is None for p in method.expander.parameters())
    assert all(p.grad is not None for p in [*method.encoder.parameters(), *method.heads.parameters()])
    probabilities = method.predict_proba(two_view_batch)
    assert torch.allclose(probabilities["space_group"].sum(dim=1), torch.ones(4), atol=1e-5)


def test_pretrain_finetune_runs_both_stages_with_their_views(cache: DatasetCache, tmp_path: Path) -> None:
    dm = SimulatedDataModule(cache, "difcon", batch_size=4, seed=0)
    seen: list[tuple[str, int]] = []

    def build(seed: int) -> DIFCON:
        torch.manual_seed(seed)
        return create_method("difcon_tiny")

    class RecordViews(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:  # noqa: ANN001
            seen.append(
                (module.training_stage, sum(k.startswith("pattern_") for k in batch if k != "pattern_mask"))
            )

    def make_trainer(directory: Path, budget: TrainingBudget, stage: str = "fit") -> L.Trainer:
        return L.Trainer(
            max_epochs=budget.max_epochs, accelerator="cpu", devices=1, logger=False, limit_train_batches=2,
            limit_val_batches=1, default_root_dir=directory, enable_progress_bar=False, enable_model_summary=False,
            num_sanity_val_steps=0, callbacks=[LearningCurve(stage, budget.global_batch), RecordViews()],
        )  # fmt: skip

    budget = TrainingBudget(max_epochs=2, global_batch=4)
    context = TrainingContext(build, make_trainer, dm, seed=0, run_dir=tmp_path, budget=budget)
    trained = PretrainFinetune(pretrain_fraction=0.5).train(context)
    assert [s["stage"] for s in trained.stages] == ["pretrain", "finetune"]
    assert {stage: views for stage, views in seen} == {
        "pretrain": 1,
        "finetune": 0,
    }  # pattern_2 only pre-training
    assert trained.method.training_stage == "finetune"
