"""Evaluation batches: a split of a data module rendered through its view's evaluation pipeline (or a named
perturbation set), seeded so every method sees the same patterns; measured patterns converted into a view.

Every batch carries what the method declares it reads (:meth:`data_requirements`): crystal graphs when the
data module was built with them, and the view's peak tokens when the module's ``peak_tokens`` is set or asked
for here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch

from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.views.peak_tokens import add_view_tokens
from pxrdbench.views.render import experimental_batch, render_batch


def needs_peak_tokens(method: Any) -> bool:
    """Whether ``method`` declares that it reads the view's peak tokens."""
    requirements = getattr(method, "data_requirements", None)
    return bool(getattr(requirements(), "peak_tokens", False)) if callable(requirements) else False


def to_device(batch: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """A copy of ``batch`` with its tensors (and crystal graph) on ``device``."""
    return {k: (v.to(device) if torch.is_tensor(v) or k == "graph" else v) for k, v in batch.items()}


def render_dataset(
    dm: Any,
    dataset: Any,
    *,
    seed: int,
    perturbation: str | None = None,
    peak_tokens: bool | None = None,
    device: str = "cpu",
) -> Iterator[dict[str, Any]]:
    """Evaluation renderings of a dataset's items (in order, ``dm.batch_size`` per batch) through ``dm.view``;
    ``peak_tokens``: add the view's peak tokens (None: the data module's ``peak_tokens``)."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=dm.batch_size, shuffle=False, collate_fn=collate_structures)
    tokens = bool(getattr(dm, "peak_tokens", False)) if peak_tokens is None else peak_tokens
    for batch in loader:
        rendered = render_batch(
            dm.view, to_device(batch, device), train=False, seed=seed, perturbation=perturbation
        )
        yield add_view_tokens(dm.view, rendered) if tokens else rendered


def render_rows(
    dm: Any, rows: np.ndarray, *, seed: int, graphs: bool = True, **options: Any
) -> Iterator[dict[str, Any]]:
    """:func:`render_dataset` of cache ``rows`` (with the data module's crystal graphs when ``graphs``)."""
    graph = dm.with_graphs if graphs else None
    dataset = ReflectionDataset(dm.cache, rows, dm.view.d_min, dm.view.max_peaks, graph)
    yield from render_dataset(dm, dataset, seed=seed, **options)


def rendered_batches(
    dm: Any,
    split: str,
    *,
    perturbation: str | None = None,
    device: str = "cpu",
    peak_tokens: bool | None = None,
) -> Iterator[dict[str, Any]]:
    """Evaluation batches of a split rendered through the datamodule's view (seeded, reproducible)."""
    if dm.cache is None:
        dm.setup()
    yield from render_dataset(
        dm, dm.split_dataset(split), seed=dm.seed, perturbation=perturbation, peak_tokens=peak_tokens,
        device=device,
    )  # fmt: skip


def measured_batch(
    view: Any,
    two_theta: np.ndarray,
    intensities: np.ndarray,
    wavelength: Any,
    *,
    ids: list[str] | None = None,
    peak_tokens: bool = False,
) -> dict[str, Any]:
    """Measured patterns converted into ``view`` (:func:`~pxrdbench.views.render.experimental_batch`), with
    the view's peak tokens when asked for."""
    batch = experimental_batch(view, two_theta, intensities, wavelength, ids=ids)
    return add_view_tokens(view, batch) if peak_tokens else batch


def select_rows(batch: Mapping[str, Any], rows: list[int]) -> dict[str, Any]:
    """The ``rows`` of a batch (its tensors indexed along the first axis; other values kept)."""
    index = torch.as_tensor(rows, dtype=torch.long)
    return {k: (v[index.to(v.device)] if torch.is_tensor(v) else v) for k, v in batch.items()}
