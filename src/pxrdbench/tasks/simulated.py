"""The evaluation suite of one trained method: every task it serves, on simulated, perturbed and experimental
patterns, as results-file metric blocks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.torch_dataset import collate_structures
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS
from pxrdbench.tasks.blocks import classification_block, lattice_block, prefixed
from pxrdbench.tasks.predict import Predictions, collect_predictions
from pxrdbench.views.render import render_batch

NUM_CLASSES = {"crystal_system": 7, "space_group": 230}


def rendered_batches(
    dm: SimulatedDataModule, split: str, *, perturbation: str | None = None, device: str = "cpu"
) -> Iterator[dict[str, Any]]:
    """Evaluation batches of a split rendered through the datamodule's view (seeded, reproducible)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dm.split_dataset(split), batch_size=dm.batch_size, shuffle=False, collate_fn=collate_structures
    )
    for batch in loader:
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        yield render_batch(dm.view, batch, train=False, seed=dm.seed, perturbation=perturbation)


def prediction_blocks(
    method: Any, preds: Predictions, *, n_boot: int, hop_matrix: np.ndarray | None, num_extinction_groups: int
) -> dict[str, dict[str, Any]]:
    """{task: metric block} for the classification and lattice tasks the method serves."""
    blocks: dict[str, dict[str, Any]] = {}
    classes = {**NUM_CLASSES, "extinction_group": num_extinction_groups}
    for task, proba in sorted(preds.proba.items()):
        if task not in classes or task not in preds.labels:
            continue
        blocks[task] = classification_block(
            preds.labels[task],
            proba,
            classes[task],
            n_boot=n_boot,
            class_names=CRYSTAL_SYSTEMS if task == "crystal_system" else None,
            hop_matrix=hop_matrix if task == "space_group" else None,
        )
    if preds.lattice is not None and "lattice" in preds.labels:
        blocks["lattice"] = lattice_block(preds.labels["lattice"], preds.lattice, n_boot=n_boot)
    return {k: v for k, v in blocks.items() if v}


def evaluate_simulated(
    method: Any,
    dm: SimulatedDataModule,
    *,
    n_boot: int,
    perturbations: list[str],
    device: str = "cpu",
) -> dict[str, dict[str, Any]]:
    """Test-split tasks plus the robustness block (``<perturbation>/<task>/<metric>``)."""
    from pxrdbench.symmetry.extinction import n_extinction_groups
    from pxrdbench.symmetry.subgroups import hop_distance_matrix

    want_lattice = method.serves("lattice")
    want_proba = any(method.serves(task) for task in ("crystal_system", "space_group", "extinction_group"))
    if not (want_proba or want_lattice):
        return {}  # e.g. contrastive methods: retrieval only (bench/retrieval_eval.py)
    hops = hop_distance_matrix()
    n_eg = n_extinction_groups()
    preds = collect_predictions(method, rendered_batches(dm, "test", device=device), want_proba=want_proba,
                                want_lattice=want_lattice, device=device)  # fmt: skip
    metrics = prediction_blocks(method, preds, n_boot=n_boot, hop_matrix=hops, num_extinction_groups=n_eg)
    robustness: dict[str, Any] = {}
    for name in perturbations:
        batches = rendered_batches(dm, "test", perturbation=name, device=device)
        p = collect_predictions(method, batches, want_proba=want_proba, want_lattice=want_lattice,
                                device=device)  # fmt: skip
        for task, block in prediction_blocks(method, p, n_boot=n_boot, hop_matrix=hops,
                                             num_extinction_groups=n_eg).items():  # fmt: skip
            robustness.update(prefixed(f"{name}/{task}", block))
    if robustness:
        metrics["robustness"] = robustness
    return metrics


def evaluate_rruff908(
    method: Any, view: Any, *, n_boot: int, max_patterns: int | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Crystal-system and space-group metrics on the RRUFF-908 dev patterns, converted into the method's view."""
    from pxrdbench.data.experimental.rruff908 import rruff908_arrays
    from pxrdbench.symmetry.subgroups import hop_distance_matrix
    from pxrdbench.views.render import experimental_batch

    arrays = rruff908_arrays()
    n = len(arrays.intensity) if max_patterns is None else min(max_patterns, len(arrays.intensity))

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, n, 64):
            stop = min(n, start + 64)
            batch = experimental_batch(
                view, arrays.two_theta, arrays.intensity[start:stop], arrays.wavelength
            )
            batch["crystal_system"] = torch.as_tensor(arrays.crystal_system[start:stop], dtype=torch.long)
            batch["space_group"] = torch.as_tensor(arrays.space_group[start:stop], dtype=torch.long) - 1
            yield batch

    preds = collect_predictions(method, batches(), want_lattice=False, device=device)
    out: dict[str, Any] = {}
    for task in ("crystal_system", "space_group"):
        if task in preds.proba:
            block = classification_block(
                preds.labels[task],
                preds.proba[task],
                NUM_CLASSES[task],
                n_boot=n_boot,
                class_names=CRYSTAL_SYSTEMS if task == "crystal_system" else None,
                hop_matrix=hop_distance_matrix() if task == "space_group" else None,
            )
            out.update(prefixed(task, block))
    return out


@torch.no_grad()
def inference_timings(
    method: Any, n_points: int, *, device: str = "cpu", batch: int = 64
) -> dict[str, float]:
    """Median latency at batch size 1 (ms, 20 runs after 3 warm-ups) and throughput at ``batch`` (patterns/s)."""
    if isinstance(method, torch.nn.Module):
        method.eval().to(device)
    x1 = torch.rand(1, n_points, device=device) * 100
    xb = torch.rand(batch, n_points, device=device) * 100

    def run(x: torch.Tensor) -> None:
        if hasattr(method, "predict_proba") and method.serves("crystal_system"):
            method.predict_proba(x)
        else:
            method.embed(x)
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for _ in range(3):
        run(x1)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        run(x1)
        times.append(time.perf_counter() - t0)
    run(xb)
    t0 = time.perf_counter()
    reps = 3
    for _ in range(reps):
        run(xb)
    elapsed = time.perf_counter() - t0
    return {
        "inference_latency_ms": 1000.0 * statistics.median(times),
        "inference_throughput_per_s": reps * batch / elapsed,
    }
