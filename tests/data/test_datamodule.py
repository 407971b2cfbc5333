"""SimulatedDataModule: deterministic batches, labels / element multi-hot / crystal graphs present,
rendering after transfer, disjoint covering DDP shards, and a clear error when a dataset's files are
missing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Composition
from torch.utils.data import DataLoader, DistributedSampler

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.sources import base
from pxrdbench.data.torch_dataset import collate_structures
from pxrdbench.errors import ConfigError, DatasetError


def module_for(cache: DatasetCache, **kwargs) -> SimulatedDataModule:
    dm = SimulatedDataModule(cache, kwargs.pop("view", "xccp_dual"), **kwargs)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def rendered(dm: SimulatedDataModule, loader: DataLoader) -> list[dict]:
    """Every batch of a loader after the (trainer-less, i.e. evaluation) post-transfer hook."""
    return [dm.on_after_batch_transfer(batch, 0) for batch in loader]


def test_splits_cover_the_cache_without_overlap(cache) -> None:
    dm = module_for(cache)
    rows = [dm.split_dataset(s).indices for s in ("train", "val", "test")]
    assert sorted(np.concatenate(rows).tolist()) == list(range(len(cache)))
    assert all(len(r) > 0 for r in rows)


def test_batches_are_deterministic_for_a_seed(cache) -> None:
    first = module_for(cache, batch_size=3, seed=5)
    again = module_for(cache, batch_size=3, seed=5)
    order_a = [b["index"].tolist() for b in first.train_dataloader()]
    order_b = [b["index"].tolist() for b in again.train_dataloader()]
    assert order_a == order_b and sorted(sum(order_a, [])) == sorted(first.split_dataset("train").indices)
    for a, b in zip(
        rendered(first, first.test_dataloader()), rendered(again, again.test_dataloader()), strict=True
    ):
        assert torch.equal(a["pattern"], b["pattern"]) and torch.equal(a["index"], b["index"])
    orders = set()
    for seed in range(6):
        loader = module_for(cache, batch_size=3, seed=seed).train_dataloader()
        orders.add(tuple(i for batch in loader for i in batch["index"].tolist()))
    assert len(orders) > 1, "the seed does not change the shuffle"


def test_batch_carries_labels_elements_and_graphs(cache) -> None:
    dm = module_for(cache, batch_size=len(cache), with_graphs="cgcnn")
    dataset = dm.split_dataset("all")
    batch = dm.on_after_batch_transfer(collate_structures([dataset[i] for i in range(len(dataset))]), 0)
    entries = cache.entries
    assert batch["pattern"].shape == (len(cache), dm.view.n_points)
    assert batch["space_group"].tolist() == (entries["space_group"] - 1).tolist()
    assert batch["crystal_system"].tolist() == entries["crystal_system"].tolist()
    assert batch["lattice"].shape == (len(cache), 6)
    for row, formula in enumerate(entries["formula"]):
        expected = sorted(el.Z for el in Composition(formula).elements)
        assert (torch.nonzero(batch["elements"][row]).flatten() + 1).tolist() == expected
    graph = batch["graph"]
    assert graph.num_graphs == len(cache)
    assert graph.num_nodes == int(entries["n_sites"].sum())
    assert int(graph.edge_index.max()) < graph.num_nodes and graph.edge_dist.min() > 0.5
    assert graph.edge_dist.max() <= cache.params.cgcnn_radius + 1e-4
    counts = torch.bincount(graph.batch[graph.edge_index[0]], minlength=len(cache))
    assert (counts <= torch.tensor(entries["n_sites"].tolist()) * cache.params.cgcnn_max_neighbors).all()


def test_reflections_are_limited_to_the_view_range(cache) -> None:
    dm = module_for(cache, view="alphadiffract")
    item = dm.split_dataset("all")[0]
    assert len(item["d"]) <= dm.view.max_peaks and item["d"].min() >= dm.view.d_min


@pytest.mark.parametrize("split", ["train", "all"])
def test_ddp_ranks_see_disjoint_covering_shards(cache, split: str) -> None:
    dm = module_for(cache, batch_size=2)
    dataset = dm.split_dataset(split)
    shards = []
    for rank in (0, 1):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        loader = DataLoader(dataset, batch_size=2, sampler=sampler, collate_fn=collate_structures)
        shards.append([i for b in loader for i in b["index"].tolist()])
    assert len(dataset) % 2 == 0, "odd splits are padded by DistributedSampler; pick an even one"
    assert not set(shards[0]) & set(shards[1])
    assert sorted(shards[0] + shards[1]) == sorted(dataset.indices.tolist())


def test_unknown_view_and_missing_dataset_are_clear_errors(tmp_path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'difcon'"):
        SimulatedDataModule("synthetic:225", "difkon")
    monkeypatch.setenv("PXRDBENCH_DATA", str(tmp_path))
    monkeypatch.setenv("PXRDBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PXRDBENCH_MP_CGCNN_URL", raising=False)
    monkeypatch.setattr(base, "repo_shared_data", lambda: tmp_path / "no-shared-data")
    dm = SimulatedDataModule("mp_cgcnn", "eacnn", max_structures=4)
    with pytest.raises(DatasetError, match=r"Put the file at \$PXRDBENCH_DATA/mp-cgcnn/structures.csv.gz"):
        dm.prepare_data()
