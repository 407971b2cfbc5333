"""Rendering a batch for a view, on the batch's device: simulated (cached reflections) or experimental.

Simulated: ``batch_peaks`` (Bragg positions, m·|F|²·LP) → the view's pipeline (peak ops, ``Render`` with a
sampled profile, pattern ops) or a named perturbation set (given the view's wavelength, to which XCCP's Cu Kα widths
and shifts are converted through d) → binning → normalisation. Experimental: Bragg
re-mapping to the view's wavelength, resampling onto its grid (the unmeasured part masked, never invented) →
binning → the same normalisation. Past this point simulated and measured patterns follow one code path.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.physics.peak_batch import batch_peaks
from pxrdbench.views.spec import ViewSpec


def render_seed(*, seed: int, train: bool, step: int, rank: int, first_index: int, tag: str = "") -> int:
    """Seed of one batch's generator: fresh per step and rank in training; per content in evaluation."""
    parts = (
        (seed, step, rank, 0, zlib.crc32(tag.encode()))
        if train
        else (seed, 0, 0, first_index, zlib.crc32(tag.encode()))
    )
    h = 0
    for p in parts:
        h = (h * 1_000_003 + int(p)) % (2**63 - 1)
    return h


def bin_and_normalise(view: ViewSpec, pattern: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Average ``bin_factor`` neighbouring points, then the view's normalisation over the valid part."""
    if mask is None:
        mask = torch.ones_like(pattern, dtype=torch.bool)
    if view.bin_factor > 1:
        b, n = pattern.shape
        pattern = pattern.reshape(b, n // view.bin_factor, view.bin_factor).mean(dim=2)
        mask = mask.reshape(b, n // view.bin_factor, view.bin_factor).all(dim=2)
    pattern = torch.where(mask, pattern, torch.zeros_like(pattern))
    mode = view.normalise.get("mode", "max")
    scale = float(view.normalise.get("scale", 1.0))
    big = torch.finfo(pattern.dtype).max
    hi = torch.where(mask, pattern, torch.full_like(pattern, -big)).amax(dim=1, keepdim=True)
    lo = (
        torch.where(mask, pattern, torch.full_like(pattern, big)).amin(dim=1, keepdim=True)
        if mode == "minmax"
        else torch.zeros_like(hi)
    )
    span = (hi - lo).clamp_min(1e-12)
    out = torch.where(mask, (pattern - lo) / span * scale, torch.zeros_like(pattern))
    return out.float(), mask


def render_batch(
    view: ViewSpec,
    batch: dict[str, Any],
    *,
    train: bool,
    seed: int,
    step: int = 0,
    rank: int = 0,
    n_views: int = 1,
    perturbation: str | None = None,
) -> dict[str, Any]:
    """Add ``pattern`` (and ``pattern_2``... for several views) and ``pattern_mask`` to a collated batch."""
    from pxrdbench.views.perturbations import perturbation_pipeline

    d, mf2 = batch["d"], batch["mf2"]
    device = d.device
    grid = view.grid.tensor(device)
    peaks = batch_peaks(d, mf2, view.wavelength, (view.grid.start, view.grid.stop), doublet=view.doublet)
    pipeline = (
        perturbation_pipeline(perturbation, view.wavelength.angstrom)
        if perturbation
        else view.build_pipeline(train)
    )
    first = int(batch["index"][0]) if "index" in batch and len(batch["index"]) else 0
    out = dict(batch)
    for v in range(n_views):
        tag = f"{perturbation or ''}:{v}"
        gen = torch.Generator().manual_seed(
            render_seed(seed=seed, train=train, step=step, rank=rank, first_index=first, tag=tag)
        )
        pattern = pipeline(peaks, generator=gen, grid=grid)
        pattern, mask = bin_and_normalise(view, pattern)
        out["pattern" if v == 0 else f"pattern_{v + 1}"] = pattern
    out["pattern_mask"] = mask
    return out


def experimental_batch(
    view: ViewSpec,
    two_theta: np.ndarray,
    intensities: np.ndarray,
    wavelength: Any,
    ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Measured patterns (one shared 2θ axis, rows of intensities) converted into the view: Bragg
    re-mapping to the view's wavelength, interpolation onto its grid with the unmeasured part masked,
    binning, normalisation. ``ids`` name the rows in error messages (default ``row<i>``)."""
    from pxrdbench.data.experimental.pattern import make_pattern, to_grid

    grid = view.grid.tensor("cpu").double().numpy()
    rows, masks = [], []
    for i, y in enumerate(np.atleast_2d(intensities)):
        name = str(ids[i]) if ids is not None else f"row{i}"
        pattern = make_pattern(name, np.asarray(two_theta), np.asarray(y), wavelength)
        values, mask = to_grid(pattern, grid, view.wavelength, normalise="none")
        rows.append(values)
        masks.append(mask)
    pattern = torch.as_tensor(np.stack(rows), dtype=torch.float32)
    mask = torch.as_tensor(np.stack(masks), dtype=torch.bool)
    pattern, mask = bin_and_normalise(view, pattern, mask)
    return {"pattern": pattern, "pattern_mask": mask}
