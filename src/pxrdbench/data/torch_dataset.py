"""A torch ``Dataset`` over a cache split: per item the reflections within a view's d-range, labels and (optionally)
the crystal graph; ``collate_structures`` pads reflections into (B, P) tensors. Rendering happens later, per batch,
on the device (``SimulatedDataModule.on_after_batch_transfer``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from pxrdbench.data.cache import DatasetCache


class ReflectionDataset(Dataset):
    """Items of one split: reflections with d >= ``d_min`` (the strongest ``max_peaks`` by m·|F|²), labels, graph.

    Args:
        cache: an opened dataset cache.
        indices: row indices of the split.
        d_min: smallest d the view can show (Å).
        max_peaks: keep at most this many reflections (strongest m·|F|²) to bound the rendering cost.
        graph: None, "cgcnn", "radius" or "atoms" (no edges) — which neighbour list to attach as a torch_geometric ``Data``.
    """

    def __init__(
        self,
        cache: DatasetCache,
        indices: np.ndarray,
        d_min: float,
        max_peaks: int = 1024,
        graph: str | None = None,
    ) -> None:
        self.cache = cache
        self.indices = np.asarray(indices, dtype=np.int64)
        self.d_min = float(d_min)
        self.max_peaks = int(max_peaks)
        self.graph = graph
        self.labels = cache.labels
        self.elements = cache.element_multi_hot

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        row = int(self.indices[i])
        d, mf2 = select_reflections(*self.cache.reflections(row), self.d_min, self.max_peaks)
        item: dict[str, Any] = {
            "index": row,
            "d": d,
            "mf2": mf2,
            "crystal_system": int(self.labels["crystal_system"][row]),
            "space_group": int(self.labels["space_group"][row]),
            "extinction_group": int(self.labels["extinction_group"][row]),
            "lattice": self.labels["lattice"][row],
            "elements": self.elements[row],
        }
        if self.graph is not None:
            item["graph"] = graph_data(self.cache, row, self.graph)
        return item


def select_reflections(
    d: np.ndarray, mf2: np.ndarray, d_min: float, max_peaks: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reflections with d >= ``d_min`` (Å), at most the ``max_peaks`` strongest by m·|F|², in their order;
    float32 copies."""
    d, mf2 = np.asarray(d), np.asarray(mf2)
    keep = d >= d_min
    d, mf2 = d[keep], mf2[keep]
    if len(d) > max_peaks:
        strongest = np.sort(np.argpartition(-mf2, max_peaks)[:max_peaks])
        d, mf2 = d[strongest], mf2[strongest]
    return d.astype(np.float32), mf2.astype(np.float32)


def graph_data(cache: DatasetCache, row: int, kind: str) -> Any:
    """A torch_geometric ``Data`` for one structure (see the batch contract in docs/ARCHITECTURE.md)."""
    return graph_from_arrays(cache.graph_arrays(row, kind))


def graph_from_arrays(g: dict[str, np.ndarray]) -> Any:
    """``Data`` from atom and edge arrays as :meth:`DatasetCache.graph_arrays` returns them: ``z``, ``frac``,
    ``lattice`` (3×3, rows = vectors, Å), ``edge_index`` (2, E), ``distance`` (E,) [, ``edge_vec`` (E, 3)];
    without ``edge_index`` the graph has no edges (the ``atoms`` kind)."""
    from torch_geometric.data import Data

    if "edge_index" not in g:
        g = {**g, "edge_index": np.zeros((2, 0), dtype=np.int64), "distance": np.zeros(0, dtype=np.float32)}

    data = Data(
        x=torch.as_tensor(np.asarray(g["z"]).astype(np.int64)),
        edge_index=torch.as_tensor(np.asarray(g["edge_index"]).reshape(2, -1).astype(np.int64)),
        edge_dist=torch.as_tensor(np.asarray(g["distance"], dtype=np.float32)),
        frac_coords=torch.as_tensor(np.asarray(g["frac"], dtype=np.float32)),
        lattice=torch.as_tensor(np.asarray(g["lattice"], dtype=np.float32)).unsqueeze(0),
        num_nodes=len(g["z"]),
    )
    if "edge_vec" in g:
        data.edge_vec = torch.as_tensor(np.asarray(g["edge_vec"], dtype=np.float32))
    return data


def collate_structures(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack labels and pad reflections: ``d`` (B, P) padded with +inf, ``mf2`` (B, P) padded with 0."""
    width = max(1, max(len(it["d"]) for it in items))
    d = torch.full((len(items), width), float("inf"))
    mf2 = torch.zeros(len(items), width)
    for i, it in enumerate(items):
        n = len(it["d"])
        d[i, :n] = torch.from_numpy(it["d"])
        mf2[i, :n] = torch.from_numpy(it["mf2"])
    batch: dict[str, Any] = {
        "d": d,
        "mf2": mf2,
        "index": torch.tensor([it["index"] for it in items], dtype=torch.long),
        "crystal_system": torch.tensor([it["crystal_system"] for it in items], dtype=torch.long),
        "space_group": torch.tensor([it["space_group"] for it in items], dtype=torch.long),
        "extinction_group": torch.tensor([it["extinction_group"] for it in items], dtype=torch.long),
        "lattice": torch.from_numpy(np.stack([it["lattice"] for it in items])).float(),
        "elements": torch.from_numpy(np.stack([it["elements"] for it in items])).float(),
    }
    if "graph" in items[0]:
        from torch_geometric.data import Batch

        batch["graph"] = Batch.from_data_list([it["graph"] for it in items])
    return batch
