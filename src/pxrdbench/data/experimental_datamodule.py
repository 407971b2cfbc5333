"""A thin LightningDataModule over measured patterns, converted into a view once, at ``setup``.

Input: a named experimental set (``"rruff908"``) or a file of any supported format
(:func:`pxrdbench.data.experimental.registry.load_pattern`). Every pattern goes through the one
conversion that simulated patterns share past rendering: Bragg re-mapping to the view's wavelength
(2θ' = 2 asin(λ_view/λ · sin θ)), linear resampling onto the view's grid with the unmeasured part masked
(never extrapolated), binning and the view's normalisation
(:func:`pxrdbench.views.render.bin_and_normalise`). Bad input (NaN, negative or non-increasing 2θ, no
wavelength, no overlap with the grid, missing npz keys) raises the loader's error naming the pattern and
file.

Batches: ``pattern`` Float[B, n_points], ``pattern_mask`` Bool[B, n_points], ``index`` Long[B], ``id``
(list of str) and, when any pattern carries them, ``crystal_system`` Long[B] (0–6) and ``space_group``
Long[B] (0-based, 0–229), −1 where a pattern's label is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from pxrdbench.errors import PatternError, did_you_mean
from pxrdbench.physics.wavelength import Wavelength
from pxrdbench.views.render import bin_and_normalise, experimental_batch
from pxrdbench.views.spec import ViewSpec, load_view

EXPERIMENTAL_SETS: tuple[str, ...] = ("rruff908",)
"""Named measured sets (found under ``$PXRDBENCH_DATA`` or the shared data folder)."""

UNKNOWN_LABEL = -1
CONVERT_CHUNK = 64  # rows converted at once for sets on one shared 2θ axis


@dataclass(frozen=True)
class ConvertedPatterns:
    """Measured patterns on a view's grid: ``pattern``/``mask`` (N, n_points), labels (N,) or None, ids."""

    ids: list[str]
    pattern: Tensor
    mask: Tensor
    crystal_system: Tensor | None
    space_group: Tensor | None

    def __len__(self) -> int:
        return len(self.ids)


def _label_tensor(values: list[int | None]) -> Tensor | None:
    """Long tensor of labels with −1 for unknown; None when no pattern has the label."""
    if all(v is None for v in values):
        return None
    return torch.tensor([UNKNOWN_LABEL if v is None else int(v) for v in values], dtype=torch.long)


def convert_rruff908(view: ViewSpec, path: str | Path | None = None) -> ConvertedPatterns:
    """RRUFF-908 (one shared Cu Kα 2θ axis), converted in chunks by
    :func:`~pxrdbench.views.render.experimental_batch`."""
    from pxrdbench.data.experimental.rruff908 import rruff908_arrays

    arrays = rruff908_arrays(path)
    ids = [f"rruff908:{int(i)}" for i in arrays.source_index]
    patterns, masks = [], []
    for start in range(0, len(ids), CONVERT_CHUNK):
        stop = start + CONVERT_CHUNK
        out = experimental_batch(
            view, arrays.two_theta, arrays.intensity[start:stop], arrays.wavelength, ids=ids[start:stop]
        )
        patterns.append(out["pattern"])
        masks.append(out["pattern_mask"])
    return ConvertedPatterns(
        ids,
        torch.cat(patterns),
        torch.cat(masks),
        torch.as_tensor(arrays.crystal_system, dtype=torch.long),
        torch.as_tensor(arrays.space_group - 1, dtype=torch.long),
    )


def convert_file(
    view: ViewSpec, path: str | Path, wavelength: Wavelength | float | str | None = None
) -> ConvertedPatterns:
    """Every pattern in a file (any registered format), each on its own 2θ axis, converted into ``view``."""
    from pxrdbench.data.experimental.pattern import crystal_system_index, to_grid
    from pxrdbench.data.experimental.registry import load_pattern

    loaded = load_pattern(path, wavelength=wavelength)
    if not loaded:
        raise PatternError(str(path), "the file holds no pattern")
    grid = view.grid.tensor("cpu").double().numpy()
    rows, masks, systems, groups = [], [], [], []
    for pattern in loaded:
        values, mask = to_grid(pattern, grid, view.wavelength, normalise="none")
        rows.append(values)
        masks.append(mask)
        sg = pattern.labels.get("space_group")
        cs = pattern.labels.get("crystal_system")
        if cs is None and sg is not None:
            cs = crystal_system_index(int(sg))
        systems.append(None if cs is None else int(cs))
        groups.append(None if sg is None else int(sg) - 1)
    pattern_t, mask_t = bin_and_normalise(
        view, torch.as_tensor(np.stack(rows), dtype=torch.float32), torch.as_tensor(np.stack(masks))
    )
    return ConvertedPatterns(
        [p.id for p in loaded], pattern_t, mask_t, _label_tensor(systems), _label_tensor(groups)
    )


def convert_experimental(
    name_or_path: str | Path, view: ViewSpec, wavelength: Wavelength | float | str | None = None
) -> ConvertedPatterns:
    """A named set or a file, converted into ``view``; an unknown bare name says "did you mean"."""
    text = str(name_or_path)
    if text in EXPERIMENTAL_SETS:
        return convert_rruff908(view)
    path = Path(name_or_path)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        raise did_you_mean(text, list(EXPERIMENTAL_SETS), "experimental set (or pattern file)")
    return convert_file(view, path, wavelength)


class _RowsDataset(Dataset):
    """Row ``i`` of a :class:`ConvertedPatterns` as a dict (collated by :func:`collate_rows`)."""

    def __init__(self, data: ConvertedPatterns) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> int:
        return i


class ExperimentalDataModule(L.LightningDataModule):
    """Measured patterns for testing and prediction, already in the view (see the module docstring).

    Args:
        name_or_path: ``"rruff908"`` or a pattern file (xrdml, opXRD json, Rietveld CIF, npz, xy/csv/txt...).
        view: view name or spec.
        batch_size: patterns per batch.
        wavelength: the measurement's wavelength for files that state none (columns files); ignored otherwise.
    """

    def __init__(
        self,
        name_or_path: str | Path,
        view: str | ViewSpec,
        batch_size: int = 64,
        wavelength: Wavelength | float | str | None = None,
    ) -> None:
        super().__init__()
        self.name_or_path = name_or_path
        self.view = load_view(view) if isinstance(view, str) else view
        self.batch_size = int(batch_size)
        self.wavelength = wavelength
        self.data: ConvertedPatterns | None = None

    def setup(self, stage: str | None = None) -> None:
        """Load and convert every pattern once (errors name the offending pattern and file)."""
        if self.data is None:
            self.data = convert_experimental(self.name_or_path, self.view, self.wavelength)

    def collate_rows(self, rows: list[int]) -> dict[str, Any]:
        """Batch of the given row indices: pattern, pattern_mask, index, id and the known labels."""
        assert self.data is not None, "call setup() first"
        index = torch.tensor(rows, dtype=torch.long)
        batch: dict[str, Any] = {
            "pattern": self.data.pattern[index],
            "pattern_mask": self.data.mask[index],
            "index": index,
            "id": [self.data.ids[i] for i in rows],
        }
        for key in ("crystal_system", "space_group"):
            labels = getattr(self.data, key)
            if labels is not None:
                batch[key] = labels[index]
        return batch

    def _loader(self) -> DataLoader:
        self.setup()
        assert self.data is not None
        return DataLoader(
            _RowsDataset(self.data), batch_size=self.batch_size, shuffle=False, collate_fn=self.collate_rows
        )

    def test_dataloader(self) -> DataLoader:
        return self._loader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader()
