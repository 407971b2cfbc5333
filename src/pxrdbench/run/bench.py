"""``pxrdbench bench``: train a registered model on a dataset under a preset, evaluate every task it serves,
write the results file with its provenance, and rebuild the leaderboards.

One process per device under DDP (Lightning launches them; every rank runs this function, only rank 0
evaluates and writes). Checkpoints (best by validation loss, and last) and CSV + TensorBoard logs go to
``runs/<model>__<data>__<preset>__seed<S>/``; ``--resume`` continues from the last checkpoint.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from pxrdbench.errors import ConfigError, DatasetError
from pxrdbench.run.settings import MethodSettings, Preset, load_preset, method_settings


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
    batch_size: int | None = None  # per device; overrides the preset's and the method's


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


def run_bench(req: BenchRequest) -> Path | None:
    """Train, evaluate, write the results file (rank 0) and return its path; other ranks return None."""
    import lightning as L

    import pxrdbench.report.leaderboard
    import pxrdbench.report.results
    import pxrdbench.tasks.retrieval
    import pxrdbench.tasks.rietveld  # noqa: F401

    # Everything evaluation needs is imported now, and the code's git state recorded now, so a results file
    # describes the code that trained the model even if the checkout changes while a long run trains.
    from pxrdbench.data.datamodule import SimulatedDataModule
    from pxrdbench.models.registry import create_model, model_config
    from pxrdbench.run import provenance

    git = provenance.git_state()
    preset = load_preset(req.preset)
    settings = method_settings(req.model)
    accelerator, devices = resolve_devices(req.accelerator, req.gpus)
    L.seed_everything(req.seed, workers=True)
    budget = preset.budget
    max_structures = req.max_structures if req.max_structures is not None else budget.get("max_structures")
    batch_size = int(req.batch_size or budget.get("batch_size") or settings.batch_size)
    dm = SimulatedDataModule(
        req.data,
        settings.view,
        batch_size=batch_size,
        num_workers=int(preset.num_workers),
        with_graphs=settings.graphs,
        seed=req.seed,
        max_structures=max_structures,
        workers=req.workers,
    )
    dm.prepare_data()
    dm.setup()
    overrides = _model_overrides(req.model, dm)
    model = create_model(req.model, **overrides)
    run_dir = Path(req.runs_dir) / run_name(req)
    t0 = time.perf_counter()
    if settings.kind == "baseline":
        from pxrdbench.tasks.simulated import rendered_batches

        model.fit(rendered_batches(dm, "train"))
        train_patterns = len(dm.split_dataset("train"))
    else:
        members, train_patterns = [], 0
        n_members = _ensemble_size(req.model, preset)
        for k in range(n_members):
            if k:  # member k: its own seed, initialisation and run directory (the paper's ensemble)
                L.seed_everything(req.seed + k, workers=True)
                model = create_model(
                    req.model, **{**overrides, **({"seed": req.seed + k} if "seed" in overrides else {})}
                )
            member_dir = run_dir if n_members == 1 else run_dir / f"member{k}"
            trainer = _trainer(req, preset, settings, accelerator, devices, member_dir)
            ckpt = member_dir / "checkpoints" / "last.ckpt"
            trainer.fit(model, datamodule=dm, ckpt_path=str(ckpt) if (req.resume and ckpt.exists()) else None)
            # patterns actually seen: optimiser steps × global batch (a time cap may stop mid-epoch)
            train_patterns += int(trainer.global_step) * batch_size * devices
            if not trainer.is_global_zero:
                return None
            members.append(_best_weights(model, trainer))
        if n_members > 1:
            from pxrdbench.methods.supervised import EnsembleClassifier

            model = EnsembleClassifier(members)
        else:
            model = members[0]
    train_time = time.perf_counter() - t0
    config = {
        "model": model_config(req.model, **overrides),
        "settings": asdict(settings),
        "view": settings.view,
        "batch_size": batch_size,
    }
    return _evaluate_and_write(req, preset, settings, dm, model, config, accelerator, devices,
                               train_time, train_patterns, git)  # fmt: skip


def _ensemble_size(model_name: str, preset: Preset) -> int:
    """Members to train: the preset's ``ensemble`` budget, else the model config's ``ensemble`` (default 1)."""
    from pxrdbench.models.registry import model_config

    budget = preset.budget.get("ensemble")
    configured = model_config(model_name).get("ensemble", 1)
    return max(1, int(budget if budget is not None else (configured or 1)))


def _model_overrides(model_name: str, dm: Any) -> dict[str, Any]:
    """Builder arguments the data decides: the pattern length, the number of extinction groups, the seed."""
    return _model_overrides_for(model_name, dm.view.n_points, dm.view.split_index, dm.seed)


def _model_overrides_for(
    model_name: str, n_points: int, split_index: int | None, seed: int
) -> dict[str, Any]:
    import inspect

    from pxrdbench.models.registry import _entry
    from pxrdbench.symmetry.extinction import n_extinction_groups

    params = inspect.signature(_entry(model_name).builder).parameters
    candidates = {
        "input_length": n_points,
        "num_extinction_groups": n_extinction_groups(),
        "split_index": split_index,
        "seed": seed,
    }
    out = {k: v for k, v in candidates.items() if k in params and v is not None}
    if "ensemble" in params:
        out["ensemble"] = 1  # each member is one model; the runner trains K members (see _ensemble_size)
    return out


def _trainer(
    req: BenchRequest, preset: Preset, settings: MethodSettings, accelerator: str, devices: int, run_dir: Path
) -> Any:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    budget = preset.budget
    strategy = req.strategy or ("ddp" if devices > 1 else "auto")
    precision = preset.precision_gpu if accelerator == "gpu" else preset.precision_cpu
    callbacks = [
        ModelCheckpoint(
            dirpath=run_dir / "checkpoints",
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_last=True,
            filename="best",
        ),  # fmt: skip
    ]
    tty = sys.stderr.isatty()
    if tty:
        from lightning.pytorch.callbacks import RichProgressBar

        callbacks.append(RichProgressBar())
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        precision=precision,
        max_epochs=int(budget.get("max_epochs") or settings.full_epochs),
        max_time=budget.get("max_time"),
        limit_train_batches=budget.get("limit_train_batches", 1.0),
        deterministic=accelerator == "cpu",
        callbacks=callbacks,
        logger=[CSVLogger(run_dir, name="csv"), TensorBoardLogger(run_dir, name="tensorboard")],
        enable_progress_bar=tty,
        enable_model_summary=tty,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
    )


def _best_weights(model: Any, trainer: Any) -> Any:
    """Load the best-by-validation-loss weights when a best checkpoint exists (else keep the last)."""
    callback = trainer.checkpoint_callback
    best = getattr(callback, "best_model_path", "") if callback is not None else ""
    if best and Path(best).is_file():
        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]
        model.load_state_dict(state)
    return model


def _evaluate_and_write(
    req: BenchRequest,
    preset: Preset,
    settings: MethodSettings,
    dm: Any,
    model: Any,
    config: dict[str, Any],
    accelerator: str,
    devices: int,
    train_time: float,
    train_patterns: int,
    git: dict[str, Any],
) -> Path:
    from pxrdbench.models.registry import count_parameters, model_info
    from pxrdbench.report.results import write_results
    from pxrdbench.run import provenance
    from pxrdbench.tasks.simulated import evaluate_rruff908, evaluate_simulated, inference_timings

    device = "cuda" if accelerator == "gpu" else "cpu"
    n_boot = int(preset.eval.get("n_bootstrap", 1000))
    metrics = evaluate_simulated(
        model, dm, n_boot=n_boot, perturbations=list(preset.eval.get("robustness", [])), device=device
    )
    from pxrdbench.tasks.retrieval import evaluate_retrieval, merge_retrieval

    pools = tuple(preset.eval.get("retrieval_pool", ("test", "all")))
    perturbations = list(preset.eval.get("robustness", []))
    retrieval = evaluate_retrieval(model, dm, n_boot=n_boot, pools=pools, perturbations=perturbations,
                                   device=device)  # fmt: skip
    merge_retrieval(metrics, retrieval)
    notes = [f"command: {provenance.command_line()}"]
    if model.serves("crystal_system") or model.serves("space_group"):
        try:
            rruff = evaluate_rruff908(
                model,
                dm.view,
                n_boot=n_boot,
                max_patterns=preset.eval.get("rruff908_max_patterns"),
                device=device,
            )
        except (
            DatasetError
        ) as exc:  # the experimental set is absent here: the task is reported missing, not faked
            notes.append(f"experimental_rruff908 not evaluated: {exc}")
            rruff = {}
        if rruff:
            metrics["experimental_rruff908"] = rruff
    from pxrdbench.tasks.rietveld import evaluate_rietveld

    try:
        rietveld, rietveld_notes = evaluate_rietveld(model, dm, n_boot=n_boot, device=device)
    except DatasetError as exc:  # no Rietveld CIFs here: the task is reported missing, not faked
        rietveld, rietveld_notes = {}, [f"experimental_rietveld not evaluated: {exc}"]
    notes += rietveld_notes
    if rietveld:
        metrics["experimental_rietveld"] = rietveld
    timing = inference_timings(model, dm.view.n_points, device=device)
    cache = dm.cache
    computed = ("robustness", "experimental_rruff908", "experimental_rietveld", "retrieval")
    tasks = sorted({*model.tasks, *(t for t in computed if t in metrics), "efficiency"})
    result: dict[str, Any] = {
        "schema_version": 1,
        "method": {
            "name": req.model,
            "config": config,
            "config_hash": provenance.config_hash(config),
            "tasks": [t for t in tasks if t != "efficiency"],
        },
        "dataset": {
            "name": req.data,
            "cache_hash": cache.hash,
            "split_hash": cache.split_hash,
            "n_train": int(len(cache.split_indices("train"))),
            "n_val": int(len(cache.split_indices("val"))),
            "n_test": int(len(cache.split_indices("test"))),
        },
        "preset": {"name": preset.name, "budget": dict(preset.budget)},
        "seeds": [req.seed],
        "metrics": metrics,
        "efficiency": {
            "parameters": int(count_parameters(model)),
            "train_time_s": round(train_time, 2),
            "train_patterns_per_s": round(train_patterns / train_time, 2) if train_time > 0 else None,
            **{k: round(v, 4) for k, v in timing.items()},
        },
        "hardware": provenance.hardware(accelerator, devices),
        "software": provenance.software(),
        "date": provenance.now_iso(),
        "notes": "; ".join([*notes, f"paper: {model_info(req.model).get('paper', '')}"]),
        **git,
    }
    path = write_results(result, req.results_dir)
    if req.leaderboard:
        from pxrdbench.report.leaderboard import build_leaderboard

        build_leaderboard(req.results_dir, Path(req.results_dir).parent)
    return path
