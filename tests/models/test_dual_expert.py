"""Tests for the DEN-KAN dual-expert XRD encoder (:class:`XCCPEncoder` on a grid's 10° split index)."""

from __future__ import annotations

import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.models.xrd.dual_expert import (
    WIDE_ANGLE_POOL,
    DualExpertEncoder,
    XCCPEncoder,
    split_index_for,
)
from pxrdbench.models.xrd.resnet1d import ResNet1D

TINY = {"widths": (4, 8), "blocks": (1, 1), "kernel_size": 3}


def encoder_for(
    grid_start: float, grid_step: float, n_points: int, wide_angle_only: bool = False
) -> XCCPEncoder:
    """The tiny XCCP encoder for the grid 2θ_i = grid_start + i·grid_step, i < n_points (degrees)."""
    split = split_index_for(grid_start, grid_step, n_points)
    return XCCPEncoder(split, n_points, wide_angle_only=wide_angle_only, **TINY)


def test_split_index_is_the_first_point_at_or_above_ten_degrees():
    # 2θ = 0.1·(i+1): 10° is i = 99 (floating 0.1 + 99·0.1 = 9.999999999999998 still counts)
    assert split_index_for(0.1, 0.1, 800) == 99
    assert split_index_for(0.0, 0.02, 4001) == 500
    assert split_index_for(0.05, 0.1, 800) == 100  # 9.95 < 10 ≤ 10.05
    assert split_index_for(10.0, 0.1, 700) == 0
    assert split_index_for(0.0, 0.1, 50) == 50


def test_dual_mode_runs_both_branches_on_their_own_ranges():
    torch.manual_seed(0)
    enc = encoder_for(0.1, 0.1, 800).eval()
    assert enc.split_index == 99 and enc.output_dim == 16
    x = torch.rand(2, 800)
    out = enc(x)
    assert out.shape == (2, 16)
    assert torch.allclose(out[:, :8], enc.small_angle(x[:, :99]))
    assert torch.allclose(out[:, 8:], enc.wide_angle(x[:, 99:]))
    # changing only the wide-angle part leaves the small-angle features untouched
    y = x.clone()
    y[:, 99:] = torch.rand(2, 701)
    out_y = enc(y)
    assert torch.allclose(out_y[:, :8], out[:, :8])
    assert not torch.allclose(out_y[:, 8:], out[:, 8:])


def test_only_the_wide_angle_branch_pools():
    enc = encoder_for(0.1, 0.1, 800)
    assert enc.small_angle is not None
    pools_sa = [m for m in enc.small_angle.modules() if isinstance(m, torch.nn.MaxPool1d)]
    pools_wa = [m for m in enc.wide_angle.modules() if isinstance(m, torch.nn.MaxPool1d)]
    assert not pools_sa
    assert len(pools_wa) == 2 and all((p.kernel_size, p.stride) == WIDE_ANGLE_POOL for p in pools_wa)


def test_wide_angle_only_mode_ignores_small_angles_and_accepts_a_10_degree_grid():
    torch.manual_seed(0)
    enc = encoder_for(0.1, 0.1, 800, wide_angle_only=True).eval()
    assert enc.small_angle is None and enc.output_dim == 8
    x = torch.rand(2, 800)
    y = x.clone()
    y[:, :99] = 0.0
    assert torch.allclose(enc(x), enc(y))
    wa = encoder_for(10.0, 0.1, 701, wide_angle_only=True)
    assert wa.split_index == 0 and wa(torch.rand(2, 701)).shape == (2, 8)


def test_mask_zeroes_unmeasured_points():
    torch.manual_seed(0)
    enc = encoder_for(0.1, 0.1, 800).eval()
    x = torch.rand(2, 800)
    mask = torch.ones(2, 800, dtype=torch.bool)
    mask[:, :150] = False
    assert torch.allclose(enc(x, mask), enc(x * mask))


def test_gradients_flow_into_both_branches():
    enc = encoder_for(0.1, 0.1, 800)
    enc(torch.rand(3, 800)).pow(2).sum().backward()
    assert enc.small_angle.stem[0].weight.grad.abs().sum() > 0
    assert enc.wide_angle.stem[0].weight.grad.abs().sum() > 0


def test_dual_mode_needs_small_angle_points():
    with pytest.raises(ConfigError, match="wide_angle_only"):
        encoder_for(10.0, 0.1, 701)
    with pytest.raises(ConfigError, match="no wide-angle"):
        encoder_for(0.0, 0.1, 50)
    with pytest.raises(ConfigError):
        DualExpertEncoder(5, None, ResNet1D(widths=(4,), blocks_per_stage=(1,)))


def test_wrong_pattern_length_is_reported():
    enc = encoder_for(0.1, 0.1, 800)
    with pytest.raises(PatternError, match="pattern"):
        enc(torch.rand(2, 700))


def test_xccp_encoder_needs_a_split_index_and_checks_the_length_only_when_given():
    with pytest.raises(ConfigError, match="split_index"):
        XCCPEncoder(None, 800, **TINY)
    free = XCCPEncoder(99, None, **TINY)
    assert free.n_points is None and free(torch.rand(2, 300)).shape == (2, 16)
    with pytest.raises(PatternError, match="pattern"):
        free(torch.rand(2, 99))  # nothing left for the wide-angle branch
