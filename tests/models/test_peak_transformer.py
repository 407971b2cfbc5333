"""PeakTransformer (XtalNet CPCP's pattern encoder): shapes, padding and order invariance, errors, init, grads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.xrd.peak_transformer import PeakTransformer
from pxrdbench.views.peak_tokens import pick_peak_tokens

TABLE = 64
TINY = {"position_table": TABLE, "width": 16, "num_layers": 2, "num_heads": 4, "feedforward": 32}


def tiny(seed: int = 0) -> PeakTransformer:
    torch.manual_seed(seed)
    return PeakTransformer(**TINY)


def random_tokens(b: int = 3, t: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random tokens; row i has t - i real peaks followed by zero padding (as the tokenizer pads)."""
    g = torch.Generator().manual_seed(seed)
    positions = torch.randint(0, TABLE, (b, t), generator=g)
    intensities = torch.rand(b, t, generator=g)
    mask = torch.arange(t).expand(b, t) < (t - torch.arange(b)).clamp(min=0).unsqueeze(1)
    return positions * mask, intensities * mask, mask


def test_output_shape_finite_and_deterministic_in_eval() -> None:
    model = tiny().eval()
    assert model.output_dim == 16
    assert PeakTransformer.input_kind == "peak_tokens"
    tokens = random_tokens()
    with torch.no_grad():
        first, second = model(*tokens), model(*tokens)
    assert first.shape == (3, 16)
    assert torch.isfinite(first).all()
    assert torch.equal(first, second)


def test_padding_is_ignored() -> None:
    model = tiny().eval()
    positions, intensities, mask = random_tokens()  # rows 1 and 2 have padding inside the batch's columns
    g = torch.Generator().manual_seed(5)
    extra = 7
    more_positions = torch.cat([positions, torch.randint(0, TABLE, (3, extra), generator=g)], dim=1)
    more_intensities = torch.cat([intensities, 10 * torch.randn(3, extra, generator=g)], dim=1)
    more_mask = torch.cat([mask, torch.zeros(3, extra, dtype=torch.bool)], dim=1)
    pad = ~more_mask
    more_positions[pad] = torch.randint(0, TABLE, (int(pad.sum()),), generator=g)
    more_intensities[pad] = 10 * torch.randn(int(pad.sum()), generator=g)
    with torch.no_grad():
        base = model(positions, intensities, mask)
        padded = model(more_positions, more_intensities, more_mask)
        more_mask[0, -1] = True  # a real token in an extra column: rows 1 and 2 now keep the padded columns
        mixed = model(more_positions, more_intensities, more_mask)
    torch.testing.assert_close(padded, base, atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed[1:], base[1:], atol=1e-6, rtol=0)
    assert not torch.allclose(mixed[0], base[0], atol=1e-4)


def test_permuting_real_tokens_keeps_the_output() -> None:
    model = tiny().eval()
    positions, intensities, mask = random_tokens(b=1, t=9)
    order = torch.randperm(9, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        base = model(positions, intensities, mask)
        shuffled = model(positions[:, order], intensities[:, order], mask[:, order])
    torch.testing.assert_close(shuffled, base, atol=1e-6, rtol=0)


def test_pattern_without_peaks_is_finite() -> None:
    model = tiny().eval()
    positions, intensities, mask = random_tokens(b=2, t=4)
    mask[1] = False
    positions[1], intensities[1] = 0, 0.0
    with torch.no_grad():
        out = model(positions, intensities, mask)
        alone = model(positions[1:, :0], intensities[1:, :0], mask[1:, :0])  # T = 0: CLS only
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[1:], alone, atol=1e-6, rtol=0)


def test_position_outside_the_table_raises_and_is_not_clipped() -> None:
    model = tiny()
    positions, intensities, mask = random_tokens()
    positions[0, 0] = TABLE
    with pytest.raises(InputError, match=rf"grid index {TABLE} .*size {TABLE}"):
        model(positions, intensities, mask)
    positions[0, 0] = -1
    with pytest.raises(InputError, match="-1"):
        model(positions, intensities, mask)


