"""The learning curve of a fit: one point per validation pass (validation metrics vs training patterns seen),
stored in the results file (``training.curve``) and drawn on the task pages.

A point is ``{"stage", "step", "patterns", "epoch", "train_loss", "val_loss", "val": {metric: value}}``:
``patterns`` = training patterns seen so far (the batches' sizes × the number of processes, so a short last
batch of an epoch counts what it holds); ``train_loss`` = the mean training loss over the steps since the
previous point (on rank 0 under DDP: its shard's batches); ``val`` = every scalar the method logged for the
validation split, without the ``val_`` prefix (accuracies as fractions, as torchmetrics logs them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback


def _finite(value: float) -> float | None:
    """A JSON-safe float rounded to 6 significant digits (None for NaN / ±inf)."""
    return float(f"{value:.6g}") if math.isfinite(value) else None


class LearningCurve(Callback):
    """Collect a learning-curve point at the end of every validation pass (sanity checks excluded).

    Args:
        stage: the fit's name in the recipe (``fit``, ``member3``, ``pretrain``…).
        global_batch: patterns per optimiser step over all devices.
        path: where rank 0 also writes the curve and the steps done (JSON, rewritten at every point and at the end
            of training): the record of a fit run in spawned processes (``ddp_spawn``), whose callbacks the
            launching process never sees (:func:`fit_progress`).
    """

    def __init__(self, stage: str, global_batch: int, path: str | Path | None = None) -> None:
        self.stage = stage
        self.global_batch = int(global_batch)
        self.path = Path(path) if path is not None else None
        self.points: list[dict[str, Any]] = []
        self.patterns = 0
        self._loss_sum = torch.zeros((), dtype=torch.float64)
        self._loss_count = 0

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        size = batch["pattern"].shape[0] if isinstance(batch, Mapping) and "pattern" in batch else None
        self.patterns += int(size) * int(trainer.world_size) if size is not None else self.global_batch
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor):
            self._loss_sum = self._loss_sum.to(loss.device) + loss.detach().double()
            self._loss_count += 1

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        if self.path is not None and trainer.is_global_zero and not self.points:
            self.path.unlink(
                missing_ok=True
            )  # a file left by an earlier fit in this directory is not this one's

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._write(trainer)

    def _write(self, trainer: Any) -> None:
        if self.path is None or not trainer.is_global_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "points": self.points, "patterns": self.patterns, "step": int(trainer.global_step),
            "epoch": int(trainer.current_epoch),
        }  # fmt: skip
        self.path.write_text(json.dumps(record) + "\n")

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        val = {
            key.removeprefix("val_"): _finite(float(value))
            for key, value in sorted(trainer.callback_metrics.items())
            if key.startswith("val_") and (not isinstance(value, torch.Tensor) or value.numel() == 1)
        }
        train_loss = float(self._loss_sum) / self._loss_count if self._loss_count else float("nan")
        step = int(trainer.global_step)
        self.points.append(
            {
                "stage": self.stage,
                "step": step,
                "patterns": self.patterns,
                "epoch": int(trainer.current_epoch),
                "train_loss": _finite(train_loss),
                "val_loss": val.pop("loss", None),
                "val": val,
            }
        )
        self._loss_sum = torch.zeros((), dtype=torch.float64)
        self._loss_count = 0
        self._write(trainer)

    def state_dict(self) -> dict[str, Any]:
        """Kept in checkpoints so that a resumed fit continues its curve."""
        return {"points": list(self.points), "patterns": self.patterns}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.points = list(state_dict.get("points", []))
        self.patterns = int(state_dict.get("patterns", 0))


def find_curve(trainer: Any) -> LearningCurve | None:
    """The trainer's :class:`LearningCurve` callback, if it has one."""
    return next((c for c in trainer.callbacks if isinstance(c, LearningCurve)), None)


def fit_progress(trainer: Any) -> dict[str, Any]:
    """What a finished fit did: ``{"points", "patterns", "step", "epoch"}`` from rank 0's file when the
    callback has one (also right after a ``ddp_spawn`` fit), else from this process's callback and trainer."""
    curve = find_curve(trainer)
    if curve is not None and curve.path is not None and curve.path.is_file():
        return json.loads(curve.path.read_text())
    return {
        "points": list(curve.points) if curve is not None else [],
        "patterns": curve.patterns if curve is not None else None,
        "step": int(trainer.global_step),
        "epoch": int(trainer.current_epoch),
    }
