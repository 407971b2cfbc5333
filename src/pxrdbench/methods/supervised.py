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

from collections.abc import Mapping, Sequence
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
from pxrdbench.models.heads.mlp import MLPHead
from pxrdbench.models.heads.symmetry import (
    LatticeHead,
    denormalise_lattice,
    normalise_lattice,
    valid_lattice_rows,
)
from pxrdbench.models.registry import register_model
from pxrdbench.models.xrd.convnext1d import ConvNeXt1D

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
        encoder: pattern encoder with an ``output_dim`` attribute (ConvNeXt1D).
        cs_head: features → 7 crystal-system logits.
        sg_head: features → 230 space-group logits.
        lattice_head: features → bounded lattice (a :class:`LatticeHead`).
        space_group_distance: [K, K] hop matrix for GEMD (K = SG classes); needed when ``gemd_weight`` > 0.
        gemd_weight: μ, the GEMD weight (0 = plain cross-entropy).
        lattice_weight: λ_lat, the lattice-MSE weight (0 = classification only).
        ensemble: members the runner trains with different seeds and averages with :class:`EnsembleClassifier`
            (recorded here so it travels with the config; a single module is always one member).
        optimizer: optimiser config (AdamW lr 2e-4, weight decay 0.01 by default).
        scheduler: scheduler config (the paper's: ``{"name": "cyclic_triangular2", "base_lr_fraction": 0.1,
            "step_epochs": 6}``).
    """

    tasks = ("crystal_system", "space_group", "lattice")
    hparams_ignore = ("encoder", "cs_head", "sg_head", "lattice_head", "space_group_distance")

    def __init__(
        self,
        encoder: nn.Module,
        cs_head: nn.Module,
        sg_head: nn.Module,
        lattice_head: LatticeHead,
        space_group_distance: Tensor | np.ndarray | None = None,
        gemd_weight: float = 1.0,
        lattice_weight: float = 1.0,
        ensemble: int = 1,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        heads = {"cs_head": cs_head, "sg_head": sg_head, "lattice_head": lattice_head}
        components = {"encoder": encoder, **heads, "space_group_distance": space_group_distance}
        super().__init__(optimizer=optimizer, scheduler=scheduler, components=components)

    def configure_models(self) -> None:
        """Record the class counts from the heads' output sizes."""
        self.num_crystal_systems = int(self.cs_head.out_dim)
        self.num_space_groups = int(self.sg_head.out_dim)

    def configure_losses(self) -> None:
        """GEMD over the subgroup graph (when μ > 0); cross-entropy and MSE are functional."""
        self.gemd_weight = float(self.hparams["gemd_weight"])
        self.lattice_weight = float(self.hparams["lattice_weight"])
        self.gemd: GEMDLoss | None = None
        if self.gemd_weight > 0:
            if self.space_group_distance is None:
                raise ConfigError("AlphaDiffract: gemd_weight > 0 needs space_group_distance (hop matrix)")
            self.gemd = GEMDLoss(self.space_group_distance)
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

    def predict_all(self, patterns: Tensor) -> dict[str, Tensor]:
        """One eval-mode forward: CS / SG probabilities, lattice [B, 6] and the unit embedding."""
        with self.evaluating():
            outputs = self(patterns.to(self.device))
        result = {task: torch.softmax(outputs[task], dim=-1) for task in ("crystal_system", "space_group")}
        result["lattice"] = outputs["lattice"]
        result["embedding"] = F.normalize(outputs["features"], dim=-1)
        return result

    def embed(self, patterns: Tensor) -> Tensor:
        """L2-normalised backbone features [B, encoder.output_dim]."""
        with self.evaluating():
            return F.normalize(self.encoder(patterns.to(self.device)), dim=-1)

    def predict_proba(self, patterns: Tensor) -> dict[str, Tensor]:
        """Softmax probabilities {"crystal_system": [B, 7], "space_group": [B, 230]}."""
        result = self.predict_all(patterns)
        return {task: result[task] for task in ("crystal_system", "space_group")}

    def predict_lattice(self, patterns: Tensor) -> Tensor:
        """Lattice parameters [B, 6] (Å, Å, Å, °, °, °)."""
        return self.predict_all(patterns)["lattice"]