def test_bad_token_tensors_raise() -> None:
    model = tiny()
    positions, intensities, mask = random_tokens()
    with pytest.raises(InputError, match="same"):
        model(positions, intensities[:, :-1], mask)
    with pytest.raises(InputError, match="same"):
        model(positions, intensities, mask[:2])
    with pytest.raises(InputError, match=r"\(B, T\)"):
        model(positions[0], intensities[0], mask[0])
    with pytest.raises(InputError, match="integer"):
        model(positions.float(), intensities, mask)
    with pytest.raises(InputError, match="boolean"):
        model(positions, intensities, mask.long())
    intensities[0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        model(positions, intensities, mask)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        PeakTransformer(**{**TINY, "num_heads": 5})
    with pytest.raises(ConfigError, match="dropout"):
        PeakTransformer(**{**TINY, "dropout": 1.0})
    with pytest.raises(ConfigError, match="num_layers"):
        PeakTransformer(**{**TINY, "num_layers": 0})


def test_initialisation_of_the_default_encoder() -> None:
    torch.manual_seed(0)
    model = PeakTransformer(num_layers=1)  # the default width 512; one layer keeps the test fast
    assert model.output_dim == 512
    big = model.layers[0].feedforward_in.weight  # 2048 x 512
    assert abs(big.std().item() - 0.02) < 0.002
    assert abs(model.position_embedding.weight.std().item() - 0.02) < 0.002
    for module in model.modules():
        if isinstance(module, nn.Linear):
            assert torch.count_nonzero(module.bias) == 0
        if isinstance(module, nn.LayerNorm):
            assert torch.all(module.weight == 1) and torch.count_nonzero(module.bias) == 0


def test_gradients_reach_every_parameter() -> None:
    model = tiny().train()
    out = model(*random_tokens(b=4, t=8))
    (out**2).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_end_to_end_with_the_tokenizer() -> None:
    grid = torch.arange(TABLE, dtype=torch.float32)
    centres = [(10.0, 25.0, 40.0), (5.0, 33.0, 50.0, 58.0)]
    patterns = torch.stack(
        [
            sum(torch.exp(-0.5 * ((grid - c) / 1.5) ** 2) * (1 + i) for i, c in enumerate(row))
            for row in centres
        ]
    )
    rule = {"height": 0.01, "prominence": 0.02, "max_tokens": 8, "position_table": TABLE}
    positions, intensities, mask = pick_peak_tokens(patterns, rule)
    assert mask.sum(1).tolist() == [3, 4]
    model = tiny().eval()
    with torch.no_grad():
        out = model(positions, intensities, mask)
    assert out.shape == (2, 16)
    assert torch.isfinite(out).all()


def test_layer_matches_torch_pre_ln_encoder_layer_in_eval() -> None:
    """Our pre-LN layer computes what nn.TransformerEncoderLayer(norm_first=True, gelu) does (dropout off)."""
    layer = tiny().layers[0].eval()
    reference = nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, activation="gelu", batch_first=True)
    reference.norm_first = True
    reference.eval()
    with torch.no_grad():
        reference.norm1.load_state_dict(layer.attention_norm.state_dict())
        reference.norm2.load_state_dict(layer.feedforward_norm.state_dict())
        reference.self_attn.in_proj_weight.copy_(layer.qkv.weight)
        reference.self_attn.in_proj_bias.copy_(layer.qkv.bias)
        reference.self_attn.out_proj.load_state_dict(layer.attention_out.state_dict())
        reference.linear1.load_state_dict(layer.feedforward_in.state_dict())
        reference.linear2.load_state_dict(layer.feedforward_out.state_dict())
        x = torch.randn(2, 5, 16)
        keep = torch.tensor([[True] * 5, [True, True, True, False, False]])
        ours = layer(x, keep.view(2, 1, 1, 5))
        theirs = reference(x, src_key_padding_mask=~keep)
    torch.testing.assert_close(ours[keep], theirs[keep], atol=1e-5, rtol=1e-5)


def test_cls_only_queries_match_the_full_layer() -> None:
    layer = tiny().layers[1].eval()
    x = torch.randn(3, 6, 16)
    keep = torch.ones(3, 6, dtype=torch.bool)
    keep[1, 4:] = False
    with torch.no_grad():
        full = layer(x, keep.view(3, 1, 1, 6))
        first = layer(x, keep.view(3, 1, 1, 6), queries=1)
    assert first.shape == (3, 1, 16)
    torch.testing.assert_close(first, full[:, :1], atol=1e-6, rtol=1e-6)
