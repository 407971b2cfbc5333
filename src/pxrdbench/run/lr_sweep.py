"""The peak learning rate of a budgeted run, chosen by one procedure applied equally to every method.

Procedure (a preset's ``lr_sweep: {factors: [1/3, 1, 3], budget_fraction: 0.1}``): for each factor f, train
the method's recipe (one member) from the same seed with learning rate f × the config's, under the preset's
schedule fitted to ``budget_fraction`` of the run's budget, validated once at its end; the factor with the
lowest validation loss (the method's own training objective on the validation split) wins, ties to the
smaller factor; a candidate whose loss is not finite loses. The test split is never looked at. The whole
sweep (candidates, losses, the winner, its wall time) is recorded in the results file (``training.lr``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from pxrdbench.run.recipes import Recipe, TrainingContext, with_members

PROCEDURE = (
    "{n}-value sweep of the peak learning rate (factors {factors} x the config's lr), each candidate trained "
    "from the run's seed for {fraction:g} of the budget under the preset's schedule; lowest validation loss "
    "wins (ties: the smaller lr); the test split is not used"
)


def final_val_loss(stages: list[dict[str, Any]]) -> float:
    """The validation loss at the last learning-curve point of the last fit (inf when missing or not finite)."""
    points = [p for s in stages for p in s.get("curve", [])]
    value = points[-1].get("val_loss") if points else None
    return float(value) if value is not None and math.isfinite(value) else math.inf


def sweep_learning_rate(
    recipe: Recipe, ctx: TrainingContext, base_lr: float, factors: list[float], budget_fraction: float
) -> dict[str, Any]:
    """Run the sweep; return the ``training.lr`` record with the winning ``factor`` and ``peak_lr``."""
    short = ctx.budget.fraction(float(budget_fraction), curve_points=1)
    single = with_members(recipe, 1)
    t0 = time.perf_counter()
    candidates = []
    for factor in sorted(float(f) for f in factors):
        trial = dataclasses.replace(
            ctx,
            budget=short,
            lr_factor=factor,
            resume=False,
            run_dir=ctx.run_dir / "lr_sweep" / f"x{factor:.4g}",
        )
        trained = single.train(trial)
        candidates.append(
            {"factor": factor, "lr": base_lr * factor, "val_loss": _json_loss(final_val_loss(trained.stages))}
        )
    best = min(candidates, key=lambda c: (math.inf if c["val_loss"] is None else c["val_loss"], c["factor"]))
    return {
        "source": "sweep",
        "peak_lr": best["lr"],
        "factor": best["factor"],
        "config_lr": base_lr,
        "procedure": PROCEDURE.format(
            n=len(candidates),
            factors=[round(c["factor"], 4) for c in candidates],
            fraction=float(budget_fraction),
        ),
        "sweep_budget": short.describe(),
        "sweep": candidates,
        "sweep_wall_time_s": round(time.perf_counter() - t0, 2),
    }


def config_learning_rate(base_lr: float) -> dict[str, Any]:
    """The ``training.lr`` record of a run without a sweep (the config's learning rate)."""
    return {
        "source": "config",
        "peak_lr": base_lr,
        "factor": 1.0,
        "config_lr": base_lr,
        "procedure": "the config's",
    }


def _json_loss(value: float) -> float | None:
    return float(f"{value:.6g}") if math.isfinite(value) else None
