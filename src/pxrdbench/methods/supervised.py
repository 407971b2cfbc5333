"""AlphaDiffract (paper 004): 1D ConvNeXt with crystal-system, space-group and lattice heads, plus GEMD.

Loss per batch (paper eq. 5–6, weights configurable):

    L = CE(CS) + CE(SG) + μ · GEMD(SG) + λ_lat · MSE(σ(p), lattice / UB)

with μ = ``gemd_weight`` (1), λ_lat = ``lattice_weight`` (1), UB = (500, 500, 500 Å, 180, 180, 180°) so the
MSE compares lattice parameters scaled to [0, 1] (the head's sigmoid range). Missing labels (key absent or −1;
a lattice row with a non-positive or non-finite entry) are ignored term by term. The pattern mask is not used:
the view zero-fills unmeasured regions. ``embed`` returns the L2-normalised backbone feature (560-d for the
paper's model), so the method can also serve retrieval by matching a query against simulated candidate
patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from pxrdbench.errors import ConfigError
from pxrdbench.losses.gemd import GEMDLoss
from pxrdbench.methods.base import PXRDMethod
from pxrdbench.models.heads.symmetry import (
    LatticeHead,
    denormalise_lattice,
    normalise_lattice,
    valid_lattice_rows,
)

IGNORE_INDEX = -1


def masked_cross_entropy(logits: Tensor, target: Tensor | None) -> Tensor:
    """Mean cross-entropy over samples whose target is ≥ 0; a graph-connected zero when none is."""
    if target is None:
        return logits.sum() * 0.0
    valid = target >= 0
    if not valid.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid], target[valid])


class AlphaDiffract(PXRDMethod):
    """AlphaDiffract: ConvNeXt1D backbone → CS / SG classifiers and a bounded lattice regressor.

    Args:
        encoder: pattern encoder with an ``output_dim`` attribute (:class:`~pxrdbench.models.xrd.convnext1d.
            ConvNeXt1D`).
        cs_head: ``in_dim → module`` giving the crystal-system logits (an :class:`MLPHead` class path in the
            config; built on the encoder's ``output_dim``), or a built module.
        sg_head: likewise, the space-group logits.
        lattice_head: likewise, a :class:`LatticeHead` (bounded lattice).
        space_group_distance: the GEMD ground distance: ``"maximal_subgroup_hops"`` (the subgroup-graph hop
            matrix of :func:`pxrdbench.symmetry.subgroups.hop_distance_matrix`) or an explicit [K, K] matrix;
            used when ``gemd_weight`` > 0.
        gemd_weight: μ, the GEMD weight (0 = plain cross-entropy).
        lattice_weight: λ_lat, the lattice-MSE weight (0 = classification only).
        optimizer: optimiser config (AdamW lr 2e-4, weight decay 0.01 by default).
        scheduler: scheduler config (the paper's: ``{"name": "cyclic_triangular2", "base_lr_fraction": 0.1,
            "step_epochs": 6}``).
    """

    tasks = (
        "crystal_system",
        "space_group",
        "lattice",
        "retrieval",
    )  # retrieval: embedded reference patterns
    hparams_ignore = ("encoder", "cs_head", "sg_head", "lattice_head", "space_group_distance")

    def __init__(
        self,
        encoder: nn.Module,
        cs_head: Callable[[int], nn.Module],
        sg_head: Callable[[int], nn.Module],
        lattice_head: Callable[[int], LatticeHead],
        space_group_distance: str | Tensor | np.ndarray = "maximal_subgroup_hops",
        gemd_weight: float = 1.0,
        lattice_weight: float = 1.0,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        heads = {"cs_head": cs_head, "sg_head": sg_head, "lattice_head": lattice_head}
        components = {"encoder": encoder, **heads, "space_group_distance": space_group_distance}
        super().__init__(optimizer=optimizer, scheduler=scheduler, components=components)

    def configure_models(self) -> None:
        """Build the heads on the encoder's feature size; record the class counts from their outputs."""
        width = int(self.encoder.output_dim)
        for name in ("cs_head", "sg_head", "lattice_head"):
            head = getattr(self, name)
            setattr(self, name, head if isinstance(head, nn.Module) else head(width))
        self.num_crystal_systems = int(self.cs_head.out_dim)
        self.num_space_groups = int(self.sg_head.out_dim)

    def configure_losses(self) -> None:
        """GEMD over the subgroup graph (when μ > 0); cross-entropy and MSE are functional."""
        self.gemd_weight = float(self.hparams["gemd_weight"])
        self.lattice_weight = float(self.hparams["lattice_weight"])
        self.gemd: GEMDLoss | None = None
        if self.gemd_weight > 0:
            self.gemd = GEMDLoss(_ground_distance(self.space_group_distance, self.num_space_groups))
            if self.gemd.num_classes != self.num_space_groups:
                raise ConfigError(
                    f"AlphaDiffract: space_group_distance is {self.gemd.num_classes}x{self.gemd.num_classes} "
                    f"but the space-group head has {self.num_space_groups} classes"
                )
        self.space_group_distance = None  # held by the GEMD buffer from here on

    def configure_metrics(self) -> None:
        """Accuracy and balanced (macro) accuracy for CS and SG; lattice MAE of lengths (Å) and angles (°)."""

        def accuracy(task: str, n_classes: int) -> MetricCollection:
            return MetricCollection(
                {
                    f"{task}_acc": MulticlassAccuracy(n_classes, average="micro", ignore_index=IGNORE_INDEX),
                    f"{task}_balanced_acc": MulticlassAccuracy(
                        n_classes, average="macro", ignore_index=IGNORE_INDEX
                    ),
                }
            )

        lattice = MetricCollection(
            {"lattice_length_mae": MeanAbsoluteError(), "lattice_angle_mae": MeanAbsoluteError()}
        )
        self.set_task_metrics(
            {
                "crystal_system": accuracy("crystal_system", self.num_crystal_systems),
                "space_group": accuracy("space_group", self.num_space_groups),
                "lattice": lattice,
            }
        )

    def forward(self, patterns: Tensor) -> dict[str, Tensor]:
        """patterns [B, N] (0–100) → features, CS / SG logits, lattice (scaled σ and physical units)."""
        features = self.encoder(patterns)
        lattice_scaled = self.lattice_head.forward_normalised(features)
        return {
            "features": features,
            "crystal_system": self.cs_head(features),
            "space_group": self.sg_head(features),
            "lattice_scaled": lattice_scaled,
            "lattice": denormalise_lattice(lattice_scaled),
        }

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """CE(CS) + CE(SG) + μ·GEMD(SG) + λ_lat·MSE(lattice), each term reported separately."""
        cs_target = batch.get("crystal_system")
        sg_target = batch.get("space_group")
        loss_cs = masked_cross_entropy(outputs["crystal_system"], cs_target)
        loss_sg = masked_cross_entropy(outputs["space_group"], sg_target)
        losses = {"loss_crystal_system": loss_cs, "loss_space_group": loss_sg}
        total = loss_cs + loss_sg
        if self.gemd is not None:
            logits = outputs["space_group"]
            loss_gemd = self.gemd(logits, sg_target) if sg_target is not None else logits.sum() * 0.0
            losses["loss_gemd"] = loss_gemd
            total = total + self.gemd_weight * loss_gemd
        if self.lattice_weight > 0:
            loss_lattice = self._lattice_mse(outputs["lattice_scaled"], batch.get("lattice"))
            losses["loss_lattice"] = loss_lattice
            total = total + self.lattice_weight * loss_lattice
        losses["loss"] = total
        return losses

    @staticmethod
    def _lattice_mse(predicted_scaled: Tensor, target: Tensor | None) -> Tensor:
        """MSE of σ(p) against target / UB over rows with a valid lattice (mean over rows, 6 parameters)."""
        if target is None:
            return predicted_scaled.sum() * 0.0
        valid = valid_lattice_rows(target)
        if not valid.any():
            return predicted_scaled.sum() * 0.0
        return F.mse_loss(
            predicted_scaled[valid], normalise_lattice(target[valid].to(predicted_scaled.dtype))
        )

    def update_metrics(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str) -> set[str]:
        """Update CS / SG accuracies and lattice MAEs with the labels present in ``batch``."""
        metrics = self.stage_metrics(stage)
        updated: set[str] = set()
        for task in ("crystal_system", "space_group"):
            target = batch.get(task)
            if target is not None and (target >= 0).any():
                metrics[task].update(outputs[task], target)
                updated.add(task)
        lattice = batch.get("lattice")
        if lattice is not None:
            valid = valid_lattice_rows(lattice)
            if valid.any():
                predicted, target = outputs["lattice"][valid], lattice[valid].to(outputs["lattice"].dtype)
                collection = metrics["lattice"]
                collection["lattice_length_mae"].update(
                    predicted[:, :3].reshape(-1), target[:, :3].reshape(-1)
                )
                collection["lattice_angle_mae"].update(
                    predicted[:, 3:].reshape(-1), target[:, 3:].reshape(-1)
                )
                updated.add("lattice")
        return updated

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """One eval-mode forward: CS / SG probabilities, lattice [B, 6] and the unit embedding."""
        with self.evaluating():
            outputs = self(batch["pattern"].to(self.device))
        result = {task: torch.softmax(outputs[task], dim=-1) for task in ("crystal_system", "space_group")}
        result["lattice"] = outputs["lattice"]
        result["embedding"] = F.normalize(outputs["features"], dim=-1)
        return result

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """L2-normalised backbone features [B, encoder.output_dim]."""
        with self.evaluating():
            return F.normalize(self.encoder(batch["pattern"].to(self.device)), dim=-1)

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Softmax probabilities {"crystal_system": [B, 7], "space_group": [B, 230]}."""
        result = self.predict(batch)
        return {task: result[task] for task in ("crystal_system", "space_group")}

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        """Lattice parameters [B, 6] (Å, Å, Å, °, °, °)."""
        return self.predict(batch)["lattice"]


def _ground_distance(distance: str | Tensor | np.ndarray, num_classes: int) -> Tensor | np.ndarray:
    """The GEMD ground-distance matrix named (``"maximal_subgroup_hops"``) or given ([K, K])."""
    if not isinstance(distance, str):
        return distance
    if distance != "maximal_subgroup_hops":
        raise ConfigError(f"space_group_distance {distance!r}: only 'maximal_subgroup_hops' or a matrix")
    if num_classes != 230:
        raise ConfigError(f"maximal_subgroup_hops covers 230 space groups, not {num_classes}")
    from pxrdbench.symmetry.subgroups import hop_distance_matrix

    return hop_distance_matrix()
