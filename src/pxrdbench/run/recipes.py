"""Training recipes: how a method is trained, owned by its config (``recipe:``), run by ``pxrdbench bench``.

- :class:`SingleFit` — one ``Trainer.fit`` (the default);
- :class:`Ensemble` — K members with seeds S, S+1, …, S+K−1, each its own fit and run directory, averaged at
  prediction time (AlphaDiffract's 10-model ensemble);
- :class:`PretrainFinetune` — two stages on the same weights: the method's ``pretrain`` stage (e.g. Barlow Twins
  on two augmented views), then its ``finetune`` stage (e.g. the classification heads, end to end), each its own
  fit, run directory and share of the budget (:meth:`TrainingBudget.split`);
- :class:`FitBaseline` — one pass over the training split's evaluation renderings (``majority``,
  ``pattern_nn``: no gradients, no Trainer).

Under DDP every rank runs every stage of a recipe (each ``fit`` is collective); only rank 0 returns the trained
method, the other ranks return ``None`` once the last fit is done, so no rank ever waits on one that left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from pxrdbench.errors import ConfigError
from pxrdbench.run.budget import TrainingBudget
from pxrdbench.run.learning_curve import fit_progress


@dataclass
class TrainingContext:
    """What a recipe trains with.

    Attributes:
        build_method: seed → a freshly initialised method (the seed fixes its initial weights).
        make_trainer: (run directory, budget, stage name) → a configured ``lightning.Trainer`` with a
            :class:`~pxrdbench.run.learning_curve.LearningCurve` callback.
        datamodule: the (set-up) data module.
        seed: the run's seed.
        run_dir: where checkpoints and logs go.
        budget: what one fit (one member) may spend (:mod:`pxrdbench.run.budget`).
        resume: continue from ``<run dir>/checkpoints/last.ckpt`` when it exists.
        lr_factor: multiplies the learning rate of the method's optimiser config (the learning-rate sweep).
    """

    build_method: Callable[[int], Any]
    make_trainer: Callable[..., Any]
    datamodule: Any
    seed: int
    run_dir: Path
    budget: TrainingBudget
    resume: bool = False
    lr_factor: float = 1.0

    @property
    def global_batch(self) -> int:
        """Patterns per optimiser step over all devices."""
        return self.budget.global_batch


@dataclass
class Trained:
    """A recipe's outcome: the method to evaluate (None on ranks other than 0) and what training did."""

    method: Any
    patterns_seen: int
    stages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def truncated(self) -> bool:
        """Whether the wall-clock safety stop ended any fit before its budget."""
        return any(s.get("truncated", False) for s in self.stages)

    @property
    def curve(self) -> list[dict[str, Any]]:
        """The learning-curve points of every fit, in training order."""
        return [point for s in self.stages for point in s.get("curve", [])]


class Recipe:
    """Base class: :meth:`train` a method in a :class:`TrainingContext`."""

    members: int = 1

    def train(self, ctx: TrainingContext) -> Trained:
        """Train and return the outcome."""
        raise NotImplementedError(f"{type(self).__name__}.train")

    def describe(self) -> dict[str, Any]:
        """The recipe as recorded in a results file."""
        return {"name": type(self).__name__, "members": self.members}


def scale_learning_rate(method: Any, factor: float) -> Any:
    """Multiply the learning rate of ``method``'s optimiser config by ``factor`` (in place); return it."""
    if factor != 1.0:
        config = dict(method.optimizer_config)
        config["lr"] = float(config.get("lr", 1e-3)) * float(factor)
        method.optimizer_config = config
    return method


def fit_once(
    ctx: TrainingContext,
    seed: int,
    run_dir: Path,
    stage: str,
    method: Any = None,
    budget: TrainingBudget | None = None,
) -> tuple[Any, dict[str, Any], bool]:
    """Fit ``method`` (default: a new one built with ``seed``, its learning rate × ``ctx.lr_factor``) under a new
    Trainer in ``run_dir`` for ``budget`` (default: the run's), then load its best weights.

    Returns (method, stage record, is rank 0). The record has the steps, epochs and patterns done, whether the
    safety stop ``truncated`` the fit (fewer steps than the budget's), the peak learning rate and the learning
    curve."""
    method = scale_learning_rate(ctx.build_method(seed), ctx.lr_factor) if method is None else method
    budget = budget or ctx.budget
    trainer = ctx.make_trainer(run_dir, budget, stage)
    last = run_dir / "checkpoints" / "last.ckpt"
    trainer.fit(
        method, datamodule=ctx.datamodule, ckpt_path=str(last) if (ctx.resume and last.exists()) else None
    )
    progress = fit_progress(trainer)
    steps = int(progress["step"])
    if budget.max_steps is not None:
        truncated = steps < budget.max_steps
    else:
        truncated = int(progress["epoch"]) < int(budget.max_epochs or 0)
    patterns = progress["patterns"]
    record = {
        "stage": stage,
        "seed": seed,
        "steps": steps,
        "epochs": int(progress["epoch"]),
        "patterns": int(patterns) if patterns is not None else steps * ctx.global_batch,
        "truncated": bool(truncated),
        "lr": float(method.optimizer_config.get("lr", float("nan"))),
        "curve": list(progress["points"]),
    }
    return best_weights(method, trainer), record, bool(trainer.is_global_zero)


