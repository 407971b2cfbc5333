"""``pxrdbench bench``: train a registered method on a dataset under a preset (its config's recipe), evaluate
every task it serves (the task registry), write the results file with its provenance, rebuild the leaderboards.

One process per device under DDP (Lightning launches them; every rank runs the recipe, only rank 0 evaluates
and writes). The config's ``data.batch_size`` (or the preset's) is the **global** batch: each of D devices gets
``global // D`` patterns per step (an error when D does not divide it), so a D-process run takes the same
optimiser steps as a 1-process run. Evaluation runs on rank 0 over whole splits (no distributed sampler, so no
padded duplicates) with the global batch. Checkpoints (best by validation loss, and last) and CSV + TensorBoard
logs go to ``runs/<model>__<data>__<preset>__seed<S>/`` (``member<k>/`` for ensemble members); ``--resume``
continues from the last checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pxrdbench.errors import ConfigError
from pxrdbench.run.budget import TrainingBudget, resolve_budget
from pxrdbench.run.settings import Preset, load_preset


@dataclass
class BenchRequest:
    """What ``pxrdbench bench`` was asked to do."""

    model: str
    data: str = "amcsd"
    preset: str = "quick"
    gpus: str | int = "auto"
    accelerator: str = "auto"
    seed: int = 0
    resume: bool = False
    workers: int = 2
    results_dir: str = "leaderboards/results"
    runs_dir: str = "runs"
    leaderboard: bool = True
    strategy: str | None = None  # None: "ddp" for several devices; tests pass "ddp_spawn"
    max_structures: int | None = None  # overrides the preset's
    batch_size: int | None = None  # global; overrides the preset's and the config's
    ensemble: int | None = None  # members; overrides the preset's and the config's recipe
    nodes: int = 1


def resolve_devices(accelerator: str, gpus: str | int) -> tuple[str, int]:
    """(accelerator, device count): ``auto`` picks the GPU when CUDA is available, else the CPU with 1 device."""
    if accelerator not in ("auto", "cpu", "gpu"):
        raise ConfigError(f"--accelerator {accelerator!r}: use auto, cpu or gpu")
    has_gpu = torch.cuda.is_available()
    if accelerator == "auto":
        accelerator = "gpu" if has_gpu else "cpu"
    if accelerator == "gpu" and not has_gpu:
        raise ConfigError("--accelerator gpu: no CUDA device is visible")
    if gpus in ("auto", None, ""):
        devices = torch.cuda.device_count() if accelerator == "gpu" else 1
    else:
        devices = int(gpus)
        if devices < 1:
            raise ConfigError(f"--gpus {gpus}: need at least 1 device")
    return accelerator, devices


def run_name(req: BenchRequest) -> str:
    return f"{req.model}__{req.data}__{req.preset}__seed{req.seed}"


def config_overrides(req: BenchRequest, preset: Preset, cli: Any, world: int) -> tuple[list[str], int]:
    """Command-line overrides the preset and request put on a method config, and the global batch."""
    budget = preset.budget
    global_batch = int(req.batch_size or budget.get("batch_size") or cli.config.data.batch_size)
    if global_batch % world:
        raise ConfigError(f"global batch {global_batch} is not divisible by {world} devices")
    max_structures = req.max_structures if req.max_structures is not None else budget.get("max_structures")
    overrides = [
        "--data.dataset", req.data,
        "--data.batch_size", str(global_batch // world),
        "--data.seed", str(req.seed),
        "--data.num_workers", str(int(preset.num_workers)),
        "--data.workers", str(req.workers),
        "--data.max_structures", "null" if max_structures is None else str(int(max_structures)),
    ]  # fmt: skip
    return overrides, global_batch


def run_bench(req: BenchRequest) -> Path | None:
    """Train, evaluate, write the results file (rank 0) and return its path; other ranks return None."""
    import lightning as L

    # Everything evaluation needs is imported now, and the code's git state recorded now, so a results file
    # describes the code that trained the model even if the checkout changes while a long run trains.
    import pxrdbench.report.leaderboard
    import pxrdbench.report.results
    import pxrdbench.tasks.registry  # noqa: F401
    from pxrdbench.methods.registry import instantiate, parse_method
    from pxrdbench.run import provenance
    from pxrdbench.run.lightning_cli import configure_data_for
    from pxrdbench.run.recipes import FitBaseline, TrainingContext, with_members

    git = provenance.git_state()
    preset = load_preset(req.preset)
    accelerator, devices = resolve_devices(req.accelerator, req.gpus)
    world = devices * int(req.nodes)
    overrides, global_batch = config_overrides(req, preset, parse_method(req.model), world)
    cli = parse_method(req.model, overrides)
    built = instantiate(cli)
    dm, recipe = built["data"], built["recipe"]
    members = req.ensemble if req.ensemble is not None else preset.budget.get("ensemble")
    recipe = with_members(recipe, members)
    family = str(getattr(built["model"], "family", "classifier"))
    learned = not isinstance(recipe, FitBaseline)
    configure_data_for(dm, built["model"])
    L.seed_everything(req.seed, workers=True)
    dm.prepare_data()
    dm.setup()
    run_dir = Path(req.runs_dir) / run_name(req)
    resolved = cli.parser.dump(cli.config)
    run_config = {
        "method": req.model,
        "config": resolved,
        "dataset": req.data,
        "max_structures": dm.max_structures,
        "seed": req.seed,
        "view": dm.view.name,
        "batch_size": global_batch,
    }

    base_lr = float(built["model"].optimizer_config.get("lr", float("nan"))) if learned else None

    def build_method(seed: int) -> Any:
        L.seed_everything(seed, workers=True)
        method = instantiate(cli)["model"]
        method.run_config = run_config
        if learned:
            method.scheduler_config = preset.scheduler_for(method.scheduler_config)
        return method

    if learned:
        budget = resolve_budget(
            preset.budget, family, global_batch, cli.config.trainer.max_epochs, preset.curve_points
        )
    else:
        budget = TrainingBudget(max_epochs=1, global_batch=global_batch)

    def make_trainer(directory: Path, fit_budget: TrainingBudget, stage: str = "fit") -> Any:
        return _trainer(req, preset, cli.config.trainer, accelerator, devices, directory, fit_budget, stage)

    ctx = TrainingContext(build_method, make_trainer, dm, req.seed, run_dir, budget, req.resume)
    t0 = time.perf_counter()
    lr_record = choose_learning_rate(req, preset, recipe, ctx, base_lr) if learned else None
    if lr_record is not None:
        ctx = dataclasses.replace(ctx, lr_factor=float(lr_record["factor"]))
    trained = recipe.train(ctx)
    train_time = time.perf_counter() - t0
    if trained.method is None:
        return None
    dm.batch_size = global_batch  # evaluation batches do not depend on the device count
    config = {
        "resolved": resolved,
        "recipe": recipe.describe(),
        "view": dm.view.name,
        "batch_size": global_batch,
    }
    n_train = max(1, len(dm.split_dataset("train")))
    training = {
        "stages": [{k: v for k, v in s.items() if k != "curve"} for s in trained.stages],
        "patterns_seen": int(trained.patterns_seen),
        "steps": int(sum(s["steps"] for s in trained.stages)),
        "epochs": round(trained.patterns_seen / n_train / max(1, recipe.members), 3),
        "wall_time_s": round(train_time, 2),
        "truncated": trained.truncated,
        "budget": {
            **budget.describe(),
            "kind": budget.kind if learned else "baseline",
            "family": family,
            "schedule": preset.schedule if learned else None,
        },
        "lr": lr_record,
        "curve": trained.curve,
    }
    from pxrdbench.run.write import evaluate_and_write

    return evaluate_and_write(req, preset, dm, trained, config, accelerator, devices, training, git)


def choose_learning_rate(
    req: BenchRequest, preset: Preset, recipe: Any, ctx: Any, base_lr: float | None
) -> dict[str, Any]:
    """The ``training.lr`` record: the preset's sweep (reused from ``<run dir>/lr_sweep.json`` on ``--resume``)
    or the config's learning rate."""
    from pxrdbench.run.lr_sweep import config_learning_rate, sweep_learning_rate

    base = float(base_lr if base_lr is not None else float("nan"))
    if not preset.lr_sweep:
        return config_learning_rate(base)
    saved = Path(ctx.run_dir) / "lr_sweep.json"
    if req.resume and saved.is_file():
        return json.loads(saved.read_text())
    sweep = preset.lr_sweep
    record = sweep_learning_rate(recipe, ctx, base, list(sweep["factors"]), float(sweep["budget_fraction"]))
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(record, indent=2) + "\n")
    return record


