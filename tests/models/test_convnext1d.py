"""ConvNeXt1D: the paper's 560-d feature, the pooling arithmetic, drop path and input checks."""

from __future__ import annotations

import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.models.xrd.convnext1d import ConvNeXt1D, ConvNeXtBlock1D, DropPath, pooled_length

TINY = {"channels": 8, "kernel_sizes": (9, 5, 3), "expansion": 2, "block_pool": 2, "input_length": 512}


def test_full_model_gives_560_features_for_8192_points() -> None:
    torch.manual_seed(0)
    model = ConvNeXt1D().eval()
    assert model.output_length == 7
    assert model.output_dim == 560
    with torch.no_grad():
        features = model(torch.rand(2, 8192) * 100)
    assert features.shape == (2, 560)
    assert torch.isfinite(features).all()


def test_pooling_arithmetic_of_the_paper_model() -> None:
    lengths = [8192]
    for _ in range(3):
        lengths.append(pooled_length(lengths[-1], 5))
        lengths.append(pooled_length(lengths[-1], 3, 2))
    assert lengths == [8192, 1638, 818, 163, 81, 16, 7]


@pytest.mark.parametrize("input_length", [300, 512, 1000])
def test_output_dim_matches_a_real_forward(input_length: int) -> None:
    model = ConvNeXt1D(**{**TINY, "input_length": input_length}).eval()
    with torch.no_grad():
        features = model(torch.rand(3, input_length))
    assert features.shape == (3, model.output_dim)


def test_tiny_twin_feature_size() -> None:
    model = ConvNeXt1D(**TINY)
    assert (model.output_length, model.output_dim) == (7, 56)


def test_eval_is_deterministic_and_train_uses_drop_path() -> None:
    torch.manual_seed(1)
    model = ConvNeXt1D(**TINY, drop_path=0.5, layer_scale_init=1.0)
    x = torch.rand(16, 512)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
        model.train()
        assert not torch.equal(model(x), model(x))


def test_drop_path_keeps_the_expectation() -> None:
    torch.manual_seed(2)
    drop = DropPath(0.3).train()
    out = drop(torch.ones(20000, 4))
    assert torch.unique(out).tolist() == pytest.approx([0.0, 1.0 / 0.7])
    assert torch.equal(out[:, 0:1].expand(-1, 4), out)  # one draw per sample
    assert out.mean().item() == pytest.approx(1.0, abs=0.03)
    assert torch.equal(drop.eval()(torch.ones(5, 4)), torch.ones(5, 4))


@pytest.mark.parametrize("kernel", [100, 25, 4])
def test_block_keeps_length_for_even_and_odd_kernels(kernel: int) -> None:
    block = ConvNeXtBlock1D(channels=4, kernel_size=kernel, norm=True)
    assert block(torch.rand(2, 4, 333)).shape == (2, 4, 333)


def test_norm_option_adds_layernorm_parameters() -> None:
    plain = sum(p.numel() for p in ConvNeXt1D(**TINY).parameters())
    normed = sum(p.numel() for p in ConvNeXt1D(**TINY, norm=True).parameters())
    assert normed - plain == 3 * 2 * TINY["channels"]  # weight + bias per block


def test_wrong_length_and_too_short_inputs_raise() -> None:
    model = ConvNeXt1D(**TINY)
    with pytest.raises(PatternError, match="input_length 512"):
        model(torch.rand(2, 500))
    with pytest.raises(ConfigError, match="too short"):
        ConvNeXt1D(**{**TINY, "input_length": 20})
