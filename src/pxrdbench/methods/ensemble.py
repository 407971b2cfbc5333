"""A K-member ensemble at prediction time (AlphaDiffract's 10 independently seeded models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pxrdbench.errors import ConfigError
from pxrdbench.methods.base import DataRequirements, PXRDMethod, predict_everything


class EnsembleClassifier(nn.Module):
    """Averages K independently seeded members at prediction time.

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

    def data_requirements(self) -> DataRequirements:
        """The members' (identical) batch requirements."""
        return self.members[0].data_requirements()

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Everything predicted for a rendered batch (:func:`~pxrdbench.methods.base.predict_everything`)."""
        return predict_everything(self, batch)

    @property
    def num_parameters(self) -> int:
        """Trainable parameters of all members together."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Mean class probabilities over members, for the tasks every member serves."""
        per_member = [member.predict_proba(batch) for member in self.members]
        keys = [key for key in per_member[0] if all(key in p for p in per_member)]
        return {key: torch.stack([p[key] for p in per_member]).mean(dim=0) for key in keys}

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        """Mean lattice prediction over members [B, 6]."""
        return torch.stack([member.predict_lattice(batch) for member in self.members]).mean(dim=0)

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """Concatenated member embeddings / √K (unit norm)."""
        parts = [member.embed(batch) for member in self.members]
        return torch.cat(parts, dim=-1) / len(parts) ** 0.5
