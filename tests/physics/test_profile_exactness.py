"""render_profiles against a dense, untruncated float64 evaluation: every peak at every grid point, no window.

The reference is written out here (not :func:`unit_cdf`): bin integrals y_i = Σ_k I_k [F_k(b_i) − F_k(a_i)] / Δ
over bins [x_i − Δ/2, x_i + Δ/2), with the split pseudo-Voigt CDF F(u) = s·[η atan(2u/s)/π +
(1 − η) erf(2 sqrt(ln2) u/s)/2], u = (2θ − 2θ_k)/Γ, s = 1 + ρ·sign(u).
"""

from __future__ import annotations

import math

import pytest
import torch

from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.profile_kernels import upsample
from pxrdbench.physics.profiles import ProfileParams, peak_shapes, render_profiles

TOLERANCE = 1e-3
"""Maximum |y − y_ref| as a fraction of max(y_ref), per pattern (the renderer's contract)."""


def split_pv_cdf(u: torch.Tensor, eta: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """CDF of the unit-area split pseudo-Voigt at u = (2θ − 2θ_k)/Γ (float64, up to a constant)."""
    side = 1.0 + rho * torch.sign(u)
    w = u / side
    gauss = torch.erf(2.0 * math.sqrt(math.log(2.0)) * w) / 2.0
    return side * (eta * torch.atan(2.0 * w) / math.pi + (1.0 - eta) * gauss)


def dense(peaks: PeakBatch, grid: torch.Tensor, profile: ProfileParams) -> torch.Tensor:
    """Σ over all peaks × all bins, float64 (B, N)."""
    fwhm, eta, rho = peak_shapes(peaks, profile)
    g = grid.double()
    step = float(g[-1] - g[0]) / (g.numel() - 1)
    edges = float(g[0]) + step * (torch.arange(g.numel() + 1, dtype=torch.float64) - 0.5)
    u = (edges - peaks.two_theta.double()[:, :, None]) / fwhm[:, :, None]
    cdf = split_pv_cdf(u, eta[:, :, None], rho.expand_as(fwhm)[:, :, None])
    return (torch.diff(cdf, dim=2) * peaks.intensity.double()[:, :, None]).sum(1) / step


def random_peaks(lo: float, hi: float, n: int, seed: int, extra: list[float]) -> PeakBatch:
    """3 patterns: n peaks uniform in (lo, hi) (beyond the grid on both sides) plus ``extra`` positions."""
    gen = torch.Generator().manual_seed(seed)
    pos = lo + (hi - lo) * torch.rand(3, n, generator=gen, dtype=torch.float64)
    pos = torch.cat([pos, torch.tensor(extra, dtype=torch.float64).expand(3, -1)], dim=1)
    return PeakBatch(pos, 0.05 + torch.rand(pos.shape, generator=gen, dtype=torch.float64))


GRID = torch.linspace(10.0, 30.0, 2001)  # step 0.01°
EDGES = [10.0, 9.995, 30.0, 30.004, 10.02, 29.97, 4.0, 45.0]  # at, just beyond, near and far beyond both ends
CASES = {
    "gaussian": ProfileParams("gaussian", fwhm=0.05),
    "lorentzian": ProfileParams("lorentzian", fwhm=0.05),
    "pseudo_voigt": ProfileParams(fwhm=0.08, eta=torch.tensor([0.15, 0.5, 0.85])),
    "tch_size_strain": ProfileParams(
        W=4e-4,
        crystallite_size_angstrom=torch.tensor([800.0, 2000.0, 6000.0]),
        strain=torch.tensor([1e-3, 5e-3, 1e-2]),
        wavelength_angstrom=0.62,
    ),
    "lorentzian_size_strain": ProfileParams(
        crystallite_size_angstrom=500.0, strain=2e-3, wavelength_angstrom=1.54
    ),
    "caglioti_pv": ProfileParams(U=0.01, V=-0.005, W=0.003, eta=0.4),
    "asymmetric": ProfileParams(fwhm=0.1, eta=0.6, asymmetry=torch.tensor([-0.5, 0.3, 0.8])),
    "asymmetric_gaussian": ProfileParams("gaussian", fwhm=0.2, asymmetry=-0.6),
    "asymmetric_lorentzian": ProfileParams("lorentzian", fwhm=0.6, asymmetry=0.4),
    "narrow_sub_step": ProfileParams(fwhm=0.002, eta=0.5),
    "narrow_lorentzian": ProfileParams("lorentzian", fwhm=0.0003),
    "broad": ProfileParams(fwhm=1.5, eta=torch.tensor([0.3, 0.7, 1.0])),
    "wider_than_grid": ProfileParams(fwhm=25.0, eta=0.7, asymmetry=0.2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_dense_untruncated_reference(name: str) -> None:
    profile = CASES[name]
    peaks = random_peaks(6.0, 34.0, 14, seed=len(name), extra=EDGES)
    ref = dense(peaks, GRID, profile)
    got = render_profiles(peaks, GRID, profile)
    assert got.dtype == torch.float32 and got.shape == ref.shape
    err = (got.double() - ref).abs().amax(1) / ref.amax(1)
    assert float(err.max()) <= TOLERANCE, f"{name}: {err.tolist()}"


@pytest.mark.parametrize(
    ("grid", "profile"),
    [
        (torch.linspace(10.0, 30.0, 101), ProfileParams("lorentzian", fwhm=8.0)),  # cores above the far level
        (torch.linspace(10.0, 30.0, 1537), ProfileParams(fwhm=0.3, eta=0.5, asymmetry=0.3)),  # ragged N
        (torch.linspace(5.0, 5.0 + 0.002 * 40, 41), ProfileParams(fwhm=0.01, eta=0.9)),  # tiny grid
        (torch.linspace(2.0, 120.0, 16384), ProfileParams(U=0.02, V=-0.01, W=0.004, eta=0.6)),  # long grid
    ],
)
def test_other_grids(grid: torch.Tensor, profile: ProfileParams) -> None:
    lo, hi = float(grid[0]), float(grid[-1])
    span = hi - lo
    peaks = random_peaks(lo - 0.2 * span, hi + 0.2 * span, 12, seed=grid.numel(), extra=[lo, hi])
    ref = dense(peaks, grid, profile)
    err = (render_profiles(peaks, grid, profile).double() - ref).abs().amax(1) / ref.amax(1)
    assert float(err.max()) <= TOLERANCE


def test_lorentzian_is_not_raised_and_its_tails_reach_the_whole_grid() -> None:
    """A lone Lorentzian: its top is not lifted by a window normalisation, its far tail is not zero."""
    grid = torch.linspace(10.0, 30.0, 2001)
    peaks = PeakBatch(torch.tensor([[12.0]], dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64))
    profile = ProfileParams("lorentzian", fwhm=0.05)
    got, ref = render_profiles(peaks, grid, profile)[0].double(), dense(peaks, grid, profile)[0]
    assert float(got.max()) == pytest.approx(float(ref.max()), rel=1e-5)
    far = slice(1600, None)  # 4–18° from the peak, ≥ 80 FWHM
    assert torch.allclose(got[far], ref[far], rtol=1e-3, atol=0.0)


@pytest.mark.parametrize("rho", [0.0, 0.4, -0.4])
def test_pattern_made_only_of_far_tails(rho: float) -> None:
    """Peaks 30–10,000 FWHM outside the grid: their tails are the whole pattern, still within 1e-3 (bin
    integrals are formed as atan2(b − a, 1 + ab), not as differences of two values near ±π/2)."""
    grid = torch.linspace(10.0, 20.0, 1001)
    pos = torch.tensor([[7.0, 25.0, 100.0, 1000.0], [-50.0, 22.5, 400.0, 9.0]], dtype=torch.float64)
    peaks = PeakBatch(pos, torch.tensor([[1.0, 0.5, 2.0, 3.0]], dtype=torch.float64).expand(2, -1))
    profile = ProfileParams("lorentzian", fwhm=0.1, asymmetry=rho)
    ref = dense(peaks, grid, profile)
    err = (render_profiles(peaks, grid, profile).double() - ref).abs().amax(1) / ref.amax(1)
    assert float(err.max()) <= TOLERANCE


def test_integrated_intensity_is_exact() -> None:
    """Σ_i y_i Δ = Σ_k I_k [F_k(end) − F_k(start)]: nothing is lost or added inside the grid."""
    grid = torch.linspace(10.0, 10.0 + 0.005 * 4095, 4096)
    peaks = random_peaks(12.0, 28.0, 40, seed=7, extra=[10.0, 30.4])
    for profile in (CASES["tch_size_strain"], CASES["asymmetric"], CASES["broad"], CASES["gaussian"]):
        total = render_profiles(peaks, grid, profile).double().sum(1) * 0.005
        fwhm, eta, rho = peak_shapes(peaks, profile)
        ends = torch.tensor([10.0 - 0.0025, float(grid[-1]) + 0.0025], dtype=torch.float64)
        u = (ends - peaks.two_theta[:, :, None]) / fwhm[:, :, None]
        mass = torch.diff(split_pv_cdf(u, eta[:, :, None], rho.expand_as(fwhm)[:, :, None]), dim=2)[..., 0]
        assert torch.allclose(total, (mass * peaks.intensity).sum(1), rtol=2e-6, atol=0.0)


def test_subdivision_is_exact_for_quartics_and_conserves_mass_per_bin() -> None:
    """U maps bin averages of a quartic on bins of width 2 to its exact averages on the half bins."""
    poly = torch.tensor([0.3, -1.2, 0.7, 0.05, -0.01], dtype=torch.float64)  # c0 + c1 x + … + c4 x⁴

    def average(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        prim = sum(c * (b ** (i + 1) - a ** (i + 1)) / (i + 1) for i, c in enumerate(poly))
        return prim / (b - a)

    left = torch.arange(-6.0, 6.0, 2.0, dtype=torch.float64)
    coarse = average(left, left + 2.0)[None, :]
    fine_left = torch.arange(-2.0, 2.0, 1.0, dtype=torch.float64)  # children of the 2 interior bins
    assert torch.allclose(upsample(coarse)[0], average(fine_left, fine_left + 1.0), atol=1e-12)
    noise = torch.randn(4, 12, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pairs = upsample(noise).view(4, -1, 2).sum(-1)
    assert torch.allclose(pairs, 2.0 * noise[:, 2:-2], atol=1e-12)


def test_window_arguments_are_deprecated_and_ignored() -> None:
    peaks = random_peaks(10.0, 30.0, 5, seed=1, extra=[])
    profile = CASES["pseudo_voigt"]
    plain = render_profiles(peaks, GRID, profile)
    with pytest.warns(DeprecationWarning, match="window_fwhm"):
        assert torch.equal(render_profiles(peaks, GRID, profile, window_fwhm=20.0), plain)
    with pytest.warns(DeprecationWarning, match="conserve_area"):
        assert torch.equal(render_profiles(peaks, GRID, profile, conserve_area=False), plain)
