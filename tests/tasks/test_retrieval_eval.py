"""The retrieval task (and its robustness entries) on a tiny real cache (20 textbook structures as CIFs, simulated,
split), through the task registry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pymatgen.core import Lattice, Structure
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.methods.registry import create_method
from pxrdbench.tasks.base import EvalContext
from pxrdbench.tasks.registry import run_tasks
from pxrdbench.tasks.retrieval import RETRIEVAL
from pxrdbench.tasks.specs import base_metric, metric_spec, task_has_metric
from pxrdbench.views.render import render_batch

HEX = Lattice.hexagonal
# (space group, lattice, species, fractional coordinates): rock salts, perovskites, diamonds, sphalerites and
# four polymorphs of Fe and two of ZnS, so that element sets repeat (the element pre-screen has work to do).
STRUCTURES = [
    ("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(4.03), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(4.11), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    ("Pm-3m", Lattice.cubic(4.01), ["Ba", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    ("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    ("Fd-3m", Lattice.cubic(5.658), ["Ge"], [[0, 0, 0]]),
    ("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("F-43m", Lattice.cubic(5.653), ["Ga", "As"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("P6_3mc", HEX(3.82, 6.26), ["Zn", "S"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]]),
    ("Im-3m", Lattice.cubic(2.866), ["Fe"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(3.59), ["Fe"], [[0, 0, 0]]),
    ("Pm-3m", Lattice.cubic(2.30), ["Fe"], [[0, 0, 0]]),
    ("P6_3/mmc", HEX(2.47, 3.96), ["Fe"], [[1 / 3, 2 / 3, 0.25]]),
    ("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(4.05), ["Al"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("Im-3m", Lattice.cubic(3.165), ["W"], [[0, 0, 0]]),
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> DatasetCache:
    folder = tmp_path_factory.mktemp("retrieval-cifs")
    for i, (group, lattice, species, coords) in enumerate(STRUCTURES):
        Structure.from_spacegroup(group, lattice, species, coords).to(filename=str(folder / f"s{i:02d}.cif"))
    root = tmp_path_factory.mktemp("retrieval-cache")
    return DatasetCache.build_or_open(f"cif_dir:{folder}", fractions=(0.4, 0.1, 0.5), root=root)


@pytest.fixture(scope="module")
def dm(cache: DatasetCache) -> SimulatedDataModule:
    return SimulatedDataModule(cache, "xccp_dual", batch_size=4, with_graphs="cgcnn", seed=3)


def evaluate_retrieval(
    method: Any,
    dm: SimulatedDataModule,
    *,
    n_boot: int,
    pools=("test", "all"),
    perturbations: Sequence[str] = (),
) -> dict[str, Any]:
    """The retrieval and robustness blocks of the registry's evaluation."""
    ctx = EvalContext(
        method=method, datamodule=dm, n_boot=n_boot, perturbations=list(perturbations), pools=pools
    )
    return run_tasks(ctx, only=("retrieval", "robustness"))


class PatternIdentity:
    """A pattern-only method whose embedding is the unit pattern itself (raw-pattern matching)."""

    tasks = ("retrieval",)

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return F.normalize(batch["pattern"].float(), dim=1)


class Oracle(PatternIdentity):
    """A perfect contrastive embedder: pattern and structure both map to the one-hot of their cache row.

    Patterns are recognised by their nearest clean rendering, structures by a graph fingerprint.
    """

    def __init__(self, dm: SimulatedDataModule) -> None:
        cache = dm.cache
        rows = np.arange(len(cache))
        batch = collate_structures(list(ReflectionDataset(cache, rows, dm.view.d_min, dm.view.max_peaks)))
        self.references = super().embed(render_batch(dm.view, batch, train=False, seed=0))
        self.rows = {self.fingerprint(cache.graph_arrays(r)["z"], cache.graph_arrays(r)["distance"]): r
                     for r in rows}  # fmt: skip
        assert len(self.rows) == len(rows)

    @staticmethod
    def fingerprint(z: np.ndarray, distance: np.ndarray) -> tuple[int, int, float]:
        return int(len(z)), int(np.sum(z)), round(float(np.sum(distance)), 2)

    def one_hot(self, index: Tensor) -> Tensor:
        return F.one_hot(index, len(self.references)).float()

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return self.one_hot((super().embed(batch) @ self.references.T).argmax(dim=1))

    def embed_structures(self, batch: Mapping[str, Any]) -> Tensor:
        keys = [self.fingerprint(g.x.numpy(), g.edge_dist.numpy()) for g in batch["graph"].to_data_list()]
        return self.one_hot(torch.tensor([self.rows[k] for k in keys]))


class NoEmbedding(PatternIdentity):
    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        raise NotImplementedError("no embedding")


