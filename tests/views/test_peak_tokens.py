"""XtalNet peak tokens: known peaks found at their grid indices with their normalised heights, strongest kept,
sorted by position, padded and masked; rule and grid-length errors are clear."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.views.peak_tokens import add_peak_tokens, check_rule, pick_peak_tokens
from pxrdbench.views.spec import load_view

RULE = {"height": 0.01, "prominence": 0.02, "max_tokens": 8, "position_table": 4096}


def gaussians(
    n: int, centres: list[int], heights: list[float], sigma: float = 3.0, offset: float = 0.0
) -> np.ndarray:
    """A pattern of n points: Gaussian peaks (σ in points) at integer centres with the given heights."""
    x = np.arange(n, dtype=float)
    y = np.full(n, offset)
    for c, h in zip(centres, heights, strict=True):
        y += h * np.exp(-0.5 * ((x - c) / sigma) ** 2)
    return y


def test_known_peaks_become_tokens_at_their_indices() -> None:
    centres, heights = [100, 250, 400, 700], [1.0, 0.5, 0.2, 0.05]
    patterns = torch.tensor(np.stack([gaussians(1000, centres, heights), gaussians(1000, [500], [3.0])]))
    positions, intensities, mask = pick_peak_tokens(patterns.float(), RULE)
    assert positions.dtype == torch.long and intensities.dtype == torch.float32 and mask.dtype == torch.bool
    assert positions.shape == intensities.shape == mask.shape == (2, RULE["max_tokens"])
    assert mask.sum(dim=1).tolist() == [4, 1]
    assert positions[0, :4].tolist() == centres and positions[1, 0].item() == 500
    torch.testing.assert_close(intensities[0, :4], torch.tensor(heights), atol=1e-6, rtol=1e-5)
    assert intensities[1, 0].item() == pytest.approx(1.0)  # y' = (y − min y) / max y
    assert not mask[0, 4:].any() and not mask[1, 1:].any()
    assert (positions[~mask] == 0).all() and (intensities[~mask] == 0).all()


def test_normalisation_is_min_shift_over_max() -> None:
    """y' = (y − min y) / max y: an offset background of 1 under a unit peak gives y' = 1/2 at the peak."""
    y = torch.tensor(gaussians(500, [250], [1.0], offset=1.0))[None].float()
    _, intensities, mask = pick_peak_tokens(y, RULE)
    assert mask[0].sum() == 1 and intensities[0, 0].item() == pytest.approx(0.5, rel=1e-5)


def test_height_and_prominence_thresholds_drop_small_peaks() -> None:
    # heights on a zero base (prominence = height): 0.005 fails height 0.01, 0.015 fails prominence 0.02
    y = torch.tensor(gaussians(800, [100, 300, 500, 700], [1.0, 0.005, 0.015, 0.03]))[None].float()
    positions, _, mask = pick_peak_tokens(y, RULE)
    assert positions[0, mask[0]].tolist() == [100, 700]
    # a ripple reaching y' ≈ 0.016 (above the height) but only 0.016 deep (below the prominence) is not a peak
    ripple = gaussians(600, [100], [1.0]) + 0.008 * (1 + np.sin(np.arange(600) / 4.0))
    positions, _, mask = pick_peak_tokens(torch.tensor(ripple)[None].float(), RULE)
    assert positions[0, mask[0]].tolist() == [100]
    positions, _, mask = pick_peak_tokens(torch.tensor(ripple)[None].float(), {**RULE, "prominence": 0.005})
    assert mask[0].sum() == RULE["max_tokens"]  # with a looser rule the ripples do count


def test_only_the_strongest_are_kept_sorted_by_position() -> None:
    rng = np.random.default_rng(0)
    centres = list(range(50, 1950, 100))  # 19 peaks
    heights = rng.uniform(0.1, 1.0, len(centres)).tolist()
    y = torch.tensor(gaussians(2000, centres, heights))[None].float()
    positions, intensities, mask = pick_peak_tokens(y, RULE)
    assert mask.all()
    strongest = sorted(np.argsort(heights)[::-1][: RULE["max_tokens"]])
    assert positions[0].tolist() == [centres[i] for i in strongest]
    assert (positions[0].diff() > 0).all()
    torch.testing.assert_close(
        intensities[0], torch.tensor([heights[i] for i in strongest]).float() / max(heights)
    )
    dropped: list[int] = []
    pick_peak_tokens(torch.cat([y, torch.zeros_like(y)]), RULE, dropped=dropped)
    assert dropped == [19 - RULE["max_tokens"], 0]  # the cap's losses are counted, per pattern
    assert add_peak_tokens({"pattern": y}, RULE)["peak_dropped"].tolist() == [19 - RULE["max_tokens"]]


def test_flat_and_empty_patterns_give_no_tokens() -> None:
    _, _, mask = pick_peak_tokens(torch.zeros(3, 100), RULE)
    assert not mask.any()


def test_positions_stay_inside_the_position_table() -> None:
    view = load_view("xtalnet")
    assert view.peak_tokens is not None and view.n_points <= view.peak_tokens["position_table"]
    y = torch.tensor(gaussians(view.n_points, [5, view.n_points - 5], [1.0, 0.7]))[None].float()
    positions, _, mask = pick_peak_tokens(y, view.peak_tokens)
    assert positions[mask].max() < view.peak_tokens["position_table"]
    assert positions[0, mask[0]].tolist() == [5, view.n_points - 5]
    with pytest.raises(ConfigError, match="position table only 100"):
        pick_peak_tokens(torch.zeros(1, 101), {**RULE, "position_table": 100})


def test_bad_rules_and_inputs_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match=r"missing fields \['max_tokens'\]"):
        check_rule({"height": 0.01, "prominence": 0.02, "position_table": 10})
    with pytest.raises(ConfigError, match="no peak-picking rule"):
        check_rule(None)
    with pytest.raises(ConfigError, match="max_tokens >= 1"):
        check_rule({**RULE, "max_tokens": 0})
    with pytest.raises(PatternError, match=r"\(B, N\)"):
        pick_peak_tokens(torch.zeros(10), RULE)
    with pytest.raises(PatternError, match="NaN"):
        pick_peak_tokens(torch.full((1, 10), float("nan")), RULE)


def test_add_peak_tokens_extends_a_batch() -> None:
    batch = {
        "pattern": torch.tensor(gaussians(300, [150], [1.0]))[None].float(),
        "space_group": torch.tensor([4]),
    }
    out = add_peak_tokens(batch, RULE)
    assert out["peak_positions"][0, 0].item() == 150 and out["peak_mask"].sum() == 1
    assert out["space_group"] is batch["space_group"] and "peak_positions" not in batch


def test_a_view_without_a_peak_rule_refuses_tokens() -> None:
    from pxrdbench.errors import ConfigError
    from pxrdbench.views.peak_tokens import add_view_tokens
    from pxrdbench.views.spec import load_view

    with pytest.raises(ConfigError, match="no peak-token rule"):
        add_view_tokens(load_view("alphadiffract"), {"pattern": torch.zeros(1, 8192)})
