"""The efficiency task: inference latency at batch size 1 and throughput at batch size 64, timed on real rendered
test-split batches (so methods that read graphs or peak tokens are timed on what they read).

Its numbers live in the results file's ``efficiency`` section (with the parameter count and the training
throughput the runner measures), not under ``metrics``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from pxrdbench.tasks.base import EvalContext, Task, TaskSpec

WARMUP = 3
LATENCY_RUNS = 20
THROUGHPUT_BATCH = 64
THROUGHPUT_RUNS = 3


def predict_once(method: Any, batch: Mapping[str, Any]) -> Any:
    """One inference of everything the method predicts: ``method.predict(batch)``, or
    :func:`pxrdbench.methods.base.predict_everything` for objects without it."""
    if hasattr(method, "predict"):
        return method.predict(batch)
    from pxrdbench.methods.base import predict_everything

    return predict_everything(method, batch)


def timing_batches(ctx: EvalContext, size: int = THROUGHPUT_BATCH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first test item as a batch of 1, a batch of ``size`` test items, the split repeated if smaller)."""
    from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
    from pxrdbench.errors import DatasetError
    from pxrdbench.tasks.render import needs_peak_tokens, to_device
    from pxrdbench.views.peak_tokens import add_view_tokens
    from pxrdbench.views.render import render_batch

    dm = ctx.datamodule
    if dm.cache is None:
        dm.setup()
    rows = dm.cache.split_indices("test")
    if len(rows) == 0:
        raise DatasetError("efficiency: the test split is empty, nothing to time")
    tokens = needs_peak_tokens(ctx.method) or bool(getattr(dm, "peak_tokens", False))

    def batch(chosen: np.ndarray) -> dict[str, Any]:
        dataset = ReflectionDataset(dm.cache, chosen, dm.view.d_min, dm.view.max_peaks, dm.with_graphs)
        collated = to_device(collate_structures([dataset[i] for i in range(len(chosen))]), ctx.device)
        rendered = render_batch(dm.view, collated, train=False, seed=dm.seed)
        return add_view_tokens(dm.view, rendered) if tokens else rendered

    return batch(rows[:1]), batch(np.resize(rows, size))


def inference_timings(ctx: EvalContext, *, batch: int = THROUGHPUT_BATCH) -> dict[str, float]:
    """``inference_latency_ms``: median of 20 runs at batch size 1 after 3 warm-ups; ``inference_throughput_per_s``:
    patterns per second over 3 runs of a ``batch``-pattern batch. The method runs in eval mode, no gradients."""
    import torch

    from pxrdbench.tasks.predict import prepare

    method = ctx.method
    prepare(method, ctx.device)
    one, many = timing_batches(ctx, batch)

    def run(x: Mapping[str, Any]) -> None:
        with torch.no_grad():
            predict_once(method, x)
        if str(ctx.device).startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(WARMUP):
        run(one)
    times = []
    for _ in range(LATENCY_RUNS):
        t0 = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - t0)
    run(many)
    t0 = time.perf_counter()
    for _ in range(THROUGHPUT_RUNS):
        run(many)
    elapsed = time.perf_counter() - t0
    return {
        "inference_latency_ms": 1000.0 * statistics.median(times),
        "inference_throughput_per_s": THROUGHPUT_RUNS * batch / elapsed,
    }


class EfficiencyTask(Task):
    """Inference cost of every method (training cost and parameters come from the runner)."""

    spec = TaskSpec(
        "efficiency",
        "parameters, training throughput, inference latency (batch 1) and throughput",
        ("model", "patterns"),
        (
            "parameters",
            "train_time_s",
            "train_patterns_per_s",
            "inference_latency_ms",
            "inference_throughput_per_s",
        ),
        ("inference_latency_ms", "inference_throughput_per_s"),
    )
    source = "training"
    in_metrics = False

    def serves(self, method: Any) -> bool:
        """Every method."""
        return True

    def run(self, ctx: EvalContext) -> dict[str, Any]:
        """The inference timings (plain floats, the form of the results file's ``efficiency`` section)."""
        return inference_timings(ctx)


EFFICIENCY = EfficiencyTask()
