"""Tests for the batched profile renderer: areas, widths, asymmetry, windows vs a dense reference."""

from __future__ import annotations

import math

import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.profiles import ProfileParams, peak_shapes, render_profiles
from pxrdbench.physics.widths import (
    caglioti_fwhm,
    microstrain_to_strain,
    reference_theta,
    scherrer_fwhm,
    strain_fwhm,
    tch_pseudo_voigt,
)


def unit_cdf(
    u: torch.Tensor, eta: torch.Tensor, rho: torch.Tensor | None, parts: tuple[bool, bool] = (True, True)
) -> torch.Tensor:
    """Test reference (the renderer integrates bins in profile_kernels.py): CDF (up to a constant) of the
    unit-area split pseudo-Voigt at u = (2θ − 2θ_k)/Γ.

    Symmetric part S(u) = η atan(2u)/π + (1 − η) erf(2 sqrt(ln2) u)/2; with asymmetry the side of u
    has width Γ(1 ∓ ρ) and weight (1 ∓ ρ): F(u) = (1 ∓ ρ) S(u/(1 ∓ ρ)). Shapes broadcast. ``parts`` =
    (any Gaussian part, any Lorentzian part) lets pure shapes skip a transcendental.
    """
    side = None if rho is None else torch.sign(u).mul_(rho).add_(1.0)
    scaled = u if side is None else u / side
    out = (
        torch.erf(scaled * (2.0 * math.sqrt(math.log(2.0)))).mul_(0.5 * (1.0 - eta))
        if parts[0]
        else torch.zeros_like(scaled)
    )
    if parts[1]:
        out = torch.addcmul(out, torch.atan(scaled * 2.0), eta / math.pi)
    return out if side is None else out.mul_(side)


def dense_reference(peaks: PeakBatch, grid: torch.Tensor, profile: ProfileParams) -> torch.Tensor:
    """Every peak on every bin (B·P·N memory), float64, no windows: the ground truth for small cases."""
    start, n = float(grid[0]), grid.numel()
    step = (float(grid[-1]) - start) / (n - 1)
    fwhm, eta, rho = peak_shapes(peaks, profile)
    edges = start + step * (torch.arange(n + 1, dtype=torch.float64) - 0.5)
    u = (edges[None, None, :] - peaks.two_theta.double()[:, :, None]) / fwhm[:, :, None]
    cdf = unit_cdf(u, eta[:, :, None], rho[:, :, None])
    return (torch.diff(cdf, dim=2) * peaks.intensity.double()[:, :, None] / step).sum(1)


def single(centre: float = 30.0, intensity: float = 1.0) -> PeakBatch:
    return PeakBatch(torch.tensor([[centre]]), torch.tensor([[intensity]]))


def measured_fwhm(grid: torch.Tensor, y: torch.Tensor, centre: float | None = None) -> tuple[float, float]:
    """(left, right) half widths at half maximum (linear interpolation), from ``centre`` or the maximum."""
    g, v = grid.double(), y.double()
    top = int(v.argmax())
    half = float(v[top]) / 2
    i = top
    while v[i] > half:
        i -= 1
    left = g[i] + (half - v[i]) / (v[i + 1] - v[i]) * (g[i + 1] - g[i])
    j = top
    while v[j] > half:
        j += 1
    right = g[j - 1] + (half - v[j - 1]) / (v[j] - v[j - 1]) * (g[j] - g[j - 1])
    mid = float(g[top]) if centre is None else centre
    return mid - float(left), float(right) - mid


FINE = torch.linspace(20.0, 40.0, 20001)  # step 0.001°


