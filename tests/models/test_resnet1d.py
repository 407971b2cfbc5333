"""Tests for the 1D ResNet backbone."""

from __future__ import annotations

import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.models.xrd.resnet1d import ResidualBlock1D, ResNet1D


def tiny(**kwargs) -> ResNet1D:
    return ResNet1D(widths=(4, 8), blocks_per_stage=(1, 1), kernel_size=3, stem_kernel=3, **kwargs)


def test_output_shape_and_dim_from_2d_and_3d_input():
    torch.manual_seed(0)
    net = tiny()
    x = torch.randn(3, 50)
    assert net.output_dim == 8
    assert net(x).shape == (3, 8)
    net.eval()
    assert torch.allclose(net(x), net(x.unsqueeze(1)))


def test_feature_length_halves_per_stride_and_pool():
    # stem /2 (100 → 50), stage 1 stride 2 (→ 25); with pooling (3, 2) after each stage: 50 → 25, 25 → 13 → 7
    assert tiny().feature_length(100) == 25
    assert tiny(pool_after_stage=(3, 2)).feature_length(100) == 7


def test_pooling_survives_length_one_inputs():
    net = tiny(pool_after_stage=(3, 2)).eval()
    assert net(torch.randn(2, 1)).shape == (2, 8)


def test_block_projection_only_on_shape_change():
    same = ResidualBlock1D(8, 8, 3, 1, "batch", "relu")
    changed = ResidualBlock1D(4, 8, 3, 2, "batch", "relu")
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert isinstance(changed.shortcut, torch.nn.Sequential)
    assert changed(torch.randn(2, 4, 9)).shape == (2, 8, 5)


def test_block_is_identity_plus_residual_when_convs_are_zero():
    block = ResidualBlock1D(4, 4, 3, 1, "none", "relu")
    for conv in (block.conv1, block.conv2):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    x = torch.randn(2, 4, 10)
    assert torch.allclose(block(x), torch.relu(x))


def test_translation_equivariant_features_give_shift_robust_pooling():
    # a peak moved by a multiple of the total stride gives the same global-average feature (no edge effects)
    torch.manual_seed(1)
    net = tiny(norm="none").eval()
    x = torch.zeros(1, 256)
    x[0, 100] = 1.0
    shifted = torch.roll(x, 4, dims=1)
    assert torch.allclose(net(x), net(shifted), atol=1e-6)


def test_gradients_reach_the_stem():
    net = tiny(norm="group", activation="gelu")
    net(torch.randn(2, 40)).sum().backward()
    assert net.stem[0].weight.grad is not None
    assert net.stem[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"widths": (4, 8), "blocks_per_stage": (1,)},
        {"widths": (), "blocks_per_stage": ()},
        {"kernel_size": 4},
        {"norm": "batchh"},
        {"activation": "tanhh"},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ConfigError):
        ResNet1D(**kwargs)


def test_bad_input_shape_names_the_pattern():
    with pytest.raises(PatternError, match="pattern"):
        tiny()(torch.randn(2, 3, 10))


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_channels_last_layout_equals_the_plain_conv1d_network(norm: str) -> None:
    """The [B, C, 1, L] channels-last path gives the output and gradients of the same modules on [B, C, L]
    (nn.Conv1d, BatchNorm1d with batch statistics in training, MaxPool1d)."""
    torch.manual_seed(5)
    model = ResNet1D(widths=(4, 8), blocks_per_stage=(1, 1), pool_after_stage=(3, 2), norm=norm).double()
    pattern = torch.rand(3, 101, dtype=torch.float64)
    fast = model(pattern)
    fast.pow(2).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    reference = model.stages(model.stem(pattern.unsqueeze(1))).mean(dim=-1)
    reference.pow(2).sum().backward()
    assert torch.allclose(fast, reference, atol=1e-10)
    for name, p in model.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-9), name
