"""The shared LightningModule skeleton of every trained method (torchgeo-style: three hooks, staged metrics).

A method receives its encoder and heads as plain ``nn.Module`` objects (built by the model registry, never
from strings here), declares the benchmark ``tasks`` it serves and exposes what it can of the prediction API:
``embed`` (L2-normalised pattern embedding, retrieval), ``predict_proba`` (class probabilities per
classification task) and ``predict_lattice`` (Niggli a, b, c in Å, α, β, γ in degrees).

Optimiser and scheduler are configuration (dicts), built in :meth:`PXRDMethod.configure_optimizers`:

- ``optimizer``: ``{"name": <torch.optim class>, **kwargs}``, e.g.
  ``{"name": "AdamW", "lr": 2e-4, "weight_decay": 0.01}``.
- ``scheduler`` (or None), one of:

  - ``{"name": "cyclic_triangular2", "base_lr_fraction": 0.1, "step_epochs": 6}`` (or ``"cyclic"`` with a
    ``"mode"``): CyclicLR stepped per iteration, lr from fraction·lr up to lr over ``step_epochs`` epochs
    and back, amplitude halved each cycle for triangular2;
  - ``{"name": "multistep", "milestones": [epochs], "gamma": 0.1}`` (stepped per epoch);
  - ``{"name": "cosine", "warmup_epochs": 0, "min_lr_fraction": 0.0}``: linear warm-up then cosine decay,
    stepped per iteration.

  Per-iteration schedules need the steps per epoch: ``trainer.estimated_stepping_batches /
  trainer.max_epochs``, or an explicit ``"steps_per_epoch"`` key.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from pxrdbench.errors import ConfigError, did_you_mean

#: Every benchmark task a method can serve.
ALL_TASKS: tuple[str, ...] = ("crystal_system", "space_group", "extinction_group", "lattice", "retrieval")
#: The classification tasks among them.
CLASSIFICATION_TASKS: tuple[str, ...] = ("crystal_system", "space_group", "extinction_group")
STAGES: tuple[str, ...] = ("train", "val", "test")
DEFAULT_OPTIMIZER: dict[str, Any] = {"name": "AdamW", "lr": 2e-4, "weight_decay": 0.01}
SCHEDULER_KEYS: dict[str, set[str]] = {
    "cyclic": {"base_lr_fraction", "step_epochs", "mode", "steps_per_epoch"},
    "cyclic_triangular2": {"base_lr_fraction", "step_epochs", "steps_per_epoch"},
    "multistep": {"milestones", "gamma"},
    "cosine": {"warmup_epochs", "min_lr_fraction", "steps_per_epoch"},
    "constant": set(),
}


def _number(value: Any, key: str) -> Any:
    """Coerce numeric strings (YAML 1.1 reads ``2e-4`` as a string) to float; leave other values alone."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError as error:
            raise ConfigError(f"optimizer option {key!r}: {value!r} is not a number") from error
    return value