def test_perfect_embedder_retrieves_everything_and_open_set_confidence_drops(dm) -> None:
    out = evaluate_retrieval(Oracle(dm), dm, n_boot=50, pools=("test", "all"))
    block = out["retrieval"]
    for prefix in ("", "prescreen/", "fullpool/", "fullpool_prescreen/"):
        assert block[f"{prefix}top1"]["value"] == 100.0 and block[f"{prefix}mean_rank"]["value"] == 1.0
        assert block[f"{prefix}space_group_via_top1/accuracy"]["value"] == 100.0
    assert block["top1"]["ci95"] == [100.0, 100.0] and block["top1"]["n"] == len(
        dm.cache.split_indices("test")
    )
    assert block["in_pool/mean_top1_similarity"]["value"] == pytest.approx(1.0)
    assert block["removed/mean_top1_similarity"]["value"] == pytest.approx(0.0)  # one-hots are orthogonal
    assert block["in_pool/mean_confidence"]["value"] == pytest.approx(1 / (1 + np.exp(-0.15 / 0.025)))
    assert block["removed/low_confidence_share"]["value"] == 100.0
    assert "robustness" not in out


def test_element_random_baseline_equals_the_formula(dm) -> None:
    """Expected top-1 of a random pick among same-element candidates: mean over queries of 1/n_q."""
    block = evaluate_retrieval(PatternIdentity(), dm, n_boot=20)["retrieval"]
    entries = dm.cache.entries
    test = entries[entries["split"] == "test"]
    for key, pool in (("element_random/top1", test), ("fullpool/element_random/top1", entries)):
        counts = pool["elements"].value_counts()
        expected = 100.0 * float(np.mean([1.0 / counts[e] for e in test["elements"]]))
        assert block[key]["value"] == pytest.approx(expected)
    iron = entries["formula"].str.fullmatch("Fe")
    assert iron.sum() == 4  # four Fe polymorphs: an Fe query's random pick in the full pool hits 1 in 4
    assert block["fullpool/element_random/top1"]["value"] < 100.0


def test_pattern_only_methods_match_clean_reference_patterns(dm) -> None:
    out = evaluate_retrieval(PatternIdentity(), dm, n_boot=20, perturbations=["fwhm_0.5", "shift_+0.5"])
    block, robustness = out["retrieval"], out["robustness"]
    # The XCCP view's evaluation render is deterministic, so each query equals its own reference pattern.
    assert block["top1"]["value"] == 100.0 and block["fullpool/top1"]["value"] == 100.0
    for name in ("fwhm_0.5", "shift_+0.5"):
        for key in ("top1", "top10", "mean_rank", "prescreen/top1"):
            assert f"{name}/retrieval/{key}" in robustness
        assert 0.0 <= robustness[f"{name}/retrieval/top1"]["value"] <= 100.0
    assert robustness["shift_+0.5/retrieval/top1"]["value"] < 100.0  # a 0.5° shift misses 0.1°-wide peaks


def test_untrained_contrastive_model_gives_valid_keys_and_consistent_ranges(dm) -> None:
    torch.manual_seed(0)
    model = create_method("den_kan_tiny")
    out = evaluate_retrieval(model, dm, n_boot=50, pools=("test", "all"), perturbations=["fwhm_0.2"])
    block = out["retrieval"]
    n_test, n_all = len(dm.cache.split_indices("test")), len(dm.cache)
    for key, entry in block.items():
        assert task_has_metric("retrieval", key), key
        assert metric_spec(key).name == base_metric(key)
        if entry["ci95"] is not None:
            assert entry["ci95"][0] - 1e-9 <= entry["value"] <= entry["ci95"][1] + 1e-9, key
    for prefix, pool_size in (("", n_test), ("prescreen/", n_test), ("fullpool/", n_all)):
        values = [block[f"{prefix}top{k}"]["value"] for k in (1, 3, 5, 10)]
        assert values == sorted(values) and values[0] >= 0.0 and values[-1] <= 100.0
        assert 1.0 <= block[f"{prefix}mean_rank"]["value"] <= pool_size
    assert block["prescreen/top1"]["value"] >= block["top1"]["value"]  # the pre-screen only removes rivals
    assert block["fullpool/top1"]["value"] <= block["top1"]["value"]  # a larger pool only adds rivals
    assert block["fullpool_prescreen/top1"]["value"] <= block["prescreen/top1"]["value"]
    assert all(key.startswith("fwhm_0.2/retrieval/") for key in out["robustness"])
    assert set(out) == {"retrieval", "robustness"}


def test_methods_without_an_embedding_take_no_part(dm) -> None:
    assert RETRIEVAL.serves(NoEmbedding())  # declared, but its embedding raises: no block
    assert evaluate_retrieval(NoEmbedding(), dm, n_boot=10, perturbations=["fwhm_0.2"]) == {}
    majority = create_method("majority")
    assert not RETRIEVAL.serves(majority)
    assert evaluate_retrieval(majority, dm, n_boot=10) == {}


def test_unknown_pool_is_refused(dm) -> None:
    from pxrdbench.errors import ConfigError

    with pytest.raises(ConfigError, match="pools"):
        evaluate_retrieval(PatternIdentity(), dm, n_boot=10, pools=("train",))


def test_cache_fixture_is_small(cache: DatasetCache) -> None:
    assert len(cache) == len(STRUCTURES) and Path(cache.path).is_dir()
    assert len(cache.split_indices("test")) >= 5