def best_weights(method: Any, trainer: Any) -> Any:
    """Load the best-by-validation-loss weights when a best checkpoint exists (else keep the last)."""
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if callback is not None else ""
    if best and Path(best).is_file():
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        method.load_state_dict(state)
    return method


class SingleFit(Recipe):
    """One ``Trainer.fit`` of one model."""

    def train(self, ctx: TrainingContext) -> Trained:
        method, record, is_zero = fit_once(ctx, ctx.seed, ctx.run_dir, "fit")
        return Trained(method if is_zero else None, record["patterns"], [record])


class Ensemble(Recipe):
    """K independently seeded members (seeds S … S+K−1, run directories ``member<k>/``), averaged at prediction.

    Args:
        members: K (AlphaDiffract: 10).
    """

    def __init__(self, members: int = 10) -> None:
        if int(members) < 1:
            raise ConfigError(f"Ensemble: members must be >= 1, got {members}")
        self.members = int(members)

    def train(self, ctx: TrainingContext) -> Trained:
        from pxrdbench.methods.ensemble import EnsembleClassifier

        if self.members == 1:
            return SingleFit().train(ctx)
        methods, stages, is_zero = [], [], True
        for k in range(self.members):
            method, record, is_zero = fit_once(ctx, ctx.seed + k, ctx.run_dir / f"member{k}", f"member{k}")
            methods.append(method)
            stages.append(record)
        patterns = sum(s["patterns"] for s in stages)
        return Trained(EnsembleClassifier(methods) if is_zero else None, patterns, stages)


class PretrainFinetune(Recipe):
    """Two stages on the same weights: ``method.set_training_stage("pretrain")`` then ``"finetune"``, each its
    own fit (and optimiser, built by the method for that stage) in ``<run dir>/pretrain`` and ``…/finetune``.

    Args:
        pretrain_fraction: share of the run's budget (patterns or epochs) given to pre-training (at least one
            step or epoch each).
    """

    def __init__(self, pretrain_fraction: float = 0.5) -> None:
        if not 0.0 < float(pretrain_fraction) < 1.0:
            raise ConfigError(
                f"PretrainFinetune: pretrain_fraction must be in (0, 1), got {pretrain_fraction}"
            )
        self.pretrain_fraction = float(pretrain_fraction)

    def train(self, ctx: TrainingContext) -> Trained:
        first, second = ctx.budget.split(self.pretrain_fraction)
        method = scale_learning_rate(ctx.build_method(ctx.seed), ctx.lr_factor)
        stages = []
        from pxrdbench.data.datamodule import apply_requirements

        for stage, budget in (("pretrain", first), ("finetune", second)):
            method.set_training_stage(stage)
            apply_requirements(ctx.datamodule, method.data_requirements())  # e.g. two views to pre-train
            method, record, is_zero = fit_once(ctx, ctx.seed, ctx.run_dir / stage, stage, method, budget)
            stages.append(record)
        return Trained(method if is_zero else None, sum(s["patterns"] for s in stages), stages)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pretrain_fraction": self.pretrain_fraction}


class FitBaseline(Recipe):
    """One pass over the training split's evaluation renderings (``method.fit(batches)``), on one process."""

    def train(self, ctx: TrainingContext) -> Trained:
        from pxrdbench.tasks.render import rendered_batches

        method = ctx.build_method(ctx.seed)
        method.fit(rendered_batches(ctx.datamodule, "train"))
        n = len(ctx.datamodule.split_dataset("train"))
        record = {
            "stage": "fit", "seed": ctx.seed, "steps": 0, "epochs": 1, "patterns": n, "truncated": False,
            "curve": [],
        }  # fmt: skip
        return Trained(method, n, [record])


def with_members(recipe: Recipe, members: int | None) -> Recipe:
    """The recipe with ``members`` ensemble members (``bench --ensemble N`` / a preset's ``ensemble``); recipes
    other than :class:`SingleFit` / :class:`Ensemble` (two-stage, baselines) are returned unchanged."""
    if members is None or not isinstance(recipe, SingleFit | Ensemble):
        return recipe
    return SingleFit() if int(members) == 1 else Ensemble(int(members))
