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


def _reference_forward(model: ConvNeXt1D, patterns: torch.Tensor) -> torch.Tensor:
    """The same network written with PyTorch's channels-first modules (grouped Conv1d, Conv1d k=1, AvgPool1d)."""
    import torch.nn.functional as F

    x = model.stem(patterns.unsqueeze(1))
    for layer in model.stages:
        if not isinstance(layer, ConvNeXtBlock1D):
            x = layer(x)
            continue
        k = layer.depthwise.kernel_size
        h = F.conv1d(F.pad(x, ((k - 1) // 2, k - 1 - (k - 1) // 2)), layer.depthwise.weight,
                     layer.depthwise.bias, groups=x.shape[1])  # fmt: skip
        h = layer.project(layer.activation(layer.expand(layer.norm(h))))
        x = x + layer.layer_scale * h
    return x.flatten(1)


@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.parametrize("kernels", [(9, 5, 3), (40, 20, 16)])
def test_channels_last_network_equals_the_channels_first_reference(norm: bool, kernels: tuple) -> None:
    """Forward and parameter gradients of the fast path (FFT depthwise for kernels >= 16, matrix-product
    pointwise, folded layer scale) equal the plain module composition with the same state dict."""
    torch.manual_seed(3)
    config = {**TINY, "kernel_sizes": kernels, "layer_scale_init": 0.5, "norm": norm}
    model = ConvNeXt1D(**config).double().eval()
    patterns = torch.rand(3, 512, dtype=torch.float64)
    fast = model(patterns)
    fast.pow(2).sum().backward()
    fast_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    reference = _reference_forward(model, patterns)
    reference.pow(2).sum().backward()
    assert torch.allclose(fast, reference, atol=1e-10)
    for name, p in model.named_parameters():
        assert torch.allclose(fast_grads[name], p.grad, atol=1e-9), name


def test_block_forward_layouts_agree() -> None:
    torch.manual_seed(4)
    block = ConvNeXtBlock1D(channels=4, kernel_size=20, layer_scale_init=0.3).double().eval()
    x = torch.rand(2, 4, 100, dtype=torch.float64)
    channels_last = block.forward_channels_last(x.transpose(1, 2)).transpose(1, 2)
    assert torch.allclose(block(x), channels_last, atol=1e-12)
