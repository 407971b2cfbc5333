"""Batched peak-profile rendering (torch): PeakBatch + 2θ grid + profile parameters → patterns (B, N).

Widths (FWHM in degrees 2θ: Caglioti, GSAS-II size and strain, the reference-wavelength conversion, the
Thompson–Cox–Hastings pseudo-Voigt) are computed in :mod:`pxrdbench.physics.widths`. Unit-area shapes:
pV = η L + (1 − η) G with G(x) = (2/Γ) sqrt(ln2/π) exp(−4 ln2 x²/Γ²) and L(x) = (2/πΓ) / (1 + 4x²/Γ²).

Asymmetry (split pseudo-Voigt, a project choice): the left half has FWHM Γ(1 − ρ), the right half
Γ(1 + ρ), each scaled so the profile is continuous at its maximum, which stays at 2θ_k; total FWHM Γ
and area 1 are kept. ρ ∈ (−1, 1); ρ > 0 puts the longer tail on the high-angle side, ρ < 0 on the
low-angle side (as axial divergence does).

Rendering is bin-integrated and exact: y_i = Σ_k I_k [F_k(x_i + Δ/2) − F_k(x_i − Δ/2)] / Δ on a uniform grid
of step Δ (F_k the profile's CDF, every peak at every grid point: Lorentzian tails are not cut), computed
to ≤ 1e-3 of the pattern's maximum (typically 1e-5; the construction, in
:mod:`pxrdbench.physics.profile_pyramid`, telescopes exact bin integrals over a multi-resolution pyramid).
For Δ ≪ Γ this equals point sampling to O((Δ/Γ)²); peaks narrower than a step keep their area. Mass:
Σ_i y_i Δ = Σ_k I_k [F_k(x_{N−1} + Δ/2) − F_k(x_0 − Δ/2)] (to float32 rounding when N is a multiple of the
coarsest bin, else to the ~1e-6 interpolation error of the last partial coarse bin), so on an unbounded grid
the total is Σ_k I_k (the Gaussian part beyond ±2.5 Γ, < 4e-9 of it, is dropped). Mass that falls outside
the grid (a Lorentzian keeps ≈ Γ/(π d) beyond ±d) is not folded back: it is not observed, as on a detector.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.profile_pyramid import PyramidRenderer
from pxrdbench.physics.widths import (
    Number,
    caglioti_fwhm,
    reference_theta,
    scherrer_fwhm,
    strain_fwhm,
    tch_pseudo_voigt,
)

PROFILE_SHAPES = ("gaussian", "lorentzian", "pseudo_voigt")


@dataclass
class ProfileParams:
    """Peak-shape parameters; every numeric field is a float (all patterns) or a Tensor[B] (one per pattern).

    Attributes:
        shape: "gaussian", "lorentzian" or "pseudo_voigt".
        fwhm: constant instrument FWHM in degrees (used when U, V, W, P are all None).
        U, V, W, P: Caglioti coefficients in deg² (missing ones count as 0):
            FWHM² = U tan²θ + V tanθ + W + P/cos²θ.
        eta: pseudo-Voigt mixing (0 Gaussian, 1 Lorentzian); only when no size/strain broadening is given.
        crystallite_size_angstrom: Scherrer size L in Å (Lorentzian, K = 1 as GSAS-II).
        strain: microstrain ε (dimensionless, Lorentzian, FWHM ε·tanθ rad as GSAS-II).
        asymmetry: split-profile ρ ∈ (−1, 1); 0 is symmetric.
        wavelength_angstrom: λ in Å of the peaks (the view's), required with ``crystallite_size_angstrom``
            and with a ``reference_wavelength`` (:func:`peak_shapes`).
    """

    shape: str = "pseudo_voigt"
    fwhm: Number | None = None
    U: Number | None = None
    V: Number | None = None
    W: Number | None = None
    P: Number | None = None
    eta: Number | None = None
    crystallite_size_angstrom: Number | None = None
    strain: Number | None = None
    asymmetry: Number = 0.0
    wavelength_angstrom: float | None = None

    def __post_init__(self) -> None:
        if self.shape not in PROFILE_SHAPES:
            raise ConfigError(
                f"ProfileParams.shape: unknown profile {self.shape!r}; use one of {PROFILE_SHAPES}"
            )
        if self.crystallite_size_angstrom is not None and self.wavelength_angstrom is None:
            raise ConfigError("ProfileParams: crystallite_size_angstrom needs wavelength_angstrom (Scherrer)")
        if float(torch.as_tensor(self.asymmetry).abs().max()) >= 1.0:
            raise ConfigError("ProfileParams.asymmetry: ρ must lie in (−1, 1)")


def _per_pattern(value: Number, batch: int, device: torch.device) -> Tensor:
    """A float or Tensor[B] as a float64 Tensor[B, 1] on ``device``."""
    t = torch.as_tensor(value, dtype=torch.float64, device=device)
    return t.reshape(-1, 1).expand(batch, 1) if t.numel() in (1, batch) else t.reshape(batch, 1)


def peak_shapes(
    peaks: PeakBatch, profile: ProfileParams, reference_wavelength: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-peak FWHM Γ (degrees), η and per-pattern ρ as float64 tensors of shape (B, P), (B, P), (B, 1).

    ``reference_wavelength`` (Å): the instrument width (``fwhm`` / Caglioti) is stated in 2θ at that
    wavelength and converted through d to ``profile.wavelength_angstrom`` (the peaks' wavelength), see
    the module docstring; None (default) = stated in the peaks' own 2θ.
    """
    batch, device = peaks.batch_size, peaks.device
    theta = torch.deg2rad(peaks.two_theta.to(torch.float64)) / 2.0
    theta_g, scale_g = theta, None
    if reference_wavelength is not None:
        if profile.wavelength_angstrom is None:
            raise ConfigError("ProfileParams: reference_wavelength needs wavelength_angstrom (the view's λ)")
        if float(reference_wavelength) != float(profile.wavelength_angstrom):
            theta_g, scale_g = reference_theta(
                theta, float(profile.wavelength_angstrom), float(reference_wavelength)
            )

    def arg(value: Number | None) -> Tensor | float:
        return 0.0 if value is None else _per_pattern(value, batch, device)

    gauss: Tensor | None = None
    if any(v is not None for v in (profile.U, profile.V, profile.W, profile.P)):
        gauss = caglioti_fwhm(theta_g, arg(profile.U), arg(profile.V), arg(profile.W), arg(profile.P))
    elif profile.fwhm is not None:
        gauss = _per_pattern(profile.fwhm, batch, device).expand_as(theta)
    if gauss is not None and scale_g is not None:
        gauss = gauss * scale_g
    lor: Tensor | None = None
    if profile.crystallite_size_angstrom is not None:
        lor = scherrer_fwhm(theta, arg(profile.crystallite_size_angstrom), float(profile.wavelength_angstrom))
    if profile.strain is not None:
        strain = strain_fwhm(theta, arg(profile.strain))
        lor = strain if lor is None else lor + strain
    if profile.shape == "gaussian":
        if gauss is None or lor is not None:
            raise ConfigError(
                "ProfileParams(shape='gaussian') needs fwhm or U/V/W and no size/strain broadening"
            )
        fwhm, eta = gauss, torch.zeros_like(gauss)
    elif profile.shape == "lorentzian":
        if gauss is None and lor is None:
            raise ConfigError("ProfileParams(shape='lorentzian') needs fwhm, U/V/W or size/strain broadening")
        fwhm = (0.0 if gauss is None else gauss) + (0.0 if lor is None else lor)
        eta = torch.ones_like(fwhm)
    elif lor is None:
        if gauss is None or profile.eta is None:
            raise ConfigError("ProfileParams(shape='pseudo_voigt') needs a width (fwhm or U/V/W) and eta")
        fwhm, eta = gauss, _per_pattern(profile.eta, batch, device).clamp(0.0, 1.0).expand_as(gauss)
    else:
        if profile.eta is not None:
            raise ConfigError(
                "ProfileParams: eta is derived (Thompson–Cox–Hastings) when size/strain is given"
            )
        fwhm, eta = tch_pseudo_voigt(torch.zeros_like(lor) if gauss is None else gauss, lor)
    if not bool(torch.isfinite(fwhm).all()) or bool((fwhm <= 0).any()):
        raise ConfigError("ProfileParams: widths must be positive and finite (check fwhm, size, strain)")
    return fwhm, eta, _per_pattern(profile.asymmetry, batch, device)


def _uniform_grid(grid: Tensor) -> tuple[float, float]:
    """(start, step) of a uniform, increasing 2θ grid; PatternError otherwise."""
    g = grid.detach().to("cpu", torch.float64).ravel()
    if g.numel() < 2 or not bool(torch.isfinite(g).all()):
        raise PatternError("grid", "needs at least 2 finite 2θ points")
    start, step = float(g[0]), float(g[-1] - g[0]) / (g.numel() - 1)
    if step <= 0:
        raise PatternError("grid", "2θ must be increasing")
    expected = start + step * torch.arange(g.numel(), dtype=torch.float64)
    if float((g - expected).abs().max()) > 1e-2 * step:
        raise PatternError("grid", "the renderer needs a uniform 2θ grid (constant step)")
    return start, step


def render_profiles(
    peaks: PeakBatch,
    grid: Tensor,
    profile: ProfileParams,
    *,
    window_fwhm: float | None = None,
    conserve_area: bool | None = None,
    samples_per_fwhm: int = 16,
    max_chunk_elements: int = 1 << 18,
    reference_wavelength: float | None = None,
) -> Tensor:
    """Bin-averaged sum of whole unit-area profiles, y_i = Σ_k I_k [F_k(x_i + Δ/2) − F_k(x_i − Δ/2)] / Δ; float32 [B, N].

    Every peak reaches every grid point (Lorentzian tails are not cut); the result equals that dense
    evaluation to ≤ 1e-3 of the pattern's maximum (typically ~1e-5). Multi-resolution
    (:mod:`pxrdbench.physics.profile_pyramid`), so a peak costs O(log N) evaluations whatever its width.
    Float32 rounding can leave far tails at −1e-7 of the maximum; the output is clamped at 0.

    Args:
        peaks: positions (degrees) and integrated intensities; the output follows ``peaks.device``.
        grid: Tensor[N] of uniformly spaced 2θ values (degrees).
        profile: widths, η and asymmetry (formulas in the module docstring).
        window_fwhm: deprecated, ignored (tails are no longer cut; there is no window).
        conserve_area: deprecated, ignored (integrated intensities are exact without a window).
        samples_per_fwhm: m, bins per FWHM at which a peak's core is integrated before the exact 2×
            subdivisions to the grid (×(1 + 2|ρ|) for split profiles); peaks narrower than m grid steps are
            integrated on the grid itself. Error at the top ≈ m⁻⁵ (4e-5 of a Lorentzian's height at m = 16),
            m⁻² at the kink of a split profile (≈ 2e-4 at ρ = 0.5, where 32 bins are used).
        max_chunk_elements: rows × bins evaluated at once (about 40 bytes each).
        reference_wavelength: λ_ref (Å) whose 2θ axis the instrument width is stated on; it is converted
            through d to ``profile.wavelength_angstrom`` (:func:`peak_shapes`). None: the grid's own 2θ.
    """
    for name, value in (("window_fwhm", window_fwhm), ("conserve_area", conserve_area)):
        if value is not None:
            warnings.warn(
                f"render_profiles({name}=...) is deprecated and ignored: whole profiles are rendered "
                "(no window), so integrated intensities are exact",
                DeprecationWarning,
                stacklevel=2,
            )
    start, step = _uniform_grid(grid)
    n_points, batch, device = grid.numel(), peaks.batch_size, peaks.device
    fwhm, eta, rho = peak_shapes(peaks, profile, reference_wavelength)
    centre = (peaks.two_theta.to(torch.float64) - start) / step + 0.5  # grid point i owns [i, i + 1)
    live = (peaks.intensity > 0) & torch.isfinite(centre)
    flat = torch.nonzero(live.reshape(-1)).squeeze(1)
    if flat.numel() == 0:
        return torch.zeros(batch, n_points, dtype=torch.float32, device=device)
    rho = rho.expand_as(fwhm)
    pick = [centre, fwhm / step, eta, rho, peaks.intensity.to(torch.float64) / step]
    t, gamma, eta_k, rho_k, weight = (value.reshape(-1)[flat] for value in pick)
    renderer = PyramidRenderer(
        t, gamma, eta_k, rho_k, weight, torch.div(flat, peaks.n_slots, rounding_mode="floor"),
        batch=batch, n_points=n_points, samples_per_fwhm=float(samples_per_fwhm),
        asym=bool((rho_k != 0).any()),
    )  # fmt: skip
    return renderer.render(max_chunk_elements).clamp_min(0.0)