@pytest.mark.parametrize(
    "profile",
    [
        ProfileParams("gaussian", fwhm=0.1),
        ProfileParams("lorentzian", fwhm=0.1),
        ProfileParams(fwhm=0.1, eta=0.4),
        ProfileParams(fwhm=0.05, eta=0.7, asymmetry=0.5),
    ],
)
def test_unit_area_and_fwhm(profile: ProfileParams) -> None:
    """The area on the grid is the peak's mass inside the grid span, I·[F(40.0005) − F(19.9995)].

    Before whole tails were rendered each peak was rescaled to area I inside a ±20 FWHM window, so this test
    asked for 2.5 within 1e-3 and a Lorentzian stood up to 1.6 % high; now the 0.3 % of a Lorentzian's area
    (FWHM 0.1°) that lies beyond ±10° is simply not on the grid.
    """
    y = render_profiles(single(30.0, 2.5), FINE, profile)[0]
    fwhm, eta, rho = peak_shapes(single(30.0, 2.5), profile)
    ends = (torch.tensor([19.9995, 40.0005], dtype=torch.float64) - 30.0) / fwhm[0]
    inside = 2.5 * float(torch.diff(unit_cdf(ends, eta[0], rho[0])))
    assert float(y.double().sum()) * 0.001 == pytest.approx(inside, rel=1e-5)
    left, right = measured_fwhm(FINE, y)
    assert left + right == pytest.approx(float(profile.fwhm), rel=5e-3)


def test_caglioti_width_at_theta() -> None:
    profile = ProfileParams("gaussian", U=0.02, V=-0.01, W=0.005)
    y = render_profiles(single(35.0), FINE, profile)[0]
    theta = math.radians(17.5)
    expected = math.sqrt(0.02 * math.tan(theta) ** 2 - 0.01 * math.tan(theta) + 0.005)
    assert sum(measured_fwhm(FINE, y)) == pytest.approx(expected, rel=5e-3)
    floor = caglioti_fwhm(torch.tensor([0.3]), 0.0, -1.0, 0.0)
    assert float(floor) > 0  # negative argument is clamped at the floor, never NaN


def test_scherrer_and_strain_widths() -> None:
    lam, size, strain = 1.5406, 400.0, microstrain_to_strain(2000.0)
    theta = math.radians(15.0)
    size_width = math.degrees(lam / (size * math.cos(theta)))  # Scherrer, K = 1 (GSAS-II)
    strain_width = math.degrees(strain * math.tan(theta))  # ε·tanθ rad (GSAS-II)
    for params, expected in [
        (ProfileParams("lorentzian", crystallite_size_angstrom=size, wavelength_angstrom=lam), size_width),
        (ProfileParams("lorentzian", strain=strain), strain_width),
    ]:
        y = render_profiles(single(30.0), FINE, params)[0]
        assert sum(measured_fwhm(FINE, y)) == pytest.approx(expected, rel=5e-3)


def test_tch_limits_and_combination() -> None:
    g, lo = torch.tensor([0.1, 0.0, 0.1]), torch.tensor([0.0, 0.1, 0.1])
    total, eta = tch_pseudo_voigt(g, lo)
    assert torch.allclose(total[:2], torch.tensor([0.1, 0.1]), atol=1e-6)
    assert float(eta[0]) == 0.0 and float(eta[1]) == pytest.approx(1.0, abs=1e-4)
    assert 0.1 < float(total[2]) < 0.2 and 0.0 < float(eta[2]) < 1.0
    profile = ProfileParams(W=0.01, strain=1e-3)
    fwhm, mix, _ = peak_shapes(single(30.0), profile)
    y = render_profiles(single(30.0), FINE, profile)[0]
    assert sum(measured_fwhm(FINE, y)) == pytest.approx(float(fwhm), rel=5e-3)
    assert 0 < float(mix) < 1


def test_asymmetry_symmetric_at_zero_and_skewed_right_for_positive_rho() -> None:
    grid = torch.linspace(29.0, 31.0, 2001)
    sym = render_profiles(single(30.0), grid, ProfileParams(fwhm=0.1, eta=0.5))[0]
    assert float((sym - sym.flip(0)).abs().max()) < 1e-4 * float(sym.max())  # tails interpolated
    skew = render_profiles(single(30.0), grid, ProfileParams(fwhm=0.1, eta=0.5, asymmetry=0.4))[0]
    left, right = measured_fwhm(grid, skew, centre=30.0)
    assert right / left == pytest.approx(1.4 / 0.6, rel=1e-2)
    assert abs(float(grid[int(skew.argmax())]) - 30.0) <= 0.001
    assert float(skew[1001:].sum()) > float(skew[:1000].sum())  # more area on the high-angle side


