"""Collect a method's predictions over rendered batches (simulated or experimental), as numpy arrays.

Methods take whole batches (``predict_proba(batch)``, ``predict_lattice(batch)``, ``embed(batch)``), so a
method that reads more than the pattern (peak tokens, graphs) finds it in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from pxrdbench.tasks.render import to_device

LABEL_KEYS = ("crystal_system", "space_group", "extinction_group", "lattice", "index", "elements")


@dataclass
class Predictions:
    """Per-item labels and predictions, concatenated over batches."""

    labels: dict[str, np.ndarray] = field(default_factory=dict)
    proba: dict[str, np.ndarray] = field(default_factory=dict)
    lattice: np.ndarray | None = None
    embeddings: np.ndarray | None = None

    def __len__(self) -> int:
        return len(next(iter(self.labels.values()))) if self.labels else 0


def _to_numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().numpy() if x.is_floating_point() else x.detach().cpu().numpy()


def prepare(method: Any, device: torch.device | str) -> None:
    """Eval mode on ``device`` for torch modules (other methods are left alone)."""
    if isinstance(method, torch.nn.Module):
        method.eval()
        method.to(device)


@torch.no_grad()
def collect_predictions(
    method: Any,
    batches: Iterable[Mapping[str, Any]],
    *,
    want_proba: bool = True,
    want_lattice: bool = True,
    want_embeddings: bool = False,
    device: torch.device | str = "cpu",
) -> Predictions:
    """Run ``method`` over rendered batches (each with ``pattern`` and whatever labels exist)."""
    parts: dict[str, list[np.ndarray]] = {}
    prepare(method, device)

    def add(key: str, value: np.ndarray) -> None:
        parts.setdefault(key, []).append(value)

    for batch in batches:
        batch = to_device(batch, device)
        for key in LABEL_KEYS:
            if key in batch:
                add(f"label/{key}", _to_numpy(batch[key]))
        if want_proba:
            for task, proba in method.predict_proba(batch).items():
                add(f"proba/{task}", _to_numpy(proba))
        if want_lattice:
            add("lattice", _to_numpy(method.predict_lattice(batch)))
        if want_embeddings:
            add("embeddings", _to_numpy(method.embed(batch)))
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return Predictions(
        labels={k.split("/", 1)[1]: v for k, v in cat.items() if k.startswith("label/")},
        proba={k.split("/", 1)[1]: v for k, v in cat.items() if k.startswith("proba/")},
        lattice=cat.get("lattice"),
        embeddings=cat.get("embeddings"),
    )
