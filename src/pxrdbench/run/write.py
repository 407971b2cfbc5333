"""The end of a bench run: evaluate every task the trained method serves (the task registry), assemble the
results file (metrics + provenance) and rebuild the leaderboards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pxrdbench.run.settings import Preset


def evaluation_record(ctx: Any) -> dict[str, Any]:
    """How the metrics were computed (the results file's ``evaluation`` field)."""
    from pxrdbench.report.results import EVALUATION_VERSION
    from pxrdbench.tasks.metrics.bootstrap import BALANCED_METHOD, INTERVAL_METHOD

    return {
        "version": EVALUATION_VERSION,
        "interval": INTERVAL_METHOD,
        "n_boot": int(ctx.n_boot),
        "resampling_unit": {
            "simulated test split": "split group (AMCSD mineral / compound key component; data.grouping)",
            "experimental_rruff908": "pattern (the files carry no ids)",
            "experimental_rietveld": "query CIF",
        },
        "balanced_accuracy": BALANCED_METHOD,
        "ties": "expectation under uniformly random tie-breaking (ranks, top-k, accuracies)",
        "retrieval_truth": "the query's structure and its within-source exact duplicates",
        "paired_baselines": list(ctx.paired_baselines),
    }


def evaluate_and_write(
    req: Any,
    preset: Preset,
    dm: Any,
    trained: Any,
    config: dict[str, Any],
    accelerator: str,
    devices: int,
    training: dict[str, Any],
    git: dict[str, Any],
) -> Path:
    """Run the task registry on rank 0 and write ``<results_dir>/<model>__<data>__<preset>__seed<S>.json``.

    ``training`` is the results file's ``training`` block (budget, patterns seen, steps, epochs, wall time,
    truncation, learning rate and its sweep, learning curve; see :mod:`pxrdbench.report.results`)."""
    from pxrdbench.methods.registry import count_parameters, method_meta
    from pxrdbench.report.results import write_results
    from pxrdbench.run import provenance
    from pxrdbench.tasks.base import EvalContext
    from pxrdbench.tasks.registry import inference_timings, run_tasks, served_tasks

    method = trained.method
    sweep_time = float((training.get("lr") or {}).get("sweep_wall_time_s") or 0.0)
    fit_time = float(training["wall_time_s"]) - sweep_time  # the fits that made the model (sweep excluded)
    device = "cuda" if accelerator == "gpu" else "cpu"
    ctx = EvalContext(
        method=method,
        datamodule=dm,
        n_boot=int(preset.eval.get("n_bootstrap", 1000)),
        perturbations=list(preset.eval.get("robustness", [])),
        pools=tuple(preset.eval.get("retrieval_pool", ("test", "all"))),
        rruff_max_patterns=preset.eval.get("rruff908_max_patterns"),
        device=device,
        notes=[f"command: {provenance.command_line()}"],
        paired_baselines=tuple(preset.eval.get("paired_baselines", EvalContext.paired_baselines)),
    )
    metrics = run_tasks(ctx)
    timing = inference_timings(ctx)
    cache = dm.cache
    tasks = sorted({*served_tasks(method), *metrics, "efficiency"})
    meta = method_meta(req.model)
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
        "training": training,
        "metrics": metrics,
        "evaluation": evaluation_record(ctx),
        "efficiency": {
            "parameters": int(count_parameters(method)),
            "train_time_s": round(fit_time, 2),
            "train_patterns_per_s": round(trained.patterns_seen / fit_time, 2) if fit_time > 0 else None,
            **{k: round(v, 4) for k, v in timing.items()},
        },
        "hardware": provenance.hardware(accelerator, devices),
        "software": provenance.software(),
        "date": provenance.now_iso(),
        "notes": "; ".join([*ctx.notes, f"paper: {meta['paper']}"]),
        **git,
    }
    path = write_results(result, req.results_dir)
    if req.leaderboard:
        from pxrdbench.report.leaderboard import build_leaderboard

        build_leaderboard(req.results_dir, Path(req.results_dir).parent)
    return path
