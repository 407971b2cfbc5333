"""PXRDMethod skeleton: hooks, hyperparameters, staged metrics and the optimiser / scheduler factories."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from pxrdbench.errors import ConfigError
from pxrdbench.methods.base import DataRequirements, PXRDMethod
from pxrdbench.methods.optim import build_optimizer, build_scheduler


class LinearProbe(PXRDMethod):
    """A toy method: linear crystal-system classifier on the raw pattern."""

    tasks = ("crystal_system",)
    hparams_ignore = ("encoder",)

    def __init__(
        self, encoder: nn.Module, width: int = 3, optimizer: Any = None, scheduler: Any = None
    ) -> None:
        self.calls: list[str] = []
        super().__init__(optimizer=optimizer, scheduler=scheduler, components={"encoder": encoder})

    def configure_models(self) -> None:
        self.calls.append("models")
        self.head = nn.Linear(self.encoder.out_features, 7)

    def configure_losses(self) -> None:
        self.calls.append("losses")
        self.criterion = nn.CrossEntropyLoss(ignore_index=-1)

    def configure_metrics(self) -> None:
        self.calls.append("metrics")
        self.set_task_metrics({"crystal_system": MetricCollection({"cs_acc": MulticlassAccuracy(7)})})

    def forward(self, patterns: Tensor) -> dict[str, Tensor]:
        return {"crystal_system": self.head(self.encoder(patterns))}

    def compute_losses(self, outputs: Any, batch: Any) -> dict[str, Tensor]:
        return {"loss": self.criterion(outputs["crystal_system"], batch["crystal_system"])}


def test_hooks_run_in_order_and_modules_are_injected() -> None:
    encoder = nn.Linear(10, 4)
    method = LinearProbe(encoder, width=5)
    assert method.calls == ["models", "losses", "metrics"]
    assert method.encoder is encoder
    assert method.head.in_features == 4


def test_hyperparameters_exclude_injected_modules() -> None:
    method = LinearProbe(nn.Linear(10, 4), width=5, optimizer={"name": "SGD", "lr": 0.1})
    assert method.hparams["width"] == 5
    assert method.hparams["optimizer"] == {"name": "SGD", "lr": 0.1}
    assert "encoder" not in method.hparams and "components" not in method.hparams


def test_metrics_are_cloned_per_stage_with_prefixes() -> None:
    method = LinearProbe(nn.Linear(10, 4))
    names = {
        stage: list(method.stage_metrics(stage)["crystal_system"].keys())
        for stage in ("train", "val", "test")
    }
    assert names == {"train": ["train_cs_acc"], "val": ["val_cs_acc"], "test": ["test_cs_acc"]}
    assert (
        method.stage_metrics("train")["crystal_system"] is not method.stage_metrics("val")["crystal_system"]
    )
    with pytest.raises(ConfigError):
        method.stage_metrics("predict")


def test_training_step_returns_the_loss_and_prediction_api_defaults() -> None:
    method = LinearProbe(nn.Linear(10, 4))
    batch = {"pattern": torch.rand(4, 10), "crystal_system": torch.tensor([0, 1, 2, -1])}
    loss = method.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    for missing in (method.embed, method.predict_proba, method.predict_lattice):
        with pytest.raises(NotImplementedError):
            missing(batch)
    assert method.serves("crystal_system") and not method.serves("retrieval")
    assert method.num_parameters == 10 * 4 + 4 + 4 * 7 + 7


class ProbingProbe(LinearProbe):
    """The probe with a batch-in ``predict_proba`` (no lattice, no embedding)."""

    def predict_proba(self, batch: Any) -> dict[str, Tensor]:
        with self.evaluating():
            return {"crystal_system": torch.softmax(self(batch["pattern"])["crystal_system"], dim=-1)}


def test_predict_collects_what_the_method_serves_from_a_batch() -> None:
    method = ProbingProbe(nn.Linear(10, 4))
    batch = {"pattern": torch.rand(3, 10), "index": torch.tensor([7, 8, 9])}
    result = method.predict(batch)
    assert set(result) == {"crystal_system"}  # no lattice task, and embed's NotImplementedError is skipped
    expected = torch.softmax(method.head(method.encoder(batch["pattern"])), dim=-1)
    assert torch.allclose(result["crystal_system"], expected)
    step = method.predict_step(batch, 0)
    assert set(step) == {"crystal_system", "index"} and torch.equal(step["index"], batch["index"])
    assert set(method.predict_step({"pattern": batch["pattern"]}, 0)) == {"crystal_system"}


def test_default_data_requirements_are_the_pattern_only() -> None:
    requirements = LinearProbe(nn.Linear(10, 4)).data_requirements()
    assert requirements == DataRequirements() == DataRequirements(views=1, graphs=None, peak_tokens=False)


def test_evaluating_restores_the_training_mode() -> None:
    method = LinearProbe(nn.Linear(10, 4)).train()
    with method.evaluating():
        assert not method.training and not torch.is_grad_enabled()
    assert method.training


def test_unknown_task_is_rejected_at_class_definition() -> None:
    with pytest.raises(ConfigError, match="unknown tasks"):

        class Bad(PXRDMethod):  # noqa: F841
            tasks = ("crystal_sytem",)


def test_optimizer_factory() -> None:
    params = [nn.Parameter(torch.zeros(2))]
    optimizer = build_optimizer(iter(params), {"name": "AdamW", "lr": "2e-4", "weight_decay": 0.01})
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert optimizer.param_groups[0]["weight_decay"] == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="AdamW"):
        build_optimizer(iter(params), {"name": "AdamX", "lr": 1e-3})
    with pytest.raises(ConfigError, match="optimizer Adam"):
        build_optimizer(iter(params), {"name": "Adam", "lr": 1e-3, "momentum": 0.9})


def _lrs(scheduler: torch.optim.lr_scheduler.LRScheduler, steps: int) -> list[float]:
    optimizer = scheduler.optimizer
    values = []
    for _ in range(steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_cyclic_triangular2_matches_the_paper_schedule() -> None:
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1.0)
    config = {"name": "cyclic_triangular2", "base_lr_fraction": 0.1, "step_epochs": 1}
    scheduler, interval = build_scheduler(optimizer, config, steps_per_epoch=2, total_steps=None)
    assert interval == "step"
    # up 0.1 -> 1.0 over 2 steps, down again, then a cycle of half the amplitude (peak 0.1 + 0.45)
    expected = [0.1, 0.55, 1.0, 0.55, 0.1, 0.325, 0.55, 0.325, 0.1]
    assert _lrs(scheduler, 9) == pytest.approx(expected)


def test_multistep_and_cosine_schedules() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler, interval = build_scheduler(
        optimizer, {"name": "multistep", "milestones": [2], "gamma": 0.1}, 5, 50
    )
    assert interval == "epoch" and _lrs(scheduler, 4) == pytest.approx([1.0, 1.0, 0.1, 0.1])
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    config = {"name": "cosine", "warmup_epochs": 1, "min_lr_fraction": 0.0}
    scheduler, _ = build_scheduler(optimizer, config, steps_per_epoch=2, total_steps=6)
    values = _lrs(scheduler, 6)
    assert values[:2] == pytest.approx([0.5, 1.0])
    assert values[2] == pytest.approx(1.0) and values[4] == pytest.approx(0.5) and values[5] < 0.2


def test_scheduler_config_errors() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="cyclic"):
        build_scheduler(optimizer, {"name": "cylic"}, 1, 1)
    with pytest.raises(ConfigError, match="unknown options"):
        build_scheduler(optimizer, {"name": "multistep", "milestone": [1]}, 1, 1)
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        build_scheduler(optimizer, {"name": "cyclic_triangular2"}, None, None)


def test_warmup_cosine_is_fitted_to_the_run_budget() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    config = {"name": "warmup_cosine", "warmup_fraction": 0.1, "min_lr_fraction": 0.0}
    scheduler, interval = build_scheduler(optimizer, config, steps_per_epoch=None, total_steps=21)
    values = _lrs(scheduler, 21)
    assert interval == "step"
    assert values[:3] == pytest.approx([2 / 3, 4 / 3, 2.0])  # 2 warm-up steps, then the peak
    assert max(values) == pytest.approx(2.0) and values[11] == pytest.approx(1.0)  # half-way down
    assert values[-1] == pytest.approx(0.0, abs=1e-12)  # reaches 0 at the last step of the budget
    assert all(b <= a + 1e-12 for a, b in zip(values[2:], values[3:], strict=False))
    with pytest.raises(ConfigError, match="optimiser steps are unknown"):
        build_scheduler(optimizer, {"name": "warmup_cosine"}, None, None)
    with pytest.raises(ConfigError, match="warmup_fraction"):
        build_scheduler(optimizer, {"name": "warmup_cosine", "warmup_fraction": 1.0}, None, 10)
