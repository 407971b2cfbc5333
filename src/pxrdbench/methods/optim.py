"""Optimisers and learning-rate schedules from configuration dicts (a method's ``optimizer`` / ``scheduler``).

Optimiser and scheduler are configuration (dicts), built in :meth:`PXRDMethod.configure_optimizers`:

- ``optimizer``: ``{"name": <torch.optim class>, **kwargs}``, e.g.
  ``{"name": "AdamW", "lr": 2e-4, "weight_decay": 0.01}``.
- ``scheduler`` (or None), one of:

  - ``{"name": "cyclic_triangular2", "base_lr_fraction": 0.1, "step_epochs": 6}`` (or ``"cyclic"`` with a
    ``"mode"``): CyclicLR stepped per iteration, lr from fraction·lr up to lr over ``step_epochs`` epochs
    and back, amplitude halved each cycle for triangular2;
  - ``{"name": "multistep", "milestones": [epochs], "gamma": 0.1}`` (stepped per epoch);
  - ``{"name": "cosine", "warmup_epochs": 0, "min_lr_fraction": 0.0}``: linear warm-up then cosine decay,
    stepped per iteration;
  - ``{"name": "warmup_cosine", "warmup_fraction": 0.05, "min_lr_fraction": 0.0}``: the budget-fitted schedule
    of the short presets (Li et al. 2020, "Budgeted training"): linear warm-up over the first
    ``warmup_fraction`` of the run's optimiser steps, then cosine decay to ``min_lr_fraction``·lr at the last
    step of the budget (``trainer.estimated_stepping_batches``), stepped per iteration.

  Per-iteration schedules need the steps per epoch: ``trainer.estimated_stepping_batches /
  trainer.max_epochs``, or an explicit ``"steps_per_epoch"`` key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from pxrdbench.errors import ConfigError, did_you_mean

DEFAULT_OPTIMIZER: dict[str, Any] = {"name": "AdamW", "lr": 2e-4, "weight_decay": 0.01}
SCHEDULER_KEYS: dict[str, set[str]] = {
    "cyclic": {"base_lr_fraction", "step_epochs", "mode", "steps_per_epoch"},
    "cyclic_triangular2": {"base_lr_fraction", "step_epochs", "steps_per_epoch"},
    "multistep": {"milestones", "gamma"},
    "cosine": {"warmup_epochs", "min_lr_fraction", "steps_per_epoch"},
    "warmup_cosine": {"warmup_fraction", "min_lr_fraction"},
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
    if name == "warmup_cosine":
        if not total_steps or total_steps < 1:
            raise ConfigError(
                "scheduler warmup_cosine: the run's optimiser steps are unknown; run it under a Trainer "
                "with max_steps or max_epochs"
            )
        fraction = float(options.get("warmup_fraction", 0.05))
        if not 0.0 <= fraction < 1.0:
            raise ConfigError(f"scheduler warmup_cosine: warmup_fraction must be in [0, 1), got {fraction}")
        warmup = round(fraction * int(total_steps))
        floor = float(options.get("min_lr_fraction", 0.0))
        return _warmup_cosine(optimizer, warmup, int(total_steps), floor), "step"
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), "epoch"


def _warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, floor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """lr·f(step): f rises linearly to 1 over ``warmup`` steps, then follows a half cosine from 1 down to
    ``floor`` at step ``total − 1`` (the last optimiser step of the budget) and stays there."""
    warmup = max(0, min(int(warmup), int(total) - 1))
    decay = max(1, int(total) - 1 - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = min(1.0, (step - warmup) / decay)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
