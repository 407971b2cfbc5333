"""Presets: what a ``bench`` run may spend and evaluate (``configs/presets/<name>.yaml``). How a method is fed
and trained (view, batch, recipe, the paper's schedule) is its own config, ``configs/methods/<name>.yaml``.

A preset states (see ``docs/BENCHMARK.md`` "Presets"):

- ``budget``: training patterns (per family) or epochs, a wall-clock ``safety_max_time``, the data subset, the
  global batch and ensemble size (:mod:`pxrdbench.run.budget`);
- ``schedule``: ``paper`` (each method config's own scheduler) or a scheduler config fitted to the budget, e.g.
  ``{name: warmup_cosine, warmup_fraction: 0.05}`` (:mod:`pxrdbench.methods.optim`), given to every method;
- ``lr_sweep``: ``null`` (each config's learning rate) or ``{factors: [...], budget_fraction: f}``: the peak
  learning rate of every method is chosen by the same procedure (:mod:`pxrdbench.run.lr_sweep`);
- ``curve_points``: validations over a pattern budget (the learning curve in the results file);
- ``eval``: bootstrap resamples, robustness perturbations, experimental subsets, retrieval pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pxrdbench.config import load_config
from pxrdbench.errors import ConfigError

BUDGET_KEYS = {
    "train_patterns", "epochs", "safety_max_time", "max_structures", "batch_size", "limit_train_batches",
    "ensemble",
}  # fmt: skip
SWEEP_KEYS = {"factors", "budget_fraction"}


@dataclass(frozen=True)
class Preset:
    """A named budget (see ``configs/presets/``)."""

    name: str
    budget: dict[str, Any]
    eval: dict[str, Any]
    schedule: str | dict[str, Any] = "paper"
    lr_sweep: dict[str, Any] | None = None
    curve_points: int = 10
    num_workers: int = 0
    precision_cpu: str = "32-true"
    precision_gpu: str = "bf16-mixed"
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f"configs/presets/{self.name}.yaml"
        unknown = set(self.budget) - BUDGET_KEYS
        if unknown:
            hint = " (budgets are counted in training patterns or epochs)" if "max_time" in unknown else ""
            raise ConfigError(
                f"{where}: unknown budget keys {sorted(unknown)}{hint}; known: {sorted(BUDGET_KEYS)}"
            )
        if self.schedule != "paper" and not (isinstance(self.schedule, dict) and "name" in self.schedule):
            raise ConfigError(f"{where}: schedule must be 'paper' or a scheduler config with a name")
        if self.lr_sweep is not None:
            unknown = set(self.lr_sweep) - SWEEP_KEYS
            factors = self.lr_sweep.get("factors") or []
            fraction = float(self.lr_sweep.get("budget_fraction", 0))
            if unknown or len(factors) < 2 or not 0.0 < fraction <= 1.0:
                raise ConfigError(
                    f"{where}: lr_sweep needs factors (at least 2) and budget_fraction in (0, 1]; "
                    f"known keys {sorted(SWEEP_KEYS)}"
                )
        if int(self.curve_points) < 1:
            raise ConfigError(f"{where}: curve_points must be >= 1")

    def scheduler_for(self, config_scheduler: dict[str, Any] | None) -> dict[str, Any] | None:
        """The scheduler a method trains with under this preset (``paper``: the config's own)."""
        return config_scheduler if self.schedule == "paper" else dict(self.schedule)


def load_preset(name: str) -> Preset:
    cfg = load_config("presets", name)
    unknown = set(cfg) - set(Preset.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"configs/presets/{name}.yaml: unknown keys {sorted(unknown)}")
    return Preset(**cfg)