def build_optimizer(parameters: Iterator[nn.Parameter], config: Mapping[str, Any]) -> torch.optim.Optimizer:
    """Instantiate ``torch.optim.<config['name']>`` on ``parameters`` with the remaining keys as kwargs."""
    options = dict(config)
    name = str(options.pop("name", "AdamW"))
    optimizer_cls = getattr(torch.optim, name, None)
    if not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)):
        known = [
            n
            for n, c in vars(torch.optim).items()
            if isinstance(c, type) and issubclass(c, torch.optim.Optimizer)
        ]
        raise did_you_mean(name, known, "optimizer")
    options = {key: _number(value, key) for key, value in options.items()}
    try:
        return optimizer_cls(parameters, **options)
    except TypeError as error:
        raise ConfigError(f"optimizer {name}: {error}") from error


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    config: Mapping[str, Any],
    steps_per_epoch: int | None,
    total_steps: int | None,
) -> tuple[torch.optim.lr_scheduler.LRScheduler, str]:
    """Build the scheduler named in ``config``; returns (scheduler, Lightning interval "step" | "epoch")."""
    options = dict(config)
    name = str(options.pop("name"))
    if name not in SCHEDULER_KEYS:
        raise did_you_mean(name, list(SCHEDULER_KEYS), "scheduler")
    unknown = set(options) - SCHEDULER_KEYS[name]
    if unknown:
        raise ConfigError(
            f"scheduler {name}: unknown options {sorted(unknown)}; known: {sorted(SCHEDULER_KEYS[name])}"
        )
    steps_per_epoch = int(options.get("steps_per_epoch") or steps_per_epoch or 0)
    if name in ("cyclic", "cyclic_triangular2", "cosine") and steps_per_epoch < 1:
        raise ConfigError(
            f"scheduler {name}: steps per epoch unknown; run under a Trainer with max_epochs "
            "or set 'steps_per_epoch'"
        )
    if name in ("cyclic", "cyclic_triangular2"):
        max_lrs = [group["lr"] for group in optimizer.param_groups]
        fraction = float(options.get("base_lr_fraction", 0.1))
        scheduler = torch.optim.lr_scheduler.CyclicLR(
            optimizer,
            base_lr=[fraction * lr for lr in max_lrs],
            max_lr=max_lrs,
            step_size_up=max(1, round(float(options.get("step_epochs", 6)) * steps_per_epoch)),
            mode="triangular2" if name == "cyclic_triangular2" else str(options.get("mode", "triangular2")),
            cycle_momentum=False,
        )
        return scheduler, "step"
    if name == "multistep":
        milestones = [int(m) for m in options.get("milestones", [])]
        gamma = float(options.get("gamma", 0.1))
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=gamma), "epoch"
    if name == "cosine":
        warmup = max(0, round(float(options.get("warmup_epochs", 0)) * steps_per_epoch))
        total = max(warmup + 1, int(total_steps or 0))
        floor = float(options.get("min_lr_fraction", 0.0))

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "step"
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), "epoch"