class EnsembleClassifier(nn.Module):
    """Averages K independently seeded members at prediction time (the paper's 10-model ensemble).

    ``predict_proba`` and ``predict_lattice`` are member means; ``embed`` concatenates the members' unit
    embeddings scaled by 1/√K, so it is unit-norm and its cosine similarity is the members' mean cosine.
    """

    def __init__(self, members: Sequence[PXRDMethod]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("EnsembleClassifier needs at least one member")
        self.members = nn.ModuleList(members)
        self.tasks: tuple[str, ...] = tuple(t for t in members[0].tasks if all(t in m.tasks for m in members))

    def serves(self, task: str) -> bool:
        """Whether every member serves ``task``."""
        return task in self.tasks

    @property
    def num_parameters(self) -> int:
        """Trainable parameters of all members together."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def predict_proba(self, patterns: Tensor) -> dict[str, Tensor]:
        """Mean class probabilities over members, for the tasks every member serves."""
        per_member = [member.predict_proba(patterns) for member in self.members]
        keys = [key for key in per_member[0] if all(key in p for p in per_member)]
        return {key: torch.stack([p[key] for p in per_member]).mean(dim=0) for key in keys}

    def predict_lattice(self, patterns: Tensor) -> Tensor:
        """Mean lattice prediction over members [B, 6]."""
        return torch.stack([member.predict_lattice(patterns) for member in self.members]).mean(dim=0)

    def embed(self, patterns: Tensor) -> Tensor:
        """Concatenated member embeddings / √K (unit norm)."""
        parts = [member.embed(patterns) for member in self.members]
        return torch.cat(parts, dim=-1) / len(parts) ** 0.5


@register_model(
    "alphadiffract",
    tasks=AlphaDiffract.tasks,
    description="1D ConvNeXt (3 blocks, 80 ch) with CS / SG / lattice MLP heads; CE + GEMD + lattice MSE",
    paper="AlphaDiffract: Automated Crystallographic Analysis of Powder X-ray Diffraction Data "
    "(arXiv 2603.23367)",
    tiny=True,
)
def build_alphadiffract(
    input_length: int = 8192,
    num_crystal_systems: int = 7,
    num_space_groups: int = 230,
    channels: int = 80,
    kernel_sizes: Sequence[int] = (100, 50, 25),
    expansion: int = 4,
    drop_path: float = 0.3,
    layer_scale_init: float = 1e-6,
    block_pool: int = 5,
    stage_pool: Sequence[int] = (3, 2),
    norm: bool = False,
    stem_kernel: int = 1,
    cs_hidden: Sequence[int] = (2300, 1150),
    sg_hidden: Sequence[int] = (2300, 1150),
    lattice_hidden: Sequence[int] = (512, 256),
    head_activation: str = "gelu",
    head_dropout: float = 0.0,
    gemd_weight: float = 1.0,
    lattice_weight: float = 1.0,
    space_group_distance: str | Tensor | np.ndarray = "maximal_subgroup_hops",
    ensemble: int = 1,
    seed: int | None = None,
    optimizer: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
) -> AlphaDiffract:
    """Build AlphaDiffract (defaults = the paper); ``seed`` fixes the initial weights (ensemble members).

    ``space_group_distance="maximal_subgroup_hops"`` loads
    ``pxrdbench.symmetry.subgroups.hop_distance_matrix()`` (only when ``gemd_weight`` > 0); an explicit
    [K, K] matrix may be passed instead.
    """
    distance: Tensor | np.ndarray | None = None
    if gemd_weight > 0:
        if isinstance(space_group_distance, str):
            if space_group_distance != "maximal_subgroup_hops":
                raise ConfigError(
                    f"space_group_distance {space_group_distance!r}: only 'maximal_subgroup_hops'"
                )
            if num_space_groups != 230:
                raise ConfigError(f"maximal_subgroup_hops covers 230 space groups, not {num_space_groups}")
            from pxrdbench.symmetry.subgroups import hop_distance_matrix

            distance = hop_distance_matrix()
        else:
            distance = space_group_distance
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        encoder = ConvNeXt1D(
            in_channels=1,
            channels=channels,
            kernel_sizes=tuple(kernel_sizes),
            expansion=expansion,
            drop_path=drop_path,
            layer_scale_init=layer_scale_init,
            block_pool=block_pool,
            stage_pool=tuple(stage_pool),
            input_length=input_length,
            norm=norm,
            stem_kernel=stem_kernel,
        )
        width = encoder.output_dim
        return AlphaDiffract(
            encoder=encoder,
            cs_head=MLPHead(width, tuple(cs_hidden), num_crystal_systems, head_activation, head_dropout),
            sg_head=MLPHead(width, tuple(sg_hidden), num_space_groups, head_activation, head_dropout),
            lattice_head=LatticeHead(width, tuple(lattice_hidden), head_activation, head_dropout),
            space_group_distance=distance,
            gemd_weight=gemd_weight,
            lattice_weight=lattice_weight,
            ensemble=ensemble,
            optimizer=optimizer,
            scheduler=scheduler,
        )
