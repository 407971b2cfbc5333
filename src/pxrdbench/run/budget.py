"""Training budgets: what one fit may spend, counted in training patterns or epochs — never in seconds.

A preset (``configs/presets/<name>.yaml``) states its budget in one of two ways:

- ``budget.train_patterns``: optimiser steps × global batch, one number for every method or one per training
  family (``{classifier: 28800, contrastive: 128000}``; a method's family is its class's ``family``). The fit
  runs ``ceil(patterns / global batch)`` steps, rounded up to a whole number of validation intervals so that
  the last step is validated; validation runs every ``ceil(steps / curve_points)`` steps, across epoch ends.
- ``budget.epochs``: whole passes over the training split (``null``: the method config's
  ``trainer.max_epochs``, i.e. the paper's schedule); validation after every epoch.

``budget.safety_max_time`` (``dd:hh:mm:ss``) may stop a fit early on a slow machine; such a run is marked
``truncated`` in its results file and kept out of the rankings, because its numbers depend on the machine.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pxrdbench.errors import ConfigError


@dataclass(frozen=True)
class TrainingBudget:
    """The budget of one fit.

    Attributes:
        max_steps: optimiser steps (a ``train_patterns`` budget), else None.
        max_epochs: epochs (an ``epochs`` budget), else None.
        val_every_steps: steps between validations of a step budget (None: after every epoch).
        global_batch: patterns per optimiser step over all devices.
        safety_max_time: wall-clock safety stop (``dd:hh:mm:ss``) or None.
    """

    max_steps: int | None = None
    max_epochs: int | None = None
    val_every_steps: int | None = None
    global_batch: int = 1
    safety_max_time: str | None = None

    def __post_init__(self) -> None:
        if (self.max_steps is None) == (self.max_epochs is None):
            raise ConfigError("a training budget is either max_steps or max_epochs (exactly one)")
        if (self.max_steps or 1) < 1 or (self.max_epochs or 1) < 1:
            raise ConfigError(f"a training budget must be positive: {self}")

    @property
    def kind(self) -> str:
        """``"train_patterns"`` or ``"epochs"``."""
        return "train_patterns" if self.max_steps is not None else "epochs"

    @property
    def train_patterns(self) -> int | None:
        """Patterns of a step budget (steps × global batch), else None."""
        return None if self.max_steps is None else self.max_steps * self.global_batch

    def fraction(self, share: float, curve_points: int = 1) -> TrainingBudget:
        """A budget of ``share`` of this one (at least one step or epoch), validated ``curve_points`` times."""
        if self.max_steps is not None:
            return steps_budget(
                max(1, round(self.max_steps * share)), self.global_batch, curve_points, self.safety_max_time
            )
        return replace(self, max_epochs=max(1, round(self.max_epochs * share)))

    def split(self, first_share: float) -> tuple[TrainingBudget, TrainingBudget]:
        """Two consecutive budgets (e.g. pre-training and fine-tuning), each at least one step or epoch."""
        if self.max_steps is not None:
            total, points = self.max_steps, max(1, round(self.max_steps / (self.val_every_steps or 1)))
        else:
            total, points = int(self.max_epochs), int(self.max_epochs)
        first = min(max(1, round(total * first_share)), max(1, total - 1))
        second = max(1, total - first)
        if self.max_steps is not None:
            share_points = max(1, round(points * first / total)), max(1, round(points * second / total))
            return (
                steps_budget(first, self.global_batch, share_points[0], self.safety_max_time),
                steps_budget(second, self.global_batch, share_points[1], self.safety_max_time),
            )
        return replace(self, max_epochs=first), replace(self, max_epochs=second)

    def describe(self) -> dict[str, Any]:
        """The budget as recorded in a results file."""
        return {
            "kind": self.kind,
            "train_patterns": self.train_patterns,
            "max_steps": self.max_steps,
            "epochs": self.max_epochs,
            "val_every_steps": self.val_every_steps,
            "global_batch": self.global_batch,
            "safety_max_time": self.safety_max_time,
        }


def steps_budget(
    steps: int, global_batch: int, curve_points: int, safety_max_time: str | None
) -> TrainingBudget:
    """A step budget validated ``curve_points`` times: the interval is ``ceil(steps / points)`` and the steps
    are rounded up to a multiple of it (so the last step is validated)."""
    points = max(1, min(int(curve_points), int(steps)))
    every = math.ceil(int(steps) / points)
    return TrainingBudget(
        max_steps=every * points, val_every_steps=every, global_batch=int(global_batch),
        safety_max_time=safety_max_time,
    )  # fmt: skip


def family_patterns(train_patterns: int | Mapping[str, int] | None, family: str) -> int | None:
    """The pattern budget of ``family`` from a preset's ``train_patterns`` (a number or a family mapping)."""
    if train_patterns is None or not isinstance(train_patterns, Mapping):
        return None if train_patterns is None else int(train_patterns)
    if family not in train_patterns:
        raise ConfigError(
            f"the preset's budget.train_patterns has no entry for the {family!r} family "
            f"(it has {sorted(train_patterns)})"
        )
    return int(train_patterns[family])


def resolve_budget(
    budget: Mapping[str, Any],
    family: str,
    global_batch: int,
    config_epochs: int | None,
    curve_points: int = 10,
) -> TrainingBudget:
    """The :class:`TrainingBudget` of a method of ``family`` under a preset's ``budget`` section."""
    if "max_time" in budget:
        raise ConfigError(
            "a preset budget in seconds (max_time) is not a benchmark budget: state train_patterns or epochs, "
            "and at most a safety_max_time"
        )
    patterns = family_patterns(budget.get("train_patterns"), family)
    safety = budget.get("safety_max_time")
    if patterns is not None and budget.get("epochs") is not None:
        raise ConfigError("a preset budget states train_patterns or epochs, not both")
    if patterns is not None:
        if patterns < global_batch:
            raise ConfigError(
                f"budget of {patterns} training patterns is less than one global batch ({global_batch})"
            )
        return steps_budget(math.ceil(patterns / global_batch), global_batch, curve_points, safety)
    epochs = budget.get("epochs") or config_epochs
    if not epochs:
        raise ConfigError(
            "the preset's budget.epochs is null and the method config has no trainer.max_epochs"
        )
    return TrainingBudget(max_epochs=int(epochs), global_batch=int(global_batch), safety_max_time=safety)