@pytest.mark.parametrize(
    "profile",
    [
        ProfileParams("gaussian", fwhm=0.02),
        ProfileParams(U=0.003, V=-0.001, W=0.002, eta=torch.tensor([0.2, 0.6, 1.0])),
        ProfileParams(W=4e-4, crystallite_size_angstrom=2000.0, strain=5e-3, wavelength_angstrom=0.62),
        ProfileParams(fwhm=0.3, eta=0.5, asymmetry=torch.tensor([-0.3, 0.0, 0.6])),
        ProfileParams(fwhm=0.001, eta=0.5),  # narrower than a grid step
    ],
)
def test_matches_dense_reference(profile: ProfileParams) -> None:
    """No window any more: ≤ 1e-3 of the maximum (was 5e-3 for the windowed shape and 2.5e-2 with the
    per-peak window normalisation, ``conserve_area``, that made Lorentzians stand high)."""
    gen = torch.Generator().manual_seed(3)
    grid = torch.linspace(5.0, 25.0, 2048)
    peaks = PeakBatch(5 + 20 * torch.rand(3, 15, generator=gen), torch.rand(3, 15, generator=gen))
    fast = render_profiles(peaks, grid, profile)
    ref = dense_reference(peaks, grid, profile)
    err = (fast.double() - ref).abs().amax(1) / ref.amax(1)
    assert float(err.max()) < 1e-3


def test_padding_contributes_nothing_and_chunking_is_invisible() -> None:
    grid = torch.linspace(10.0, 50.0, 4000)
    base = PeakBatch(torch.tensor([[20.0, 33.3]]), torch.tensor([[1.0, 0.5]]))
    padded = PeakBatch(torch.tensor([[20.0, 0.0, 33.3, 45.0]]), torch.tensor([[1.0, 0.0, 0.5, 0.0]]))
    profile = ProfileParams(fwhm=0.2, eta=0.3)
    y = render_profiles(base, grid, profile)
    assert torch.equal(y, render_profiles(padded, grid, profile))
    small = render_profiles(base, grid, profile, max_chunk_elements=64)
    assert torch.allclose(y, small, rtol=1e-5, atol=1e-7)


def test_batch_equals_per_pattern_and_is_deterministic() -> None:
    gen = torch.Generator().manual_seed(0)
    grid = torch.linspace(10.0, 60.0, 3000)
    peaks = PeakBatch(10 + 50 * torch.rand(3, 12, generator=gen), torch.rand(3, 12, generator=gen))
    fwhm, eta, rho = (
        torch.tensor([0.05, 0.1, 0.2]),
        torch.tensor([0.0, 0.5, 1.0]),
        torch.tensor([0.0, 0.2, -0.3]),
    )
    batch = render_profiles(peaks, grid, ProfileParams(fwhm=fwhm, eta=eta, asymmetry=rho))
    assert batch.dtype == torch.float32 and batch.shape == (3, 3000)
    assert torch.equal(batch, render_profiles(peaks, grid, ProfileParams(fwhm=fwhm, eta=eta, asymmetry=rho)))
    for i in range(3):
        row = PeakBatch(peaks.two_theta[i : i + 1], peaks.intensity[i : i + 1])
        params = ProfileParams(fwhm=float(fwhm[i]), eta=float(eta[i]), asymmetry=float(rho[i]))
        assert torch.allclose(batch[i], render_profiles(row, grid, params)[0], rtol=1e-5, atol=1e-6)


def test_invalid_inputs_raise() -> None:
    with pytest.raises(PatternError, match="uniform"):
        render_profiles(single(), torch.tensor([1.0, 2.0, 4.0]), ProfileParams("gaussian", fwhm=0.1))
    with pytest.raises(ConfigError):
        render_profiles(single(), FINE, ProfileParams("gaussian", fwhm=0.1, strain=1e-3))
    with pytest.raises(ConfigError):
        ProfileParams(fwhm=0.1, eta=0.5, asymmetry=1.0)
    with pytest.raises(ConfigError):
        ProfileParams(crystallite_size_angstrom=100.0)
    with pytest.raises(ConfigError):
        ProfileParams("voigt")
    with pytest.raises(ConfigError):
        render_profiles(single(), FINE, ProfileParams(fwhm=0.1))  # pseudo-Voigt without eta


