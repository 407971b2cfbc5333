"""Rendering batches through views: right length, finite, normalised, deterministic in evaluation, fresh
per step in training; binning and masked normalisation; measured patterns through the same normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.wavelength import NAMED_SOURCES, d_to_two_theta
from pxrdbench.views.render import bin_and_normalise, experimental_batch, render_batch, render_seed
from pxrdbench.views.spec import list_views, load_view, view_from_dict


def batch_for(cache: DatasetCache, view_name: str, n: int = 4) -> dict:
    """A collated batch of the first ``n`` structures with reflections in the view's d-range."""
    view = load_view(view_name)
    dataset = ReflectionDataset(cache, np.arange(n), view.d_min, view.max_peaks)
    return collate_structures([dataset[i] for i in range(n)])


@pytest.mark.parametrize("name", list_views())
def test_every_view_renders_finite_normalised_patterns(cache, name: str) -> None:
    view = load_view(name)
    batch = batch_for(cache, name)
    out = render_batch(view, batch, train=False, seed=0)
    pattern, mask = out["pattern"], out["pattern_mask"]
    assert pattern.shape == mask.shape == (4, view.n_points) and pattern.dtype == torch.float32
    assert torch.isfinite(pattern).all() and mask.all()
    scale = float(view.normalise.get("scale", 1.0))
    torch.testing.assert_close(pattern.amax(dim=1), torch.full((4,), scale))
    if view.normalise.get("mode") == "minmax":
        torch.testing.assert_close(pattern.amin(dim=1), torch.zeros(4))
    elif any(step.get("op") == "WhiteNoise" for step in view.eval_pipeline):
        assert pattern.min() >= -scale  # additive white noise may dip below zero, never below −max
    else:
        assert pattern.min() >= 0.0
    assert torch.equal(out["space_group"], batch["space_group"])  # labels ride along untouched


def test_peaks_render_where_braggs_law_puts_them(cache) -> None:
    """XCCP view (Cu Kα 1.54184 Å, no noise): the strongest rendered point sits at a reflection's 2θ."""
    view = load_view("xccp_dual")
    batch = batch_for(cache, "xccp_dual", n=len(cache))
    pattern = render_batch(view, batch, train=False, seed=0)["pattern"]
    grid = view.grid.tensor().double().numpy()
    for row in range(len(cache)):
        two_theta = d_to_two_theta(batch["d"][row].double().numpy(), view.wavelength.angstrom)
        on_grid = np.isfinite(two_theta)
        peak_at = grid[int(pattern[row].argmax())]
        nearest = np.abs(two_theta[on_grid] - peak_at).min()
        assert nearest < 0.1, f"row {row}: maximum at {peak_at:.2f}° is {nearest:.2f}° from any reflection"


def test_evaluation_rendering_is_deterministic_for_a_seed(cache) -> None:
    view = load_view("alphadiffract")  # random Caglioti, size, strain and Poisson–Gaussian noise
    batch = batch_for(cache, "alphadiffract")
    first = render_batch(view, batch, train=False, seed=3)["pattern"]
    again = render_batch(view, batch, train=False, seed=3, step=17, rank=1)["pattern"]
    other = render_batch(view, batch, train=False, seed=4)["pattern"]
    assert torch.equal(first, again)  # evaluation ignores step and rank
    assert not torch.equal(first, other)


def test_training_rendering_changes_with_the_step_and_rank(cache) -> None:
    view = load_view("alphadiffract")
    batch = batch_for(cache, "alphadiffract")
    step0 = render_batch(view, batch, train=True, seed=3, step=0)["pattern"]
    assert torch.equal(step0, render_batch(view, batch, train=True, seed=3, step=0)["pattern"])
    assert not torch.equal(step0, render_batch(view, batch, train=True, seed=3, step=1)["pattern"])
    assert not torch.equal(step0, render_batch(view, batch, train=True, seed=3, step=0, rank=1)["pattern"])
    seeds = {
        render_seed(seed=0, train=True, step=s, rank=r, first_index=0) for s in range(50) for r in range(4)
    }
    assert len(seeds) == 200


def test_several_views_are_independent_augmentations(cache) -> None:
    view = load_view("difcon")
    out = render_batch(view, batch_for(cache, "difcon"), train=True, seed=0, n_views=2)
    assert out["pattern"].shape == out["pattern_2"].shape
    assert not torch.equal(out["pattern"], out["pattern_2"])


def test_named_perturbation_replaces_the_view_pipeline(cache) -> None:
    view = load_view("xccp_dual")
    batch = batch_for(cache, "xccp_dual")
    plain = render_batch(view, batch, train=False, seed=0)["pattern"]
    shifted = render_batch(view, batch, train=False, seed=0, perturbation="shift_+0.5")["pattern"]
    step = view.grid.step
    moved = (shifted.argmax(dim=1) - plain.argmax(dim=1)).double() * step
    torch.testing.assert_close(moved, torch.full((4,), 0.5, dtype=torch.float64), atol=step, rtol=0)
    with pytest.raises(ConfigError, match="Did you mean"):
        render_batch(view, batch, train=False, seed=0, perturbation="shift_0.5")


def test_bin_and_normalise_averages_bins_and_ignores_masked_points() -> None:
    view = view_from_dict(
        {
            "name": "binned",
            "wavelength": 1.54184,
            "grid": {"start": 10.0, "stop": 15.0, "points": 6},
            "bin_factor": 2,
            "pipeline": [{"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": 0.1}}],
            "normalise": {"mode": "minmax", "scale": 10.0},
        }
    )
    pattern = torch.tensor([[1.0, 3.0, 5.0, 7.0, 100.0, 0.0]])
    mask = torch.tensor([[True, True, True, True, False, True]])
    out, out_mask = bin_and_normalise(view, pattern, mask)
    assert out_mask.tolist() == [[True, True, False]]  # a bin with any unmeasured point is masked
    torch.testing.assert_close(out, torch.tensor([[0.0, 10.0, 0.0]]))  # means 2, 6 → min-max 0..10


def test_measured_rows_enter_the_view_with_bragg_remapping() -> None:
    """A Mo Kα pattern with one peak at d = 2.0 Å appears on the Cu Kα view at 2θ = 2 asin(λ_Cu / 4)."""
    view = load_view("xccp_dual")
    mo = NAMED_SOURCES["MoKa"]
    two_theta = np.linspace(5.0, 40.0, 3501)
    peak = float(d_to_two_theta(2.0, mo.angstrom))
    rows = np.exp(-0.5 * ((two_theta - peak) / 0.05) ** 2)[None, :] * np.array([[1.0], [250.0]])
    out = experimental_batch(view, two_theta, rows, mo)
    grid = view.grid.tensor().double().numpy()
    expected = float(d_to_two_theta(2.0, view.wavelength.angstrom))
    for row in range(2):
        assert abs(grid[int(out["pattern"][row].argmax())] - expected) <= view.grid.step
    torch.testing.assert_close(out["pattern"][0], out["pattern"][1])  # normalisation removes the scale
    covered = out["pattern_mask"][0].numpy()
    lo, hi = d_to_two_theta(mo.angstrom / (2 * np.sin(np.radians([2.5, 20.0]))), view.wavelength.angstrom)
    assert not covered[grid < lo - 0.05].any() and covered[(grid > lo + 0.05) & (grid < hi - 0.05)].all()
    bad = rows.copy()
    bad[1, 10] = np.nan
    with pytest.raises(PatternError, match="sample-7"):
        experimental_batch(view, two_theta, bad, mo, ids=["sample-6", "sample-7"])
