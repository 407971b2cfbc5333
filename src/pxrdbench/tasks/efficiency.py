"""The efficiency task: inference latency and throughput at batch size 1, and throughput at the best batch size of a
small ladder, timed on real rendered test-split batches (so methods that read graphs or peak tokens are timed on
what they read).

Its numbers live in the results file's ``efficiency`` section (with the parameter count and the training
throughput the runner measures), not under ``metrics``. Every key names its batch size:

    latency_ms_batch1     median wall time of one batch-1 inference, ms per pattern
    throughput_batch1     patterns per second at batch size 1 (runs / total time of the timed batch-1 runs)
    throughput_best       patterns per second at the best batch size of :data:`BATCH_LADDER` that was timed
    best_batch            that batch size

The ladder stops at :data:`MAX_BATCH` (memory-safe cap), at the first out-of-memory error, and before a rung whose
estimated cost would take the ladder past :data:`LADDER_BUDGET_S` (so the CI preset stays at a few seconds per
method; on a slow CPU the best batch may be 1 because larger rungs did not fit the budget). Batches larger than
the test split repeat it. The older keys ``inference_latency_ms`` (= latency_ms_batch1) and
``inference_throughput_per_s`` (= throughput_best; files written before the ladder hold the batch-64 throughput
there) are still written, as the results schema and the leaderboard read them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from pxrdbench.tasks.base import EvalContext, Task, TaskSpec

WARMUP = 3
LATENCY_RUNS = 20
THROUGHPUT_BATCH = 64
"""The batch size of :func:`timing_batches`' second batch (the pre-ladder throughput batch)."""
THROUGHPUT_RUNS = 3
BATCH_LADDER: tuple[int, ...] = (1, 8, 32, 64, 256)
MAX_BATCH = 256
"""Memory-safe cap on the ladder's batch sizes."""
LADDER_BUDGET_S = 2.0
"""Wall-clock budget (s) of the ladder above batch 1: the climb stops before a rung whose one warm-up run is
estimated (from the last rung's time per pattern) to overrun it, and a rung times fewer than
:data:`THROUGHPUT_RUNS` runs (at least one) when its warm-up shows that all would overrun it."""


def predict_once(method: Any, batch: Mapping[str, Any]) -> Any:
    """One inference of everything the method predicts: ``method.predict(batch)``, or
    :func:`pxrdbench.methods.base.predict_everything` for objects without it."""
    if hasattr(method, "predict"):
        return method.predict(batch)
    from pxrdbench.methods.base import predict_everything

    return predict_everything(method, batch)


def _batch_builder(ctx: EvalContext) -> Callable[[int], dict[str, Any]]:
    """A function ``size -> batch of the first `size` test items`` (the split repeated when smaller), rendered
    through the datamodule's view (with peak tokens when the method or the datamodule reads them)."""
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

    def batch(size: int) -> dict[str, Any]:
        chosen = np.resize(rows, size)
        dataset = ReflectionDataset(dm.cache, chosen, dm.view.d_min, dm.view.max_peaks, dm.with_graphs)
        collated = to_device(collate_structures([dataset[i] for i in range(len(chosen))]), ctx.device)
        rendered = render_batch(dm.view, collated, train=False, seed=dm.seed)
        return add_view_tokens(dm.view, rendered) if tokens else rendered

    return batch


def timing_batches(ctx: EvalContext, size: int = THROUGHPUT_BATCH) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the first test item as a batch of 1, a batch of ``size`` test items, the split repeated if smaller)."""
    batch = _batch_builder(ctx)
    return batch(1), batch(size)


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (bool(oom) and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def ladder_sizes(max_batch: int = MAX_BATCH, ladder: tuple[int, ...] = BATCH_LADDER) -> list[int]:
    """The ladder's batch sizes above 1 that do not exceed ``max_batch``, ascending."""
    return sorted({b for b in ladder if 1 < b <= max_batch})


def inference_timings(
    ctx: EvalContext,
    *,
    max_batch: int = MAX_BATCH,
    budget_s: float = LADDER_BUDGET_S,
    ladder: tuple[int, ...] = BATCH_LADDER,
) -> dict[str, float | int]:
    """Inference timings of ``ctx.method`` (eval mode, no gradients), each key naming its batch size.

    ``latency_ms_batch1``: median of 20 batch-1 runs after 3 warm-ups; ``throughput_batch1``: patterns per second
    over those 20 runs; ``throughput_best`` / ``best_batch``: the highest patterns per second (up to 3 runs after
    one warm-up each) over batch 1 and the ladder's sizes up to ``max_batch``, climbed while the estimated cost of
    the next rung keeps the ladder within ``budget_s`` and stopped at the first out-of-memory error. Also the older
    keys ``inference_latency_ms`` (= ``latency_ms_batch1``) and ``inference_throughput_per_s``
    (= ``throughput_best``)."""
    import torch

    from pxrdbench.tasks.predict import prepare

    method = ctx.method
    prepare(method, ctx.device)
    build = _batch_builder(ctx)
    cuda = str(ctx.device).startswith("cuda")

    def run(x: Mapping[str, Any]) -> None:
        with torch.no_grad():
            predict_once(method, x)
        if cuda:
            torch.cuda.synchronize()

    one = build(1)
    for _ in range(WARMUP):
        run(one)
    times = []
    for _ in range(LATENCY_RUNS):
        t0 = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - t0)
    throughput_1 = LATENCY_RUNS / sum(times)
    best, best_batch = throughput_1, 1

    seconds_per_pattern = sum(times) / LATENCY_RUNS
    spent = 0.0
    for size in ladder_sizes(max_batch, ladder):
        if spent + size * seconds_per_pattern > budget_s:
            break  # not even the warm-up of this rung fits the budget
        start = time.perf_counter()
        try:
            many = build(size)
            t0 = time.perf_counter()
            run(many)  # warm-up, and the estimate of one run at this size
            warm = time.perf_counter() - t0
            left = budget_s - (spent + time.perf_counter() - start)
            runs = max(1, min(THROUGHPUT_RUNS, int(left / warm) if warm > 0 else THROUGHPUT_RUNS))
            t0 = time.perf_counter()
            for _ in range(runs):
                run(many)
            elapsed = time.perf_counter() - t0
        except (RuntimeError, MemoryError) as exc:
            if not _is_out_of_memory(exc):
                raise
            if cuda:
                torch.cuda.empty_cache()
            ctx.notes.append(f"efficiency: batch {size} ran out of memory; ladder stopped at {best_batch}")
            break
        finally:
            spent += time.perf_counter() - start
        del many
        throughput = runs * size / elapsed
        seconds_per_pattern = elapsed / (runs * size)
        if throughput > best:
            best, best_batch = throughput, size
    latency = 1000.0 * statistics.median(times)
    return {
        "latency_ms_batch1": latency,
        "throughput_batch1": throughput_1,
        "throughput_best": best,
        "best_batch": best_batch,
        "inference_latency_ms": latency,
        "inference_throughput_per_s": best,
    }


class EfficiencyTask(Task):
    """Inference cost of every method (training cost and parameters come from the runner)."""

    spec = TaskSpec(
        "efficiency",
        "parameters, training throughput, inference latency (batch 1) and throughput (batch 1, best batch)",
        ("model", "patterns"),
        (
            "parameters",
            "train_time_s",
            "train_patterns_per_s",
            "latency_ms_batch1",
            "throughput_batch1",
            "throughput_best",
            "best_batch",
        ),
        ("latency_ms_batch1", "throughput_best"),
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
