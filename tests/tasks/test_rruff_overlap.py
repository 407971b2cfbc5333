"""The RRUFF ↔ training overlap of the ``experimental_rruff908`` task: the max-train-similarity computation
(identity gives 1, chunking changes nothing, it matches ``pattern_nn``'s cosine), its metric entries, the
``low_overlap/`` blocks, and the task on a tiny synthetic cache with a synthetic measured set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.experimental.rruff908 import Rruff908Arrays
from pxrdbench.methods.base import DataRequirements
from pxrdbench.tasks import rruff, rruff_overlap
from pxrdbench.tasks.base import EvalContext
from pxrdbench.tasks.render import render_rows
from pxrdbench.tasks.specs import METRICS, base_metric, task_has_metric


def _public(block: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The entries as written to a results file (the private per-item keys dropped)."""
    return {key: {k: v for k, v in entry.items() if not k.startswith("_")} for key, entry in block.items()}


def _patterns(n: int, points: int, seed: int) -> Tensor:
    """Non-negative peaky rows, like rendered patterns."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, points, generator=g) ** 8


def test_a_pattern_identical_to_a_training_pattern_has_similarity_one() -> None:
    train = _patterns(40, 3000, 0)
    queries = torch.cat([train[[3, 17]], _patterns(2, 3000, 1)])
    best = rruff_overlap.max_similarity(queries, train)
    np.testing.assert_allclose(best[:2], 1.0, atol=1e-5)
    assert np.all(best[2:] < 0.99) and np.all(best >= 0.0)


def test_chunking_and_batching_give_the_same_as_one_block() -> None:
    train = _patterns(50, 2500, 2)
    queries = _patterns(9, 2500, 3)
    whole = rruff_overlap.max_similarity(queries, train)
    batches = [train[:7], train[7:8], train[8:31], train[31:]]
    chunked = rruff_overlap.max_similarity(queries, iter(batches), chunk_size=4)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6)
    unpooled = rruff_overlap.max_similarity(queries, train, pool_length=None, chunk_size=5)
    np.testing.assert_allclose(
        unpooled, rruff_overlap.max_similarity(queries, train, pool_length=None), atol=1e-6
    )


def test_the_similarity_is_pattern_nn_cosine_on_unmasked_patterns() -> None:
    from pxrdbench.methods.baselines import PatternNNBaseline

    train = _patterns(30, 4000, 4)
    queries = _patterns(6, 4000, 5)
    nn = PatternNNBaseline(pool_length=rruff_overlap.OVERLAP_POOL_LENGTH)
    nn.fit([{"pattern": train[:16]}, {"pattern": train[16:]}])
    expected = nn.nearest(queries, k=1)[0][:, 0].double().numpy()
    np.testing.assert_allclose(rruff_overlap.max_similarity(queries, train), expected, atol=1e-5)


def test_only_the_measured_range_counts() -> None:
    train = _patterns(10, 2048, 6)
    query = train[4:5].clone()
    mask = torch.ones_like(query, dtype=torch.bool)
    mask[:, :512] = False  # unmeasured part: zero in the query, ignored on the training side too
    query[~mask] = 0.0
    assert rruff_overlap.max_similarity(query, train, query_masks=mask)[0] == pytest.approx(1.0, abs=1e-5)
    assert (
        rruff_overlap.max_similarity(query, train)[0] < 0.99
    )  # the plain cosine penalises the unmeasured part


def test_no_training_patterns_is_an_error() -> None:
    from pxrdbench.errors import InputError

    with pytest.raises(InputError, match="no reference"):
        rruff_overlap.max_similarity(_patterns(2, 100, 0), iter([]))


def test_similarity_entries_and_histogram_bins() -> None:
    values = np.array([0.0, 0.049, 0.05, 0.5, 0.93, 0.999, 1.0])
    block = rruff_overlap.similarity_block(values, rruff_overlap.SIMILARITY_PREFIX, threshold=0.9, n_boot=50)
    prefix = rruff_overlap.SIMILARITY_PREFIX
    assert block[f"{prefix}median"]["value"] == 0.5 and block[f"{prefix}median"]["ci95"] is not None
    assert block[f"{prefix}share_above_threshold"]["value"] == pytest.approx(300 / 7)
    assert block[f"{prefix}threshold"]["value"] == 0.9
    counts = [
        block[rruff_overlap.histogram_key(prefix, k)]["value"] for k in range(rruff_overlap.OVERLAP_BINS)
    ]
    assert len(counts) == 20 and sum(counts) == len(values)
    assert counts[0] == 2 and counts[1] == 1 and counts[10] == 1 and counts[18] == 1 and counts[19] == 2
    assert all(entry["n"] == len(values) for entry in block.values())
    assert all(set(e) == {"value", "ci95", "n", "std"} for e in block.values())
    assert rruff_overlap.similarity_block(np.array([]), prefix, threshold=0.9, n_boot=10) == {}


class PatternClassifier:
    """A deterministic classifier of the rendered pattern (crystal system and space group)."""

    tasks = ("crystal_system", "space_group")

    def __init__(self, n_points: int) -> None:
        g = torch.Generator().manual_seed(11)
        self.weights = {"crystal_system": torch.randn(n_points, 7, generator=g),
                        "space_group": torch.randn(n_points, 230, generator=g)}  # fmt: skip

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def data_requirements(self) -> DataRequirements:
        return DataRequirements()

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return {task: torch.softmax(batch["pattern"] @ w, dim=1) for task, w in self.weights.items()}


def _arrays(view: Any, intensity: np.ndarray, two_theta: np.ndarray | None = None) -> Rruff908Arrays:
    n = intensity.shape[0]
    tt = view.grid.tensor().double().numpy()[1:] if two_theta is None else two_theta
    return Rruff908Arrays(
        two_theta=tt,
        intensity=intensity.astype(np.float32),
        crystal_system=np.arange(n) % 7,
        space_group=np.array([1, 2, 14, 62, 139, 194, 225] * n)[:n],
        source_index=np.arange(n),
        wavelength=view.wavelength,
        path=Path("synthetic.npz"),
    )


def test_the_low_overlap_blocks_score_the_patterns_below_the_threshold() -> None:
    from pxrdbench.views.spec import load_view

    view = load_view("xccp_dual")
    x = view.grid.tensor().double().numpy()[1:]
    centres = np.linspace(10, 70, 11)
    intensity = np.stack([np.exp(-0.5 * ((x - c) / 0.2) ** 2) + 0.01 for c in centres])
    arrays = _arrays(view, intensity)
    method = PatternClassifier(view.n_points)
    offsets = np.array([-0.5, 0.05, -0.2, 0.09, -0.6, 0.01, -0.4, -0.01, 0.07, -0.3, 0.0])
    similarity = (
        rruff_overlap.OVERLAP_THRESHOLD + offsets
    )  # 6 below the threshold, 2 of them among the first 4
    low = similarity < rruff_overlap.OVERLAP_THRESHOLD
    block = _public(
        rruff.evaluate_rruff908(method, view, n_boot=20, arrays=arrays, max_train_similarity=similarity)
    )
    full = _public(rruff.evaluate_rruff908(method, view, n_boot=20, arrays=arrays))
    assert {k: v for k, v in block.items() if not k.startswith("low_overlap/")} == full
    for task in ("crystal_system", "space_group"):
        assert block[f"{task}/accuracy"]["n"] == 11
        assert block[f"low_overlap/{task}/accuracy"]["n"] == int(low.sum()) == 6
    # the same patterns scored on their own give the same low-overlap numbers
    only_low = replace(
        arrays,
        intensity=arrays.intensity[low],
        crystal_system=arrays.crystal_system[low],
        space_group=arrays.space_group[low],
        source_index=arrays.source_index[low],
    )
    subset = _public(rruff.evaluate_rruff908(method, view, n_boot=20, arrays=only_low))
    assert {f"low_overlap/{k}": v for k, v in subset.items()} == {
        k: v for k, v in block.items() if k.startswith("low_overlap/")
    }
    capped = rruff.evaluate_rruff908(
        method, view, n_boot=20, arrays=arrays, max_patterns=4, max_train_similarity=similarity[:4]
    )
    assert (
        capped["crystal_system/accuracy"]["n"] == 4
        and capped["low_overlap/crystal_system/accuracy"]["n"] == 2
    )
    none_low = rruff.evaluate_rruff908(
        method, view, n_boot=20, arrays=arrays, max_train_similarity=np.ones(11)
    )
    assert not any(k.startswith("low_overlap/") for k in none_low)


@pytest.fixture(scope="module")
def dm(cache: DatasetCache) -> SimulatedDataModule:
    module = SimulatedDataModule(cache, "xccp_dual", batch_size=3, seed=0)
    module.setup()
    return module


def _train_pattern_arrays(dm: SimulatedDataModule) -> tuple[Rruff908Arrays, int]:
    """Two 'measured' patterns: a rendered training pattern on the view's own grid and wavelength, and noise."""
    rows = dm.cache.split_indices("train")
    first = next(iter(render_rows(dm, rows, seed=dm.seed, graphs=False)))["pattern"][1].double().numpy()
    noise = np.random.default_rng(0).random(first.shape[0])
    return _arrays(dm.view, np.stack([first[1:], noise[1:]])), len(rows)