def _trainer(
    req: BenchRequest,
    preset: Preset,
    trainer_config: Any,
    accelerator: str,
    devices: int,
    run_dir: Path,
    budget: TrainingBudget,
    stage: str = "fit",
) -> Any:
    """The Trainer of one fit under ``budget`` (steps validated every ``val_every_steps`` across epoch ends, or
    epochs validated after each), with the preset's precision, its wall-clock safety stop, checkpoints (best by
    validation loss, and last), CSV + TensorBoard logs and the learning-curve callback."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from pxrdbench.run.host_memory import skip_filling_new_tensors
    from pxrdbench.run.learning_curve import LearningCurve

    strategy = req.strategy or ("ddp" if devices * req.nodes > 1 else "auto")
    precision = preset.precision_gpu if accelerator == "gpu" else preset.precision_cpu
    callbacks: list[Any] = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints", monitor="val_loss", mode="min", save_top_k=1, save_last=True,
            filename="best",
        ),
        LearningCurve(stage, budget.global_batch, run_dir / "learning_curve.json"),
    ]  # fmt: skip
    tty = sys.stderr.isatty()
    if tty:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    if budget.max_steps is not None:
        length = {
            "max_steps": budget.max_steps, "max_epochs": -1, "val_check_interval": budget.val_every_steps,
            "check_val_every_n_epoch": None,
        }  # fmt: skip
    else:
        length = {"max_epochs": budget.max_epochs}
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=int(req.nodes),
        strategy=strategy,
        precision=precision,
        **length,
        max_time=budget.safety_max_time,
        limit_train_batches=preset.budget.get("limit_train_batches", 1.0),
        gradient_clip_val=trainer_config.gradient_clip_val,
        deterministic=accelerator == "cpu",
        callbacks=callbacks,
        logger=[CSVLogger(run_dir, name="csv"), TensorBoardLogger(run_dir, name="tensorboard")],
        enable_progress_bar=tty,
        enable_model_summary=tty,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )
    skip_filling_new_tensors()
    return trainer
