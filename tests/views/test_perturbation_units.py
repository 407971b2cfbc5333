"""XCCP perturbation sets are stated at Cu Kα and carried through d to each view's wavelength: hand-computed
width and shift conversions at 20 keV, the identity on a Cu Kα view, unobservable peaks, and equal widths and
shifts in d on the AlphaDiffract (20 keV) and XCCP (Cu Kα) views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pxrdbench.errors import ConfigError
from pxrdbench.physics.peak_batch import PeakBatch, batch_peaks
from pxrdbench.physics.profiles import ProfileParams, peak_shapes
from pxrdbench.views.augment import ZeroShift, shift_through_d
from pxrdbench.views.perturbations import (
    CU_KA_ANGSTROM,
    PERTURBATION_SETS,
    perturbation_pipeline,
    perturbation_units,
)
from pxrdbench.views.pipeline import build_pipeline
from pxrdbench.views.render import render_batch
from pxrdbench.views.spec import load_view

CU = 1.54184
KEV20 = 0.6199


def one_peak(two_theta: float, dtype: torch.dtype = torch.float64) -> PeakBatch:
    return PeakBatch(torch.tensor([[two_theta]], dtype=dtype), torch.ones(1, 1, dtype=dtype))


def test_every_set_states_its_units() -> None:
    assert CU_KA_ANGSTROM == CU
    for name, data in PERTURBATION_SETS.items():
        assert isinstance(data["units"], str) and data["units"] == perturbation_units(name)
    assert perturbation_units("fwhm_0.5") == (
        "2θ at Cu Kα (1.54184 Å), converted through d to each view's wavelength"
    )
    assert perturbation_units("shift_+0.1") == perturbation_units("fwhm_0.1")
    assert (
        perturbation_units("difcon_train") == perturbation_units("difcon_invariance") == "the view's own 2θ"
    )
    with pytest.raises(ConfigError, match="Did you mean"):
        perturbation_units("fwhm_0.4")


def test_width_conversion_by_hand_at_20_kev() -> None:
    """Cu Kα FWHM 0.5° for a peak at 2θ = 12.5° at 0.6199 Å: Γ = 0.5°·tanθ/tanθ_Cu, θ_Cu from the same d."""
    two_theta = 12.5
    d = KEV20 / (2 * math.sin(math.radians(two_theta / 2)))
    theta_cu = math.asin(CU / (2 * d))
    expected = 0.5 * math.tan(math.radians(two_theta / 2)) / math.tan(theta_cu)
    profile = ProfileParams("gaussian", fwhm=0.5, wavelength_angstrom=KEV20)
    fwhm = float(peak_shapes(one_peak(two_theta), profile, reference_wavelength=CU)[0])
    assert fwhm == pytest.approx(expected, rel=1e-9)
    assert fwhm == pytest.approx(0.1947, abs=1e-4)  # 0.5° at Cu Kα is ≈ 0.19° at 20 keV for this peak
    # the named set wires the conversion into its Render step
    render = perturbation_pipeline("fwhm_0.5", KEV20).ops[0]
    assert render.options == {"reference_wavelength": CU} and render.profile.wavelength_angstrom == KEV20


def test_shift_conversion_by_hand_at_20_kev() -> None:
    """δ = 0.5° added to 2θ_Cu of the peak's d, then back to 20 keV: d' = λ_Cu/(2 sin((2θ_Cu+δ)/2))."""
    two_theta, delta = 12.5, 0.5
    d = KEV20 / (2 * math.sin(math.radians(two_theta / 2)))
    two_theta_cu = 2 * math.degrees(math.asin(CU / (2 * d)))
    d_shifted = CU / (2 * math.sin(math.radians((two_theta_cu + delta) / 2)))
    expected = 2 * math.degrees(math.asin(KEV20 / (2 * d_shifted)))
    got = shift_through_d(torch.tensor([[two_theta]], dtype=torch.float64), delta, KEV20, CU)
    assert float(got) == pytest.approx(expected, abs=1e-10)
    assert float(got) - two_theta == pytest.approx(0.1946, abs=1e-4)  # ≈ 0.19° at 20 keV, not 0.5°
    op = ZeroShift((delta, delta), reference_wavelength=CU, wavelength_angstrom=KEV20)
    assert float(op(one_peak(two_theta)).two_theta) == pytest.approx(expected, abs=1e-10)
    shifted = perturbation_pipeline("shift_+0.5", KEV20).ops[0](one_peak(two_theta, torch.float32))
    assert float(shifted.two_theta) == pytest.approx(expected, abs=1e-4)  # float32 peaks
    with pytest.raises(ConfigError, match="wavelength_angstrom"):
        ZeroShift(0.5, reference_wavelength=CU)


def test_peaks_not_observable_at_cu_ka_are_left_unconverted() -> None:
    """λ = 1.0 Å view: the peak at 150° has d = 0.518 Å < λ_Cu/2 = 0.771 Å; it is neither shifted nor
    converted, the others are, and padding at 2θ = 0 stays finite."""
    two_theta = torch.tensor([[0.0, 40.0, 150.0]], dtype=torch.float64)
    peaks = PeakBatch(two_theta, torch.tensor([[0.0, 1.0, 1.0]], dtype=torch.float64))
    moved = ZeroShift(0.5, reference_wavelength=CU, wavelength_angstrom=1.0)(peaks).two_theta[0]
    assert torch.isfinite(moved).all() and float(moved[2]) == 150.0
    assert 40.0 < float(moved[1]) < 40.5
    fwhm = peak_shapes(peaks, ProfileParams("gaussian", fwhm=0.5, wavelength_angstrom=1.0), CU)[0][0]
    assert torch.isfinite(fwhm).all() and float(fwhm[2]) == 0.5 and float(fwhm[1]) < 0.5
    grid = torch.linspace(10.0, 170.0, 8001)
    pattern = perturbation_pipeline("shift_+0.5", 1.0)(peaks, torch.Generator().manual_seed(0), grid)
    assert torch.isfinite(pattern).all() and float(pattern.max()) == pytest.approx(1.0)
    # λ = 2 Å view: a peak at 178° (d = 1.00015 Å) shifted by +0.5° at Cu Kα gets d' = 0.9971 Å < λ/2:
    # it lands at the limit 2θ = 180°, without NaN
    back = shift_through_d(torch.tensor([[178.0]], dtype=torch.float64), 0.5, 2.0, CU)
    assert float(back) == pytest.approx(180.0, abs=1e-9)


def test_cu_ka_view_is_unchanged(cache) -> None:
    """On xccp_dual (λ = 1.54184 Å) the XCCP sets render exactly as before (plain 2θ shift and width)."""
    from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures

    view = load_view("xccp_dual")
    dataset = ReflectionDataset(cache, np.arange(4), view.d_min, view.max_peaks)
    batch = collate_structures([dataset[i] for i in range(4)])
    peaks = batch_peaks(batch["d"], batch["mf2"], view.wavelength, (0.0, 79.98), doublet=view.doublet)
    grid = view.grid.tensor()
    for name, fwhm, shift in [("fwhm_0.5", 0.5, 0.0), ("shift_+0.5", 0.1, 0.5), ("shift_+0.1", 0.1, 0.1)]:
        old = [{"op": "ZeroShift", "range_deg": shift}] if shift else []
        old += [{"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": fwhm}}, {"op": "Normalise"}]
        before = build_pipeline(old)(peaks, torch.Generator().manual_seed(0), grid)
        after = perturbation_pipeline(name, view.wavelength.angstrom)(
            peaks, torch.Generator().manual_seed(0), grid
        )
        assert torch.equal(before, after), name
        rendered = render_batch(view, batch, train=False, seed=0, perturbation=name)["pattern"]
        assert torch.equal(rendered, after), name
    # the general formula (no short cut) is the identity too, to rounding
    two_theta = torch.tensor([[5.0, 30.0, 79.0]], dtype=torch.float64)
    assert torch.allclose(shift_through_d(two_theta, 0.5, CU, CU), two_theta + 0.5, atol=1e-10, rtol=0)


def _width_and_centre(view_name: str, d: float, perturbation: str) -> tuple[float, float]:
    """Δd/d (FWHM) and centre d (Å) of one reflection rendered on a view through a perturbation set."""
    view = load_view(view_name)
    batch = {"d": torch.tensor([[d]], dtype=torch.float64), "mf2": torch.ones(1, 1, dtype=torch.float64)}
    y = render_batch(view, batch, train=False, seed=0, perturbation=perturbation)["pattern"][0].double()
    x = view.grid.tensor().double()
    y = y - y.min()
    top = int(y.argmax())
    half = float(y[top]) / 2
    i = top
    while y[i] > half:
        i -= 1
    left = x[i] + (half - y[i]) / (y[i + 1] - y[i]) * (x[i + 1] - x[i])
    j = top
    while y[j] > half:
        j += 1
    right = x[j - 1] + (half - y[j - 1]) / (y[j] - y[j - 1]) * (x[j] - x[j - 1])
    lam = view.wavelength.angstrom
    centre_tt = float((x * y).sum() / y.sum())
    theta = math.radians(centre_tt / 2)
    width = math.radians(float(right - left)) / 2 / math.tan(theta)  # Δd/d = (Γ/2)·cotθ
    return width, lam / (2 * math.sin(theta))


def test_rendered_widths_and_shifts_in_d_agree_between_20_kev_and_cu_ka_views() -> None:
    d = 3.0  # 2θ = 11.86° at 20 keV (alphadiffract, 5–20°), 29.78° at Cu Kα (xccp_dual, 0–80°)
    for name in ("fwhm_0.2", "fwhm_0.5"):
        w_alpha, _ = _width_and_centre("alphadiffract", d, name)
        w_cu, _ = _width_and_centre("xccp_dual", d, name)
        assert w_alpha == pytest.approx(w_cu, rel=0.01), name
    fwhm_cu = math.radians(0.5) / 2 / math.tan(math.asin(CU / (2 * d)))
    assert w_cu == pytest.approx(fwhm_cu, rel=0.01)  # and both equal the Cu Kα definition
    d_shifted = CU / (2 * math.sin(math.asin(CU / (2 * d)) + math.radians(0.5) / 2))
    _, c_alpha = _width_and_centre("alphadiffract", d, "shift_+0.5")
    _, c_cu = _width_and_centre("xccp_dual", d, "shift_+0.5")
    assert c_alpha == pytest.approx(d_shifted, rel=1e-4) and c_cu == pytest.approx(d_shifted, rel=1e-4)
