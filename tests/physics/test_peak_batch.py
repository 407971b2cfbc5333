"""Tests for padded peak batches: padding, Bragg positions, LP, doublets, texture cosines."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pxrdbench.errors import InputError, WavelengthError
from pxrdbench.physics.peak_batch import (
    D_PADDING,
    PeakBatch,
    batch_peaks,
    hkl_axis_cosines,
    lorentz_polarisation_factor,
    pad_reflections,
)
from pxrdbench.physics.wavelength import NAMED_SOURCES, d_to_two_theta, parse_wavelength


def test_pad_reflections_pads_with_inf_and_zero() -> None:
    d, f = pad_reflections(
        [np.array([3.0, 2.0, 1.5]), np.array([2.5])], [np.array([1.0, 2.0, 3.0]), np.array([4.0])]
    )
    assert d.shape == f.shape == (2, 3)
    assert d[1, 1] == D_PADDING and f[1, 1] == 0 and float(f[1, 0]) == 4.0
    with pytest.raises(InputError, match=r"reflections\[0\]"):
        pad_reflections([np.array([1.0, -1.0])], [np.array([1.0, 1.0])])
    with pytest.raises(InputError, match="2 d-spacings but 1"):
        pad_reflections([np.array([1.0, 2.0])], [np.array([1.0])])


def test_positions_and_lorentz_polarisation_match_numpy() -> None:
    d_np = np.array([4.0, 2.5, 1.2, 0.5])  # the last one is unreachable with Cu Kα
    d, f = pad_reflections([d_np], [np.array([10.0, 20.0, 30.0, 40.0])])
    peaks = batch_peaks(d, f, parse_wavelength("CuKa1"), (5.0, 120.0), dtype=torch.float64)
    expected = d_to_two_theta(d_np[:3], 1.54056)
    assert np.allclose(peaks.two_theta[0, :3].numpy(), expected, atol=1e-9)
    theta = np.radians(expected) / 2
    lp = (1 + np.cos(2 * theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))
    assert np.allclose(peaks.intensity[0, :3].numpy(), [10.0, 20.0, 30.0] * lp, rtol=1e-12)
    assert float(peaks.intensity[0, 3]) == 0.0  # λ/2d > 1
    no_lp = batch_peaks(d, f, parse_wavelength("CuKa1"), (5.0, 120.0), lorentz_polarisation=False)
    assert torch.allclose(no_lp.intensity[0, :3], torch.tensor([10.0, 20.0, 30.0]))
    lp_t = lorentz_polarisation_factor(torch.tensor([math.radians(20.0)], dtype=torch.float64))
    assert float(lp_t) == pytest.approx(
        (1 + math.cos(math.radians(40)) ** 2) / (math.sin(math.radians(20)) ** 2 * math.cos(math.radians(20)))
    )


def test_range_cut_and_padding_are_zero() -> None:
    d, f = pad_reflections([np.array([4.0, 1.0]), np.array([2.0])], [np.array([1.0, 1.0]), np.array([1.0])])
    peaks = batch_peaks(d, f, parse_wavelength(1.5406), (10.0, 60.0))
    assert peaks.mask.tolist() == [[True, False], [True, False]]  # 2θ(1 Å) = 100.8° is out of range
    with pytest.raises(WavelengthError):
        batch_peaks(d, f, parse_wavelength(1.5406), (60.0, 10.0))


def test_doublet_doubles_the_slots_with_line_weights() -> None:
    d, f = pad_reflections([np.array([3.0, 2.0])], [np.array([1.0, 1.0])])
    cos = torch.tensor([[0.5, 1.0]])
    cu = NAMED_SOURCES["CuKa"]
    peaks = batch_peaks(d, f, cu, (10.0, 90.0), lorentz_polarisation=False, hkl_cos=cos)
    assert peaks.two_theta.shape == (1, 4) and peaks.hkl_cos.shape == (1, 4)
    assert torch.allclose(peaks.intensity, torch.tensor([[1.0, 1.0, 0.5, 0.5]]))
    assert np.allclose(
        peaks.two_theta[0, 2:].numpy(), d_to_two_theta(np.array([3.0, 2.0]), 1.54439), atol=1e-4
    )
    single = batch_peaks(d, f, cu, (10.0, 90.0), doublet=False)
    assert single.two_theta.shape == (1, 2)
    assert np.allclose(
        single.two_theta[0].numpy(), d_to_two_theta(np.array([3.0, 2.0]), cu.angstrom), atol=1e-4
    )


def test_hkl_axis_cosines_cubic_and_hexagonal() -> None:
    cubic = torch.eye(3, dtype=torch.float64)[None] / 4.0
    hkl = torch.tensor([[[0, 0, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]]], dtype=torch.float64)
    cos = hkl_axis_cosines(hkl, cubic, torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64))
    assert torch.allclose(cos, torch.tensor([[1.0, 0.0, 1 / math.sqrt(3), 0.0]], dtype=torch.float64))
    a, c = 3.0, 5.0  # hexagonal direct lattice rows → reciprocal rows (crystallographic, no 2π)
    direct = torch.tensor([[a, 0, 0], [-a / 2, a * math.sqrt(3) / 2, 0], [0, 0, c]], dtype=torch.float64)
    recip = torch.linalg.inv(direct).T[None]
    hex_hkl = torch.tensor([[[1, 0, 0], [0, 1, 0], [0, 0, 1]]], dtype=torch.float64)
    cos_hex = hkl_axis_cosines(hex_hkl, recip, torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(cos_hex, torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64), atol=1e-12)


def test_peak_batch_helpers() -> None:
    batch = PeakBatch(torch.tensor([[10.0, 20.0], [5.0, 0.0]]), torch.tensor([[2.0, 4.0], [0.0, 0.0]]))
    assert batch.mask.tolist() == [[True, True], [False, False]]
    norm = batch.normalised()
    assert norm.intensity.tolist() == [[0.5, 1.0], [0.0, 0.0]]
    assert batch.to("cpu").two_theta.device.type == "cpu"
    assert batch.batch_size == 2 and batch.n_slots == 2
    with pytest.raises(InputError):
        PeakBatch(torch.zeros(2, 3), torch.zeros(2, 2))
