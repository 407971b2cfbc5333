"""Peak widths (FWHM in degrees 2θ; θ is the Bragg angle of the peak): instrument, crystallite size and microstrain,
their conversion from a reference wavelength, and the Thompson–Cox–Hastings pseudo-Voigt that combines them.

Size and strain follow GSAS-II's conventions (``GetSampleSigGam``, constant wavelength), to which
AlphaDiffract's sampled ranges refer:

- instrument (Gaussian), Caglioti: Γ_G = sqrt(max(U tan²θ + V tanθ + W + P/cos²θ, floor)), U V W P
  in deg² (GSAS-II's U, V, W are Gaussian variances σ² in centidegrees²: FWHM² = 8 ln2 · 1e-4 · σ²),
  or a constant ``fwhm``;
- crystallite size (Lorentzian), Scherrer with K = 1: Γ_size = λ / (L cosθ) rad, L and λ in Å
  (1 µm = 10,000 Å); GSAS-II writes it 1.8·λ/(π·size·cosθ) centidegrees with size in µm;
- microstrain (Lorentzian): Γ_strain = ε tanθ rad, ε dimensionless; GSAS-II writes it
  0.018·µstrain·tanθ/π centidegrees with µstrain = ε·1e6 (AlphaDiffract's "microstrain 500–10,000",
  see :func:`microstrain_to_strain`); Γ_L = Γ_size + Γ_strain. Both terms are fully Lorentzian, as
  GSAS-II's default mixing coefficient mx = 1.

Reference wavelength (``reference_wavelength`` of :func:`pxrdbench.physics.profiles.peak_shapes` and
``render_profiles``): the instrument width (``fwhm`` or Caglioti) is then stated on the 2θ axis of λ_ref and carried to the view's
λ = ``wavelength_angstrom`` through d, peak by peak. A peak of spacing d sits at sinθ_ref = λ_ref/(2d) =
(λ_ref/λ) sinθ; its width there, Γ_ref(θ_ref) (degrees), is the relative width Δd/d = (Γ_ref/2)·cotθ_ref
(Γ in rad), which at λ is Γ = Γ_ref · tanθ / tanθ_ref (degrees; exact to first order in the width). Size
and strain widths have the same Δd/d at every wavelength (d/L and ε/2), so they need no conversion. Peaks
with d < λ_ref/2 (sinθ_ref ≥ 1: not observable at λ_ref) keep Γ_ref unconverted, in the view's own 2θ.

With both Γ_G and Γ_L the profile is the Thompson–Cox–Hastings pseudo-Voigt (:func:`tch_pseudo_voigt`), Γ =
(Γ_G⁵ + 2.69269 Γ_G⁴Γ_L + 2.42843 Γ_G³Γ_L² + 4.47163 Γ_G²Γ_L³ + 0.07842 Γ_G Γ_L⁴ + Γ_L⁵)^(1/5) and η =
1.36603 q − 0.47719 q² + 0.11116 q³, q = Γ_L/Γ.
"""

from __future__ import annotations

import torch
from torch import Tensor

Number = float | Tensor

SCHERRER_K = 1.0
"""Scherrer constant K; 1 as in GSAS-II (size FWHM = 1.8·λ/(π·size·cosθ) centidegrees, size in µm)."""
STRAIN_FACTOR = 1.0
"""Γ_strain = STRAIN_FACTOR·ε·tanθ rad; 1 as in GSAS-II (FWHM = 0.018·µstrain·tanθ/π centidegrees)."""
CAGLIOTI_FLOOR_DEG2 = 1e-8
"""Floor on FWHM² (deg²) inside the Caglioti square root (FWHM ≥ 1e-4°)."""


def microstrain_to_strain(microstrain: Number) -> Number:
    """ε = microstrain·1e-6 (AlphaDiffract samples microstrain 500–10,000, i.e. ε = 5e-4–1e-2)."""
    return microstrain * 1e-6


def caglioti_fwhm(theta_rad: Tensor, U: Number, V: Number, W: Number, P: Number = 0.0) -> Tensor:
    """Γ_G = sqrt(max(U tan²θ + V tanθ + W + P/cos²θ, floor)) in degrees; U, V, W, P in deg²."""
    tan = torch.tan(theta_rad)
    fwhm2 = U * tan**2 + V * tan + W + P / torch.cos(theta_rad) ** 2
    return torch.sqrt(fwhm2.clamp_min(CAGLIOTI_FLOOR_DEG2))


def scherrer_fwhm(theta_rad: Tensor, size_angstrom: Number, wavelength_angstrom: float) -> Tensor:
    """Γ_size = K·λ / (L·cosθ) radians, returned in degrees; K = 1, L and λ in Å (GSAS-II's convention:
    1.8·λ/(π·size·cosθ) centidegrees with size in µm)."""
    return torch.rad2deg(SCHERRER_K * wavelength_angstrom / (size_angstrom * torch.cos(theta_rad)))


def strain_fwhm(theta_rad: Tensor, strain: Number) -> Tensor:
    """Γ_strain = ε·tanθ radians, returned in degrees; ε dimensionless (GSAS-II's convention:
    0.018·µstrain·tanθ/π centidegrees with µstrain = ε·1e6)."""
    return torch.rad2deg(STRAIN_FACTOR * strain * torch.tan(theta_rad))


def reference_theta(
    theta_rad: Tensor, wavelength: float, reference_wavelength: float
) -> tuple[Tensor, Tensor]:
    """(θ_ref, tanθ / tanθ_ref) for peaks at Bragg angles θ (rad) of wavelength λ (Å) seen at λ_ref (Å).

    Same d: sinθ_ref = (λ_ref/λ)·sinθ. A width Γ_ref (2θ at λ_ref) becomes Γ_ref·tanθ/tanθ_ref at λ (same
    Δd/d). Peaks not observable at λ_ref (sinθ_ref ≥ 1, d < λ_ref/2) get θ_ref = θ and factor 1; at θ = 0
    (padding) the factor is its limit λ/λ_ref.
    """
    sin_ref = torch.sin(theta_rad) * (reference_wavelength / wavelength)
    seen = sin_ref.abs() < 1.0
    theta_ref = torch.where(seen, torch.asin(sin_ref.clamp(-1.0, 1.0)), theta_rad)
    ratio = torch.tan(theta_rad) / torch.tan(theta_ref)
    ratio = torch.where(theta_ref == 0, wavelength / reference_wavelength, ratio)
    return theta_ref, torch.where(seen, ratio, torch.ones_like(ratio))


def tch_pseudo_voigt(gamma_g: Tensor, gamma_l: Tensor) -> tuple[Tensor, Tensor]:
    """Thompson–Cox–Hastings total FWHM Γ (same units as the inputs) and mixing η from Γ_G and Γ_L."""
    g, lo = gamma_g, gamma_l
    total = (g**5 + 2.69269 * g**4 * lo + 2.42843 * g**3 * lo**2 + 4.47163 * g**2 * lo**3) ** 0.2
    total = (total**5 + 0.07842 * g * lo**4 + lo**5) ** 0.2
    q = lo / total.clamp_min(1e-30)
    return total, (1.36603 * q - 0.47719 * q**2 + 0.11116 * q**3).clamp(0.0, 1.0)