def test_training_overlap_finds_a_training_pattern(dm: SimulatedDataModule) -> None:
    arrays, n_train = _train_pattern_arrays(dm)
    overlap = rruff.training_overlap(dm, arrays, 2)
    assert overlap is not None and overlap.n_train == n_train
    assert overlap.rruff.shape == (2,) and overlap.rruff[0] == pytest.approx(1.0, abs=1e-5)
    assert overlap.rruff[1] < 0.9
    assert overlap.reference is not None and len(overlap.reference) == len(dm.cache.split_indices("test"))
    assert np.all((overlap.reference >= 0) & (overlap.reference <= 1 + 1e-6))
    assert rruff.training_overlap(type("Measured", (), {"view": dm.view})(), arrays, 2) is None


def test_the_task_adds_overlap_entries_once_per_evaluation(dm, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays, _ = _train_pattern_arrays(dm)
    monkeypatch.setattr("pxrdbench.data.experimental.rruff908.rruff908_arrays", lambda: arrays)
    calls: list[int] = []
    real = rruff.training_overlap

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(rruff, "training_overlap", counted)
    ctx = EvalContext(method=PatternClassifier(dm.view.n_points), datamodule=dm, n_boot=20)
    block = _public(rruff.RRUFF908.run(ctx))
    assert _public(rruff.RRUFF908.run(ctx)) == block and len(calls) == 1  # memoised in the context
    prefix = rruff_overlap.SIMILARITY_PREFIX
    assert (
        block[f"{prefix}median"]["n"] == 2
        and block[f"{prefix}threshold"]["value"] == rruff_overlap.OVERLAP_THRESHOLD
    )
    assert (
        sum(block[rruff_overlap.histogram_key(prefix, k)]["value"] for k in range(rruff_overlap.OVERLAP_BINS))
        == 2
    )
    assert block[f"{prefix}histogram/bin_19/count"]["value"] == 1  # the training pattern itself
    assert block[f"{rruff_overlap.REFERENCE_PREFIX}median"]["n"] == len(dm.cache.split_indices("test"))
    assert block["low_overlap/crystal_system/accuracy"]["n"] == 1  # the noise row
    assert all(task_has_metric("experimental_rruff908", key) and base_metric(key) in METRICS for key in block)
    ctx.rruff_max_patterns = 1
    capped = rruff.RRUFF908.run(ctx)
    assert capped["crystal_system/accuracy"]["n"] == 1 and "low_overlap/crystal_system/accuracy" not in capped
    assert ctx.notes == ["experimental_rruff908: scored the first 1 of the 2 RRUFF-908 dev patterns"]


def test_without_a_training_split_the_task_notes_it_and_scores_the_full_set(dm, monkeypatch) -> None:
    arrays, _ = _train_pattern_arrays(dm)
    monkeypatch.setattr("pxrdbench.data.experimental.rruff908.rruff908_arrays", lambda: arrays)
    measured_only = type("Measured", (), {"view": dm.view})()
    ctx = EvalContext(method=PatternClassifier(dm.view.n_points), datamodule=measured_only, n_boot=20)
    block = rruff.RRUFF908.run(ctx)
    assert block["crystal_system/accuracy"]["n"] == 2
    assert not any(k.startswith(("overlap/", "low_overlap/")) for k in block)
    assert len(ctx.notes) == 1 and "overlap with the training split not measured" in ctx.notes[0]


def test_every_overlap_key_has_a_declared_base_metric() -> None:
    values = np.linspace(0, 1, 7)
    keys = set(
        rruff_overlap.similarity_block(values, rruff_overlap.SIMILARITY_PREFIX, threshold=0.9, n_boot=10)
    )
    assert {base_metric(key) for key in keys} <= set(METRICS)


def test_the_description_names_what_is_evaluated(shared_data: Path) -> None:
    from pxrdbench.data.experimental.rruff908 import RELATIVE_PATH, rruff908_arrays

    path = shared_data / RELATIVE_PATH
    if not path.is_file():
        pytest.skip(f"RRUFF-908 file not found at {path}")
    arrays = rruff908_arrays(path)
    assert len(arrays.intensity) == rruff.DEV_PATTERNS == 454
    assert len(np.unique(arrays.source_index)) == 454 and arrays.source_index.max() < 908  # half of the 908
    assert "454-pattern dev half of RRUFF-908" in rruff.RRUFF908.description
