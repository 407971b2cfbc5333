"""Thin LightningDataModules (torchgeo style): data on the CPU, rendering and augmentation after the transfer,
on the device.

``SimulatedDataModule`` serves cached structures of one dataset rendered through a view; labels, element multi-hot
and (when asked) crystal graphs ride along. Under DDP, Lightning gives each rank its shard (distributed sampler);
rendering is seeded per batch from (seed, stage, first index), so evaluation is reproducible and training draws
fresh augmentations every step.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.views.render import render_batch
from pxrdbench.views.spec import ViewSpec, load_view


class SimulatedDataModule(L.LightningDataModule):
    """Simulated patterns from a dataset cache, rendered per batch through ``view``.

    Args:
        dataset: dataset name (``amcsd``, ``mp_cgcnn``, ``a+b``...) or an opened :class:`DatasetCache`.
        view: view name or spec.
        batch_size: patterns per batch (per device under DDP).
        num_workers: DataLoader worker processes.
        with_graphs: None, "cgcnn", "radius" or "atoms": attach crystal graphs for methods with a crystal encoder.
            ``bench`` and ``fit`` set this, ``n_views`` and ``peak_tokens`` from the method's
            ``data_requirements()`` (:func:`pxrdbench.run.lightning_cli.configure_data_for`), so a config
            leaves them alone.
        seed: seed of shuffling and of the rendering generators.
        n_views: independently augmented renderings per structure (2 for Barlow Twins); extra ones are stored as
            ``pattern_2``, ``pattern_3``...
        max_structures, workers: passed to the cache builder when ``dataset`` is a name.
    """

    def __init__(
        self,
        dataset: str | DatasetCache = "amcsd",
        view: str | ViewSpec = "alphadiffract",
        batch_size: int = 64,
        num_workers: int = 0,
        with_graphs: str | None = None,
        seed: int = 0,
        n_views: int = 1,
        max_structures: int | None = None,
        workers: int = 1,
    ) -> None:
        super().__init__()
        self._dataset = dataset
        self.view = load_view(view) if isinstance(view, str) else view
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.with_graphs = with_graphs
        self.seed = seed
        self.n_views = n_views
        self.peak_tokens = False  # add the view's peak tokens to every batch (set from the method)
        self.max_structures = max_structures
        self.workers = workers
        self.cache: DatasetCache | None = dataset if isinstance(dataset, DatasetCache) else None

    def prepare_data(self) -> None:
        """Build the cache once (rank 0); other ranks open it in ``setup``."""
        if self.cache is None:
            from pxrdbench.data.store import build_cache

            build_cache(str(self._dataset), max_structures=self.max_structures, workers=self.workers)

    def setup(self, stage: str | None = None) -> None:
        if self.cache is None:
            self.cache = DatasetCache.build_or_open(
                str(self._dataset), max_structures=self.max_structures, workers=self.workers
            )

    def split_dataset(self, split: str) -> ReflectionDataset:
        assert self.cache is not None, "call setup() first"
        return ReflectionDataset(
            self.cache,
            self.cache.split_indices(split),
            self.view.d_min,
            self.view.max_peaks,
            self.with_graphs,
        )

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """Training batches are always full (the short last batch of an epoch is dropped, a different one each
        epoch as the order is shuffled), so a budget of steps × global batch is the patterns trained on."""
        generator = torch.Generator().manual_seed(self.seed)
        dataset = self.split_dataset(split)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            collate_fn=collate_structures,
            generator=generator if shuffle else None,
            persistent_workers=self.num_workers > 0,
            drop_last=shuffle and len(dataset) >= self.batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Render (and augment) the patterns on the device the batch was moved to."""
        trainer = getattr(self, "trainer", None)
        train = bool(trainer is not None and trainer.training)
        step = int(trainer.global_step) if (trainer is not None and train) else 0
        rank = int(trainer.global_rank) if trainer is not None else 0
        batch = render_batch(
            self.view, batch, train=train, seed=self.seed, step=step, rank=rank, n_views=self.n_views
        )
        if self.peak_tokens:
            from pxrdbench.views.peak_tokens import add_view_tokens

            batch = add_view_tokens(self.view, batch)
        return batch


def apply_requirements(datamodule: Any, requirements: Any) -> None:
    """Make ``datamodule`` attach what a method's ``data_requirements()`` asks for: crystal graphs
    (``graphs``), augmented views per structure (``views``) and peak tokens (``peak_tokens``)."""
    datamodule.with_graphs = requirements.graphs
    datamodule.n_views = requirements.views
    datamodule.peak_tokens = requirements.peak_tokens
