"""Tests for the Barlow Twins loss and its two cross-correlation normalisations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.barlow_twins import (
    BATCHNORM_EPS,
    BarlowTwinsLoss,
    barlow_twins_loss,
    cross_correlation,
)

Z_A = np.array([[1.0, 2.0, -1.0], [0.5, -1.0, 2.0], [-2.0, 0.0, 1.0], [3.0, 1.5, 0.5]])
Z_B = np.array([[0.8, 2.5, -0.5], [0.0, -1.5, 1.0], [-1.0, 0.5, 2.0], [2.0, 1.0, -1.0]])


def _hand_cross_correlation(a: np.ndarray, b: np.ndarray, normalisation: str) -> np.ndarray:
    """C computed element by element with explicit loops (the definitions in the module docstring)."""
    n, d = a.shape
    if normalisation == "batchnorm":
        std_a, std_b = np.empty_like(a), np.empty_like(b)
        for i in range(d):
            for x, out in ((a, std_a), (b, std_b)):
                mean = sum(x[k, i] for k in range(n)) / n
                var = sum((x[k, i] - mean) ** 2 for k in range(n)) / n
                for k in range(n):
                    out[k, i] = (x[k, i] - mean) / math.sqrt(var + BATCHNORM_EPS)
        return np.array(
            [[sum(std_a[k, i] * std_b[k, j] for k in range(n)) / n for j in range(d)] for i in range(d)]
        )
    return np.array(
        [
            [
                sum(a[k, i] * b[k, j] for k in range(n))
                / (
                    math.sqrt(sum(a[k, i] ** 2 for k in range(n)))
                    * math.sqrt(sum(b[k, j] ** 2 for k in range(n)))
                )
                for j in range(d)
            ]
            for i in range(d)
        ]
    )


def _hand_loss(c: np.ndarray, lam: float) -> float:
    """Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij² by loops."""
    d = c.shape[0]
    on = sum((1 - c[i, i]) ** 2 for i in range(d))
    off = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    return on + lam * off


@pytest.mark.parametrize("normalisation", ["batchnorm", "paper"])
def test_matches_hand_computation(normalisation: str):
    z_a, z_b = torch.from_numpy(Z_A), torch.from_numpy(Z_B)
    expected_c = _hand_cross_correlation(Z_A, Z_B, normalisation)
    c = cross_correlation(z_a, z_b, normalisation)
    np.testing.assert_allclose(c.numpy(), expected_c, rtol=1e-12, atol=1e-12)
    for lam in (0.0051, 0.7):
        loss = barlow_twins_loss(z_a, z_b, lam, normalisation)
        assert loss.item() == pytest.approx(_hand_loss(expected_c, lam), rel=1e-12)
    module = BarlowTwinsLoss(0.7, normalisation)
    assert module(z_a, z_b).item() == pytest.approx(_hand_loss(expected_c, 0.7), rel=1e-12)


def test_batchnorm_matches_torch_batchnorm():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(16, 5, dtype=torch.float64), torch.randn(16, 5, dtype=torch.float64)
    bn = torch.nn.BatchNorm1d(5, affine=False, dtype=torch.float64).train()
    expected = bn(z_a).t() @ bn(z_b) / 16
    torch.testing.assert_close(cross_correlation(z_a, z_b), expected)


def test_identical_views_with_orthogonal_features_give_zero_for_paper_normalisation():
    torch.manual_seed(1)
    q, _ = torch.linalg.qr(torch.randn(10, 4, dtype=torch.float64))
    z = q * torch.tensor([3.0, 0.2, 1.0, 7.0], dtype=torch.float64)  # orthogonal, unequal-norm columns
    c = cross_correlation(z, z, "paper")
    torch.testing.assert_close(c, torch.eye(4, dtype=torch.float64))
    assert barlow_twins_loss(z, z, 1.0, "paper").item() < 1e-24


def test_loss_is_symmetric_in_the_views():
    torch.manual_seed(2)
    z_a, z_b = torch.randn(8, 6), torch.randn(8, 6)
    for normalisation in ("batchnorm", "paper"):
        c = cross_correlation(z_a, z_b, normalisation)
        torch.testing.assert_close(cross_correlation(z_b, z_a, normalisation), c.t())
        torch.testing.assert_close(
            barlow_twins_loss(z_a, z_b, 0.3, normalisation), barlow_twins_loss(z_b, z_a, 0.3, normalisation)
        )


def test_none_weight_means_one_over_d():
    torch.manual_seed(3)
    z_a, z_b = torch.randn(8, 6), torch.randn(8, 6)
    for normalisation in ("batchnorm", "paper"):
        torch.testing.assert_close(
            barlow_twins_loss(z_a, z_b, None, normalisation),
            barlow_twins_loss(z_a, z_b, 1 / 6, normalisation),
        )
    torch.testing.assert_close(BarlowTwinsLoss(None)(z_a, z_b), barlow_twins_loss(z_a, z_b, 1 / 6))
    assert "1/D" in repr(BarlowTwinsLoss(None))


def test_batchnorm_diagonal_is_pearson_correlation():
    torch.manual_seed(4)
    z_a = torch.randn(32, 5, dtype=torch.float64)
    z_b = 0.6 * z_a + 0.4 * torch.randn(32, 5, dtype=torch.float64) + 2.0
    diagonal = torch.diagonal(cross_correlation(z_a, z_b))
    pearson = torch.tensor(
        [np.corrcoef(z_a[:, i].numpy(), z_b[:, i].numpy())[0, 1] for i in range(5)], dtype=torch.float64
    )
    torch.testing.assert_close(diagonal, pearson, rtol=0, atol=1e-4)  # eps shrinks it by ~eps/σ²
    var_a, var_b = z_a.var(0, unbiased=False), z_b.var(0, unbiased=False)
    shrink = torch.sqrt(var_a / (var_a + BATCHNORM_EPS) * var_b / (var_b + BATCHNORM_EPS))
    torch.testing.assert_close(diagonal, pearson * shrink, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalisation", ["batchnorm", "paper"])
def test_gradient_is_finite(normalisation: str):
    torch.manual_seed(5)
    z_a = torch.randn(8, 6, requires_grad=True)
    z_b = torch.randn(8, 6, requires_grad=True)
    barlow_twins_loss(z_a, z_b, 0.0051, normalisation).backward()
    for z in (z_a, z_b):
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_constant_feature_stays_finite():
    z_a = torch.randn(6, 3)
    z_a[:, 1] = 0.0
    for normalisation in ("batchnorm", "paper"):
        z = z_a.clone().requires_grad_(True)
        loss = barlow_twins_loss(z, z_a.flip(0), 0.1, normalisation)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError, match="equal shapes"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(InputError, match="N ≥ 2"):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(InputError, match="2-D"):
        barlow_twins_loss(torch.randn(4, 3, 2), torch.randn(4, 3, 2))
    with pytest.raises(InputError, match="2-D"):
        cross_correlation(torch.randn(4), torch.randn(4))


def test_bad_configuration_raises_config_error():
    with pytest.raises(ConfigError, match="paper"):
        BarlowTwinsLoss(normalisation="papr")
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ConfigError, match="off_diagonal_weight"):
            BarlowTwinsLoss(off_diagonal_weight=bad)
        with pytest.raises(ConfigError, match="off_diagonal_weight"):
            barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 3), bad)
    with pytest.raises(ConfigError):
        cross_correlation(torch.randn(4, 3), torch.randn(4, 3), "layernorm")
