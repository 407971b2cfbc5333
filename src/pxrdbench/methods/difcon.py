"""DIFCON (Das, Vorholt, Houben, Dronskowski 2025; paper 002): Barlow Twins on augmented patterns, then symmetry heads.

Two stages on the same weights (the :class:`~pxrdbench.run.recipes.PretrainFinetune` recipe):

1. ``pretrain``: two independently augmented renderings of every structure (``pattern``, ``pattern_2``) pass
   through the encoder and the expander; the loss is Barlow Twins (:mod:`pxrdbench.losses.barlow_twins`)

       L_pre = Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²;

2. ``finetune`` ("end-to-end", as the paper): encoder + heads on one rendering, the weighted mean of three
   cross-entropies

       L_ft = (w_cs·CE(CS) + w_eg·CE(EG) + w_sg·NLL(SG)) / (w_cs + w_eg + w_sg),

   with the space group from :class:`~pxrdbench.models.heads.space_group_heads.ConditionalSymmetryHeads`
   (P(g) = P_CS(s(g)) · P_s(g | s(g)), a distribution over all 230 groups).

``pretrain: false`` (``difcon_supervised``, the paper's CNNAug) trains the same encoder and heads from scratch on
the same augmented data with one fit. Unused modules are frozen in each stage (so DDP sees no unused
parameters). Missing labels (−1) are ignored term by term. ``embed`` returns the L2-normalised representation, so
the method also serves retrieval against simulated reference patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.barlow_twins import BarlowTwinsLoss
from pxrdbench.methods.base import DataRequirements, PXRDMethod
from pxrdbench.methods.supervised import IGNORE_INDEX, masked_cross_entropy

SYMMETRY_TASKS: tuple[str, ...] = ("crystal_system", "extinction_group", "space_group")
TRAINING_STAGES: tuple[str, ...] = ("pretrain", "finetune")


class DIFCON(PXRDMethod):
    """Encoder → (expander for Barlow Twins | conditional CS / EG / SG heads).

    Args:
        encoder: pattern encoder with ``output_dim`` (a GELU :class:`~pxrdbench.models.xrd.resnet1d.ResNet1D`).
        expander: ``in_dim → module`` (an :class:`~pxrdbench.models.heads.expander.Expander` class path), or None
            when there is no pre-training.
        heads: ``in_dim → module`` (:class:`~pxrdbench.models.heads.space_group_heads.ConditionalSymmetryHeads`).
        pretrain: True for DIFCON (two stages), False for the supervised ablation (one fit).
        off_diagonal_weight: λ of the Barlow Twins loss (None: 1/D of the expander's output).
        normalisation: ``"batchnorm"`` (the reference implementation) or ``"paper"`` (eq. 7).
        loss_weights: {task: weight} of the fine-tuning cross-entropies (default 1 each).
        optimizer, scheduler: configs (see :mod:`pxrdbench.methods.base`); each stage builds its own optimiser.
    """

    tasks = ("crystal_system", "space_group", "extinction_group", "retrieval")
    hparams_ignore = ("encoder", "expander", "heads")

    def __init__(
        self,
        encoder: nn.Module,
        heads: Callable[[int], nn.Module],
        expander: Callable[[int], nn.Module] | None = None,
        pretrain: bool = True,
        off_diagonal_weight: float | None = None,
        normalisation: str = "batchnorm",
        loss_weights: Mapping[str, float] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        if pretrain and expander is None:
            raise ConfigError("DIFCON: pre-training (pretrain: true) needs an expander")
        components = {"encoder": encoder, "heads": heads, "expander": expander}
        super().__init__(optimizer=optimizer, scheduler=scheduler, components=components)
        self.set_training_stage(
            "finetune"
        )  # a one-fit recipe trains the heads; PretrainFinetune switches first

    def configure_models(self) -> None:
        """Build the heads and the expander on the encoder's feature size."""
        width = int(self.encoder.output_dim)
        if not isinstance(self.heads, nn.Module):
            self.heads = self.heads(width)
        if self.expander is not None and not isinstance(self.expander, nn.Module):
            self.expander = self.expander(width)
        self.num_extinction_groups = int(self.heads.num_extinction_groups)

    def configure_losses(self) -> None:
        """Barlow Twins (pre-training) and the fine-tuning weights."""
        weights = {task: 1.0 for task in SYMMETRY_TASKS}
        given = dict(self.hparams.get("loss_weights") or {})
        unknown = sorted(set(given) - set(SYMMETRY_TASKS))
        if unknown or any(float(w) < 0 for w in given.values()):
            raise ConfigError(f"DIFCON loss_weights: unknown tasks {unknown} or negative weights in {given}")
        weights.update({task: float(w) for task, w in given.items()})
        if sum(weights.values()) <= 0:
            raise ConfigError("DIFCON loss_weights: at least one weight must be positive")
        self.loss_weights = weights
        self.barlow_twins = BarlowTwinsLoss(
            off_diagonal_weight=self.hparams["off_diagonal_weight"],
            normalisation=str(self.hparams["normalisation"]),
        )

    def configure_metrics(self) -> None:
        """Accuracy and balanced accuracy per symmetry task."""

        def accuracy(task: str, n_classes: int) -> MetricCollection:
            return MetricCollection({
                f"{task}_acc": MulticlassAccuracy(n_classes, average="micro", ignore_index=IGNORE_INDEX),
                f"{task}_balanced_acc": MulticlassAccuracy(n_classes, average="macro", ignore_index=IGNORE_INDEX),
            })  # fmt: skip

        sizes = {"crystal_system": 7, "extinction_group": self.num_extinction_groups, "space_group": 230}
        self.set_task_metrics({task: accuracy(task, n) for task, n in sizes.items()})

    # ---------------------------------------------------------------------------------------------- stages
    def set_training_stage(self, stage: str) -> None:
        """``"pretrain"`` (Barlow Twins; needs the expander) or ``"finetune"``; freezes what the stage leaves
        unused."""
        if stage not in TRAINING_STAGES or (stage == "pretrain" and self.expander is None):
            raise ConfigError(
                f"DIFCON has stages {TRAINING_STAGES} (pretrain only with an expander), not {stage!r}"
            )
        self.training_stage = stage
        self.heads.requires_grad_(stage == "finetune")
        if self.expander is not None:
            self.expander.requires_grad_(stage == "pretrain")

    def data_requirements(self) -> DataRequirements:
        """Two augmented views per structure while pre-training, one otherwise."""
        return DataRequirements(views=2 if self.training_stage == "pretrain" else 1)

    # --------------------------------------------------------------------------------------------- forward
    def forward(self, patterns: Tensor) -> dict[str, Tensor]:
        """patterns [B, N] → representation and the heads' outputs (CS / EG logits, SG log-probabilities)."""
        features = self.encoder(patterns)
        return {"features": features, **self.heads(features)}

    def forward_batch(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Pre-training: the two views' expander outputs; fine-tuning: the heads' outputs."""
        if self.training_stage == "pretrain":
            if "pattern_2" not in batch:  # in training an error; in validation the heads' outputs (no loss)
                if self.training:
                    raise InputError(
                        "batch", "DIFCON pre-training needs two views ('pattern_2'): set n_views = 2"
                    )
                return self(batch["pattern"])
            return {
                "z_a": self.expander(self.encoder(batch["pattern"])),
                "z_b": self.expander(self.encoder(batch["pattern_2"])),
            }
        return self(batch["pattern"])

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """As every method's, except that a pre-training batch of one pattern is skipped (the redundancy loss
        needs batch statistics; training batches are always full)."""
        if self.training_stage == "pretrain" and int(batch["pattern"].shape[0]) < 2:
            return
        super().validation_step(batch, batch_idx)

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Barlow Twins (pre-training) or the weighted mean of the three cross-entropies (fine-tuning)."""
        if "z_a" in outputs:
            return {"loss": self.barlow_twins(outputs["z_a"], outputs["z_b"])}
        if "crystal_system" not in outputs:  # pre-training validation on one view: no loss defined
            raise InputError("batch", "DIFCON pre-training validation needs two views")
        terms = {
            f"loss_{task}": masked_cross_entropy(outputs[task], batch.get(task)) for task in SYMMETRY_TASKS
        }
        total = sum(self.loss_weights[task] * terms[f"loss_{task}"] for task in SYMMETRY_TASKS)
        return {**terms, "loss": total / sum(self.loss_weights.values())}

    def update_metrics(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str) -> set[str]:
        """Accuracies of the labelled rows (fine-tuning outputs only)."""
        if "crystal_system" not in outputs:
            return set()
        metrics, updated = self.stage_metrics(stage), set()
        for task in SYMMETRY_TASKS:
            target = batch.get(task)
            if target is not None and (target >= 0).any():
                metrics[task].update(outputs[task], target)
                updated.add(task)
        return updated

    # ------------------------------------------------------------------------------------------ prediction
    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Probabilities {"crystal_system": [B, 7], "space_group": [B, 230], "extinction_group": [B, E]}."""
        with self.evaluating():
            outputs = self(batch["pattern"].to(self.device))
        return {
            "crystal_system": torch.softmax(outputs["crystal_system"], dim=-1),
            "extinction_group": torch.softmax(outputs["extinction_group"], dim=-1),
            "space_group": outputs["space_group"].exp(),
        }

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """L2-normalised representation [B, encoder.output_dim]."""
        with self.evaluating():
            return F.normalize(self.encoder(batch["pattern"].to(self.device)), dim=-1)
