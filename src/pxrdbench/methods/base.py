"""The shared LightningModule skeleton of every trained method (torchgeo-style: three hooks, staged metrics).

A method receives its encoder and heads as plain ``nn.Module`` objects (built by the model registry, never
from strings here), declares the benchmark ``tasks`` it serves and exposes what it can of the prediction API:
``embed`` (L2-normalised pattern embedding, retrieval), ``predict_proba`` (class probabilities per
classification task) and ``predict_lattice`` (Niggli a, b, c in Å, α, β, γ in degrees).

Optimiser and scheduler are configuration (dicts), built by :mod:`pxrdbench.methods.optim`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning as L
import torch
from torch import Tensor, nn
from torchmetrics import MetricCollection

from pxrdbench.errors import ConfigError
from pxrdbench.methods.optim import DEFAULT_OPTIMIZER, build_optimizer, build_scheduler


@dataclass(frozen=True)
class DataRequirements:
    """What a method needs in its batches; the data module renders only that.

    Attributes:
        views: independently augmented renderings of each pattern per training batch (``pattern``,
            ``pattern_2``, …; 2 for Barlow Twins).
        graphs: crystal graphs to attach as ``graph`` (None, ``"cgcnn"``, ``"radius"`` or ``"atoms"``).
        peak_tokens: attach the view's peak tokens (``peak_positions``, ``peak_intensities``, ``peak_mask``).
    """

    views: int = 1
    graphs: str | None = None
    peak_tokens: bool = False


def predict_everything(method: Any, batch: Mapping[str, Any]) -> dict[str, Tensor]:
    """{task: probabilities, "lattice": [B, 6], "embedding": [B, D]} of a rendered batch, each key only where
    the method serves it (methods, baselines and ensembles share this)."""
    result: dict[str, Tensor] = {}
    if set(method.tasks) & set(CLASSIFICATION_TASKS):
        result.update(method.predict_proba(batch))
    if "lattice" in method.tasks:
        result["lattice"] = method.predict_lattice(batch)
    with contextlib.suppress(NotImplementedError):
        result["embedding"] = method.embed(batch)
    return result


#: Every benchmark task a method can serve.
ALL_TASKS: tuple[str, ...] = ("crystal_system", "space_group", "extinction_group", "lattice", "retrieval")
#: The classification tasks among them.
CLASSIFICATION_TASKS: tuple[str, ...] = ("crystal_system", "space_group", "extinction_group")
STAGES: tuple[str, ...] = ("train", "val", "test")


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
    #: Training family by objective (``"classifier"``: supervised heads; ``"contrastive"``: pattern–structure
    #: retrieval). A preset gives every method of a family the same budget of training patterns.
    family: ClassVar[str] = "classifier"

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
        self.run_config: dict[str, Any] = {}
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

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Everything the method predicts for a rendered batch (see :func:`predict_everything`)."""
        return predict_everything(self, batch)

    def predict_step(self, batch: Mapping[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """:meth:`predict` of a batch, with the batch's ``index`` passed through."""
        result = self.predict(batch)
        if "index" in batch:
            result["index"] = batch["index"]
        return result

    def data_requirements(self) -> DataRequirements:
        """What the data module must put in this method's batches (the pattern only, by default)."""
        return DataRequirements()

    def set_training_stage(self, stage: str) -> None:
        """Switch to a stage of a multi-stage recipe (``"pretrain"``, ``"finetune"``); one-stage methods have
        none. A method that has stages overrides this (its losses, metrics and optimiser follow the stage)."""
        raise ConfigError(f"{type(self).__name__} has no training stage {stage!r} (its recipe is one fit)")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the run's resolved configuration (set by the runner or the CLI) in every checkpoint."""
        if self.run_config:
            checkpoint["pxrdbench"] = dict(self.run_config)

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

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """L2-normalised pattern embeddings [B, D] of a rendered batch."""
        raise NotImplementedError(f"{type(self).__name__} has no pattern embedding")

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Class probabilities {task: [B, K]} for the classification tasks the method serves."""
        raise NotImplementedError(f"{type(self).__name__} serves no classification task")

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        """Niggli lattice parameters [B, 6] (a, b, c in Å; α, β, γ in degrees) of a rendered batch."""
        raise NotImplementedError(f"{type(self).__name__} does not serve the lattice task")
