"""The efficiency task's output: labelled keys (batch size in the name), the best batch of the ladder, the older
keys kept; on a tiny model over the tiny synthetic cache. No timed assertions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
import torch

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.tasks.base import EvalContext
from pxrdbench.tasks.efficiency import BATCH_LADDER, inference_timings, ladder_sizes

KEYS = {
    "latency_ms_batch1",
    "throughput_batch1",
    "throughput_best",
    "best_batch",
    "inference_latency_ms",
    "inference_throughput_per_s",
}


class Tiny(torch.nn.Module):
    """A linear crystal-system classifier; records the batch sizes it was called with."""

    def __init__(self, n_points: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(n_points, 7)
        self.sizes: list[int] = []

    def predict(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        self.sizes.append(int(batch["pattern"].shape[0]))
        return {"crystal_system": torch.softmax(self.linear(batch["pattern"]), dim=1)}


class OutOfMemoryAbove(Tiny):
    """Raises a CUDA-style out-of-memory error for batches larger than ``limit``."""

    def __init__(self, n_points: int, limit: int) -> None:
        super().__init__(n_points)
        self.limit = limit

    def predict(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        if batch["pattern"].shape[0] > self.limit:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().predict(batch)


@pytest.fixture(scope="module")
def dm(cache: DatasetCache) -> SimulatedDataModule:
    module = SimulatedDataModule(cache, batch_size=4, seed=0)
    module.setup()
    return module


def _ctx(method: Any, dm: SimulatedDataModule) -> EvalContext:
    return EvalContext(method=method, datamodule=dm, n_boot=10)


def test_ladder_sizes_are_capped() -> None:
    assert ladder_sizes() == [b for b in BATCH_LADDER if b > 1]
    assert ladder_sizes(32) == [8, 32] and ladder_sizes(1) == []


def test_timings_are_labelled_by_batch_size(dm: SimulatedDataModule) -> None:
    method = Tiny(dm.view.n_points)
    out = inference_timings(_ctx(method, dm), max_batch=32, budget_s=60.0)
    assert set(out) == KEYS
    assert isinstance(out["best_batch"], int) and out["best_batch"] in (1, 8, 32)
    assert all(isinstance(v, float) and v > 0 for k, v in out.items() if k != "best_batch")
    assert out["throughput_best"] >= out["throughput_batch1"]
    assert out["inference_latency_ms"] == out["latency_ms_batch1"]
    assert out["inference_throughput_per_s"] == out["throughput_best"]
    assert set(method.sizes) == {1, 8, 32}  # the capped ladder, the split repeated to fill each batch


def test_no_budget_times_batch_one_only(dm: SimulatedDataModule) -> None:
    method = Tiny(dm.view.n_points)
    out = inference_timings(_ctx(method, dm), budget_s=0.0)
    assert out["best_batch"] == 1 and out["throughput_best"] == out["throughput_batch1"]
    assert set(method.sizes) == {1}


def test_out_of_memory_stops_the_ladder(dm: SimulatedDataModule) -> None:
    ctx = _ctx(OutOfMemoryAbove(dm.view.n_points, limit=8), dm)
    out = inference_timings(ctx, budget_s=60.0)
    assert out["best_batch"] in (1, 8)
    assert any("batch 32 ran out of memory" in note for note in ctx.notes)


def test_other_errors_propagate(dm: SimulatedDataModule) -> None:
    class Broken(Tiny):
        def predict(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
            if batch["pattern"].shape[0] > 1:
                raise RuntimeError("shape mismatch")
            return super().predict(batch)

    with pytest.raises(RuntimeError, match="shape mismatch"):
        inference_timings(_ctx(Broken(dm.view.n_points), dm), budget_s=60.0)