class PXRDMethod(L.LightningModule):
    """Base class of the trained methods.

    Subclasses set ``tasks`` and ``hparams_ignore`` (names of injected modules and large arrays), pass those
    objects as ``components`` (set as attributes before the hooks run) and fill the hooks:
    :meth:`configure_models` (check / derive from the injected modules), :meth:`configure_losses`,
    :meth:`configure_metrics` (call :meth:`set_task_metrics`), plus :meth:`compute_losses` and
    :meth:`update_metrics` for the shared train/val/test step.

    Args:
        optimizer: optimiser config (see the module docstring); None = AdamW lr 2e-4, weight decay 0.01.
        scheduler: scheduler config or None for a constant learning rate.
        components: injected modules / arrays, set as attributes under their names.
    """

    tasks: ClassVar[tuple[str, ...]] = ()
    hparams_ignore: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        unknown = set(cls.tasks) - set(ALL_TASKS)
        if unknown:
            raise ConfigError(
                f"{cls.__name__}.tasks: unknown tasks {sorted(unknown)}; known: {list(ALL_TASKS)}"
            )

    def __init__(
        self,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        components: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=[*self.hparams_ignore, "components"])
        self.optimizer_config: dict[str, Any] = dict(optimizer or DEFAULT_OPTIMIZER)
        self.scheduler_config: dict[str, Any] | None = dict(scheduler) if scheduler else None
        for name, value in (components or {}).items():
            setattr(self, name, value)
        self.train_metrics = nn.ModuleDict()
        self.val_metrics = nn.ModuleDict()
        self.test_metrics = nn.ModuleDict()
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # ----------------------------------------------------------------------------------------------- hooks
    def configure_models(self) -> None:
        """Check or derive sub-modules from the injected ones (hook)."""

    def configure_losses(self) -> None:
        """Build the loss modules (hook)."""

    def configure_metrics(self) -> None:
        """Build the metrics, usually through :meth:`set_task_metrics` (hook)."""

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Return the loss terms of a batch; the key ``"loss"`` is the total that is optimised."""
        raise NotImplementedError(f"{type(self).__name__} must implement compute_losses")

    def update_metrics(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str) -> set[str]:
        """Update the stage's metric collections with a batch; return the tasks updated (default: none).

        Only updated collections are logged, so a task without labels in an epoch logs nothing (no fake 0).
        """
        return set()

    def forward_batch(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Model outputs of a batch; the default calls ``self(batch["pattern"])``."""
        return self(batch["pattern"])

    # --------------------------------------------------------------------------------------------- metrics
    def set_task_metrics(self, per_task: Mapping[str, MetricCollection]) -> None:
        """Clone one metric collection per task into ``train_``/``val_``/``test_``-prefixed stage copies."""
        for stage in STAGES:
            self.stage_metrics(stage).update(
                {task: collection.clone(prefix=f"{stage}_") for task, collection in per_task.items()}
            )

    def stage_metrics(self, stage: str) -> nn.ModuleDict:
        """The ModuleDict task → MetricCollection of ``stage`` ("train", "val" or "test")."""
        if stage not in STAGES:
            raise ConfigError(f"unknown stage {stage!r}; known: {list(STAGES)}")
        return getattr(self, f"{stage}_metrics")

    # ----------------------------------------------------------------------------------------------- steps
    def shared_step(self, batch: Mapping[str, Any], stage: str) -> Tensor:
        """Forward, losses, metrics and logging of one batch; returns the total loss."""
        batch_size = int(batch["pattern"].shape[0])
        outputs = self.forward_batch(batch)
        losses = self.compute_losses(outputs, batch)
        for name, value in losses.items():
            self.log(
                f"{stage}_{name}",
                value.detach(),
                on_step=stage == "train",
                on_epoch=True,
                prog_bar=name == "loss",
                sync_dist=True,
                batch_size=batch_size,
            )
        with torch.no_grad():
            updated = self.update_metrics(outputs, batch, stage)
        metrics = self.stage_metrics(stage)
        for task in sorted(updated):
            self.log_dict(metrics[task], on_step=False, on_epoch=True, batch_size=batch_size)
        return losses["loss"]

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> Tensor:
        """One optimisation step's loss."""
        return self.shared_step(batch, "train")

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Validation losses and metrics."""
        self.shared_step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Test losses and metrics."""
        self.shared_step(batch, "test")

    def predict_all(self, patterns: Tensor) -> dict[str, Tensor]:
        """Everything the method predicts: {task: probabilities, "lattice": [B, 6], "embedding": [B, D]}."""
        result: dict[str, Tensor] = {}
        if set(self.tasks) & set(CLASSIFICATION_TASKS):
            result.update(self.predict_proba(patterns))
        if "lattice" in self.tasks:
            result["lattice"] = self.predict_lattice(patterns)
        with contextlib.suppress(NotImplementedError):
            result["embedding"] = self.embed(patterns)
        return result

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """:meth:`predict_all` of ``batch["pattern"]``, with the batch's ``index`` passed through."""
        result = self.predict_all(batch["pattern"])
        if "index" in batch:
            result["index"] = batch["index"]
        return result

    # ------------------------------------------------------------------------------------------ optimisers
    def _steps_per_epoch(self) -> tuple[int | None, int | None]:
        """(steps per epoch, total steps) from the attached trainer, or (None, None) without one."""
        trainer = self._trainer
        if trainer is None:
            return None, None
        total = float(trainer.estimated_stepping_batches)
        epochs = trainer.max_epochs
        if not math.isfinite(total):
            return None, None
        if not epochs or epochs < 1:
            return None, int(total)
        return max(1, round(total / epochs)), int(total)

    def configure_optimizers(self) -> Any:
        """Optimiser (and scheduler, when configured) from ``optimizer`` / ``scheduler`` configs."""
        optimizer = build_optimizer((p for p in self.parameters() if p.requires_grad), self.optimizer_config)
        if not self.scheduler_config:
            return optimizer
        steps_per_epoch, total = self._steps_per_epoch()
        scheduler, interval = build_scheduler(optimizer, self.scheduler_config, steps_per_epoch, total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": interval}}

    # --------------------------------------------------------------------------------------- prediction API
    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode and no gradients for the duration; the previous train/eval mode is restored after."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.train(was_training)

    def serves(self, task: str) -> bool:
        """Whether the method serves benchmark ``task``."""
        return task in self.tasks

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def embed(self, patterns: Tensor) -> Tensor:
        """L2-normalised pattern embeddings [B, D] of patterns [B, N]."""
        raise NotImplementedError(f"{type(self).__name__} has no pattern embedding")

    def predict_proba(self, patterns: Tensor) -> dict[str, Tensor]:
        """Class probabilities {task: [B, K]} for the classification tasks the method serves."""
        raise NotImplementedError(f"{type(self).__name__} serves no classification task")

    def predict_lattice(self, patterns: Tensor) -> Tensor:
        """Niggli lattice parameters [B, 6] (a, b, c in Å; α, β, γ in degrees)."""
        raise NotImplementedError(f"{type(self).__name__} does not serve the lattice task")