# GSAS-II's conventions (GetSampleSigGam, constant wavelength), written out by hand in centidegrees:
# size FWHM = 1.8·λ/(π·size·cosθ) cdeg (size in µm, λ in Å); microstrain FWHM = 0.018·µstrain·tanθ/π cdeg.
LAMBDA_20KEV = 0.6199


def gsas_size_fwhm_deg(two_theta: float, size_um: float, lam: float = LAMBDA_20KEV) -> float:
    return 1.8 * lam / (math.pi * size_um * math.cos(math.radians(two_theta / 2))) / 100.0


def gsas_strain_fwhm_deg(two_theta: float, microstrain: float) -> float:
    return 0.018 * microstrain * math.tan(math.radians(two_theta / 2)) / math.pi / 100.0


@pytest.mark.parametrize("two_theta", [5.0, 12.5, 20.0])
@pytest.mark.parametrize("size_um", [0.1, 1.0])
def test_scherrer_width_matches_gsas2_centidegree_formula(two_theta: float, size_um: float) -> None:
    theta = torch.tensor([math.radians(two_theta / 2)], dtype=torch.float64)
    got = float(scherrer_fwhm(theta, size_um * 1e4, LAMBDA_20KEV))  # 1 µm = 10,000 Å
    assert got == pytest.approx(gsas_size_fwhm_deg(two_theta, size_um), rel=1e-6)


@pytest.mark.parametrize("two_theta", [5.0, 12.5, 20.0])
@pytest.mark.parametrize("microstrain", [500.0, 10_000.0])
def test_strain_width_matches_gsas2_centidegree_formula(two_theta: float, microstrain: float) -> None:
    theta = torch.tensor([math.radians(two_theta / 2)], dtype=torch.float64)
    got = float(strain_fwhm(theta, microstrain_to_strain(microstrain)))
    assert got == pytest.approx(gsas_strain_fwhm_deg(two_theta, microstrain), rel=1e-6)


@pytest.mark.parametrize(("size_um", "microstrain"), [(0.1, 500.0), (1.0, 10_000.0), (0.1, 10_000.0)])
def test_size_plus_strain_peak_width_matches_gsas2_by_hand(size_um: float, microstrain: float) -> None:
    """Lorentzian size + strain widths add (both fully Lorentzian, GSAS-II's mx = 1); no Gaussian → Γ = Γ_L."""
    angles = [5.0, 12.5, 20.0]
    peaks = PeakBatch(torch.tensor([angles], dtype=torch.float64), torch.ones(1, 3, dtype=torch.float64))
    profile = ProfileParams(
        crystallite_size_angstrom=size_um * 1e4,
        strain=microstrain_to_strain(microstrain),
        wavelength_angstrom=LAMBDA_20KEV,
    )
    fwhm, eta, _ = peak_shapes(peaks, profile)
    expected = [gsas_size_fwhm_deg(t, size_um) + gsas_strain_fwhm_deg(t, microstrain) for t in angles]
    assert fwhm[0].tolist() == pytest.approx(expected, rel=1e-6)
    assert eta[0].tolist() == pytest.approx([1.0] * 3, abs=1e-4)  # TCH of a pure Lorentzian
    lorentz = ProfileParams(
        "lorentzian",
        crystallite_size_angstrom=size_um * 1e4,
        strain=microstrain_to_strain(microstrain),
        wavelength_angstrom=LAMBDA_20KEV,
    )
    assert peak_shapes(peaks, lorentz)[0][0].tolist() == pytest.approx(expected, rel=1e-6)


def test_reference_wavelength_converts_the_instrument_width_through_d() -> None:
    """Cu Kα FWHM 0.5° at a 20 keV peak (2θ = 12.5°), by hand: same d, Γ = Γ_Cu·tanθ/tanθ_Cu."""
    cu, two_theta, gamma_cu = 1.54184, 12.5, 0.5
    d = LAMBDA_20KEV / (2 * math.sin(math.radians(two_theta / 2)))
    theta_cu = math.asin(cu / (2 * d))
    expected = gamma_cu * math.tan(math.radians(two_theta / 2)) / math.tan(theta_cu)
    peaks = PeakBatch(torch.tensor([[two_theta]], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
    profile = ProfileParams("gaussian", fwhm=gamma_cu, wavelength_angstrom=LAMBDA_20KEV)
    fwhm, _, _ = peak_shapes(peaks, profile, reference_wavelength=cu)
    assert float(fwhm) == pytest.approx(expected, rel=1e-9)
    # same relative width in d: Δd/d = (Γ/2)·cotθ (rad) at both wavelengths
    rel_view = math.radians(float(fwhm)) / 2 / math.tan(math.radians(two_theta / 2))
    assert rel_view == pytest.approx(math.radians(gamma_cu) / 2 / math.tan(theta_cu), rel=1e-9)
    # Caglioti widths are read at θ_Cu, then converted
    cag = ProfileParams("gaussian", U=0.01, V=-0.002, W=0.003, wavelength_angstrom=LAMBDA_20KEV)
    t = math.tan(theta_cu)
    by_hand = math.sqrt(0.01 * t**2 - 0.002 * t + 0.003) * math.tan(math.radians(two_theta / 2)) / t
    assert float(peak_shapes(peaks, cag, reference_wavelength=cu)[0]) == pytest.approx(by_hand, rel=1e-9)
    # size/strain widths are the same in d at every wavelength: unchanged by the reference
    mixed = ProfileParams(
        fwhm=gamma_cu, strain=5e-3, crystallite_size_angstrom=2000.0, wavelength_angstrom=0.6199
    )
    g_view = peak_shapes(peaks, ProfileParams("gaussian", fwhm=expected, wavelength_angstrom=0.6199))[0]
    lor = scherrer_fwhm(
        torch.tensor(math.radians(two_theta / 2), dtype=torch.float64), 2000.0, 0.6199
    ) + strain_fwhm(torch.tensor(math.radians(two_theta / 2), dtype=torch.float64), 5e-3)
    want = tch_pseudo_voigt(g_view, lor)[0]
    assert float(peak_shapes(peaks, mixed, reference_wavelength=cu)[0]) == pytest.approx(
        float(want), rel=1e-9
    )


def test_reference_wavelength_identity_unobservable_peaks_and_padding() -> None:
    two_theta = torch.tensor([[0.0, 20.0, 60.0, 150.0]], dtype=torch.float64)
    peaks = PeakBatch(two_theta, torch.tensor([[0.0, 1.0, 1.0, 1.0]], dtype=torch.float64))
    plain = ProfileParams("gaussian", fwhm=0.2, wavelength_angstrom=1.54184)
    same = peak_shapes(peaks, plain, reference_wavelength=1.54184)[0]
    assert torch.equal(same, peak_shapes(peaks, plain)[0])  # λ = λ_ref: identity
    # λ = 1.0 Å view, λ_ref = 1.54184 Å: the peak at 150° has d = 0.518 Å < λ_ref/2 = 0.771 Å (not seen at
    # λ_ref): kept at 0.2° unconverted; the padding slot at 2θ = 0 gets the limit factor λ/λ_ref, finite.
    short = ProfileParams("gaussian", fwhm=0.2, wavelength_angstrom=1.0)
    fwhm = peak_shapes(peaks, short, reference_wavelength=1.54184)[0][0]
    assert torch.isfinite(fwhm).all() and float(fwhm[3]) == pytest.approx(0.2, rel=1e-12)
    assert float(fwhm[0]) == pytest.approx(0.2 / 1.54184, rel=1e-12)
    theta_ref, factor = reference_theta(torch.deg2rad(two_theta[0]) / 2, 1.0, 1.54184)
    assert float(theta_ref[3]) == pytest.approx(math.radians(75.0)) and float(factor[3]) == 1.0
    y = render_profiles(peaks, torch.linspace(10.0, 170.0, 16001), short, reference_wavelength=1.54184)
    assert torch.isfinite(y).all() and float(y.sum() * 0.01) == pytest.approx(3.0, rel=1e-3)
    with pytest.raises(ConfigError, match="wavelength_angstrom"):
        peak_shapes(peaks, ProfileParams("gaussian", fwhm=0.2), reference_wavelength=1.54184)
