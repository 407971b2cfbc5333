"""Augmentation ops, one per physical effect, batched in torch and reproducible with a ``torch.Generator``.

Every op is called as ``op(x, generator=None, grid=None)``. Peak-level ops take and return a
:class:`~pxrdbench.physics.peak_batch.PeakBatch` (before rendering),
:class:`~pxrdbench.views.profile_ops.Render` turns peaks into patterns, pattern-level ops take and return a float Tensor[B, N] (after rendering); ``grid`` is the
Tensor[N] of 2θ (degrees) for ops that need it. Random parameters are drawn per pattern (or per peak)
from the op's ranges on the generator's device, then moved to the data's device, so a CPU generator
gives the same numbers whatever the data's device. A range is ``(low, high)``; a single number means
that fixed value. Kα2 is not an op: :func:`~pxrdbench.physics.peak_batch.batch_peaks` renders doublets.
Ops are looked up by their config name in :mod:`pxrdbench.views.pipeline` (``build_pipeline``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.peak_batch import PeakBatch

Range = float | Sequence[float]


def as_range(value: Range, name: str) -> tuple[float, float]:
    """``(low, high)`` from a number or a pair; ConfigError naming ``name`` if low > high."""
    low, high = (float(value), float(value)) if isinstance(value, (int, float)) else map(float, value)
    if low > high:
        raise ConfigError(f"{name}: range low {low} > high {high}")
    return low, high


def uniform(rng: tuple[float, float], shape: tuple[int, ...], gen: torch.Generator | None, device) -> Tensor:
    """U(low, high) float32 samples drawn on the generator's device, returned on ``device``."""
    draw = torch.rand(shape, generator=gen, device=gen.device if gen is not None else "cpu")
    return (rng[0] + (rng[1] - rng[0]) * draw).to(device)


def _noise(shape: tuple[int, ...], kind: str, gen: torch.Generator | None, device) -> Tensor:
    """Unit-scale noise: N(0, 1) for ``normal``, U(−1, 1) for ``uniform``."""
    where = gen.device if gen is not None else "cpu"
    if kind == "normal":
        return torch.randn(shape, generator=gen, device=where).to(device)
    if kind == "uniform":
        return (2 * torch.rand(shape, generator=gen, device=where) - 1).to(device)
    raise ConfigError(f"noise distribution must be 'normal' or 'uniform', got {kind!r}")


class AugmentOp:
    """Base class: ``level`` is "peaks" (PeakBatch in and out), "pattern" (Tensor[B, N]) or "render"."""

    level = "pattern"

    def __call__(self, x, generator: torch.Generator | None = None, grid: Tensor | None = None):
        want = PeakBatch if self.level in ("peaks", "render") else Tensor
        if not isinstance(x, want) or (want is Tensor and x.ndim != 2):
            raise PatternError(
                type(self).__name__, f"expects a {want.__name__} batch, got {type(x).__name__}"
            )
        return self.apply(x, generator, grid)

    def apply(self, x, generator: torch.Generator | None, grid: Tensor | None):
        raise NotImplementedError


def shift_through_d(
    two_theta_deg: Tensor, delta_deg: Tensor | float, wavelength: float, reference_wavelength: float
) -> Tensor:
    """Zero shift δ (degrees 2θ at λ_ref) applied to peaks at 2θ (degrees, at λ) through d; same dtype as 2θ.

    Each peak's d = λ/(2 sinθ) sits at 2θ_ref = 2 asin(λ_ref/(2d)); shifted there, d' = λ_ref/(2 sin((2θ_ref
    + δ)/2)) and 2θ' = 2 asin(λ/(2d')) (λ, λ_ref in Å). Peaks with d < λ_ref/2 (not observable at λ_ref)
    are returned unshifted; 2θ_ref + δ is clamped to [−180°, 180°] and a d' below λ/2 lands at the limit
    2θ' = ±180°. With λ = λ_ref this is 2θ + δ (up to rounding).
    """
    theta = torch.deg2rad(two_theta_deg.to(torch.float64)) / 2.0
    sin_ref = torch.sin(theta) * (reference_wavelength / wavelength)
    seen = sin_ref.abs() < 1.0
    two_ref = 2.0 * torch.rad2deg(torch.asin(sin_ref.clamp(-1.0, 1.0)))
    delta = torch.as_tensor(delta_deg, dtype=torch.float64, device=theta.device)
    moved = torch.deg2rad((two_ref + delta).clamp(-180.0, 180.0)) / 2.0
    sin_view = (torch.sin(moved) * (wavelength / reference_wavelength)).clamp(-1.0, 1.0)
    out = torch.where(seen, 2.0 * torch.rad2deg(torch.asin(sin_view)), two_theta_deg.to(torch.float64))
    return out.to(two_theta_deg.dtype)


class ZeroShift(AugmentOp):
    """Shift all peaks of a pattern by one δ ~ U(range_deg) (degrees); ``random_sign``: ±δ at random.

    ``reference_wavelength`` (Å, default None): δ is a zero shift in 2θ at that wavelength, applied to each
    peak's reference angle and carried to the peaks' wavelength ``wavelength_angstrom`` (Å, the view's)
    through d (:func:`shift_through_d`); None: δ is added to the view's own 2θ. Equal wavelengths give
    2θ + δ exactly."""

    level = "peaks"

    def __init__(
        self,
        range_deg: Range = (-0.02, 0.02),
        random_sign: bool = False,
        reference_wavelength: float | None = None,
        wavelength_angstrom: float | None = None,
    ) -> None:
        self.range, self.random_sign = as_range(range_deg, "ZeroShift.range_deg"), random_sign
        if reference_wavelength is not None and wavelength_angstrom is None:
            raise ConfigError("ZeroShift: reference_wavelength needs wavelength_angstrom (the view's λ in Å)")
        self.reference = None if reference_wavelength is None else float(reference_wavelength)
        self.wavelength = None if wavelength_angstrom is None else float(wavelength_angstrom)

    def apply(self, x: PeakBatch, generator, grid) -> PeakBatch:
        delta = uniform(self.range, (x.batch_size, 1), generator, x.device)
        if self.random_sign:
            delta = delta * torch.where(
                uniform((0, 1), (x.batch_size, 1), generator, x.device) < 0.5, -1.0, 1.0
            )
        if self.reference is not None and self.reference != self.wavelength:
            return x.with_(two_theta=shift_through_d(x.two_theta, delta, self.wavelength, self.reference))
        return x.with_(two_theta=x.two_theta + delta.to(x.two_theta.dtype))


class PeakJitter(AugmentOp):
    """Move each peak by its own δ ~ N(0, σ²) (or U(−σ, σ) if ``uniform``); σ ~ U(sigma_deg) per pattern."""

    level = "peaks"

    def __init__(self, sigma_deg: Range = 0.005, distribution: str = "normal") -> None:
        self.sigma, self.kind = as_range(sigma_deg, "PeakJitter.sigma_deg"), distribution

    def apply(self, x: PeakBatch, generator, grid) -> PeakBatch:
        sigma = uniform(self.sigma, (x.batch_size, 1), generator, x.device)
        step = sigma * _noise(tuple(x.two_theta.shape), self.kind, generator, x.device)
        return x.with_(two_theta=x.two_theta + step.to(x.two_theta.dtype))


class IntensityNoise(AugmentOp):
    """I ← max(I·(1 + δ), 0) per peak, δ ~ N(0, σ²) or U(−σ, σ); σ ~ U(rel_sigma) per pattern."""

    level = "peaks"

    def __init__(self, rel_sigma: Range = 0.05, distribution: str = "normal") -> None:
        self.sigma, self.kind = as_range(rel_sigma, "IntensityNoise.rel_sigma"), distribution

    def apply(self, x: PeakBatch, generator, grid) -> PeakBatch:
        sigma = uniform(self.sigma, (x.batch_size, 1), generator, x.device)
        factor = 1 + sigma * _noise(tuple(x.intensity.shape), self.kind, generator, x.device)
        return x.with_(intensity=(x.intensity * factor.to(x.intensity.dtype)).clamp_min(0.0))


class ImpurityPeaks(AugmentOp):
    """Append M ~ U{count_range} random peaks per pattern at 2θ ~ U(two_theta_range) (P grows by max M).

    Their integrated intensity is U(rel_height) × the pattern's strongest one; ``hkl_cos`` is NaN for
    them (not from the textured phase)."""

    level = "peaks"

    def __init__(
        self,
        count_range: Range = (0, 6),
        rel_height: Range = (0.01, 0.05),
        two_theta_range: Range = (5.0, 90.0),
    ) -> None:
        self.count = tuple(int(v) for v in as_range(count_range, "ImpurityPeaks.count_range"))
        self.height = as_range(rel_height, "ImpurityPeaks.rel_height")
        self.where = as_range(two_theta_range, "ImpurityPeaks.two_theta_range")

    def apply(self, x: PeakBatch, generator, grid) -> PeakBatch:
        b, extra = x.batch_size, self.count[1]
        if extra == 0:
            return x
        counts = torch.floor(uniform((self.count[0], self.count[1] + 1 - 1e-6), (b, 1), generator, x.device))
        active = torch.arange(extra, device=x.device)[None, :] < counts
        pos = uniform(self.where, (b, extra), generator, x.device).to(x.two_theta.dtype)
        top = x.intensity.amax(dim=1, keepdim=True)
        height = uniform(self.height, (b, extra), generator, x.device).to(x.intensity.dtype) * top * active
        cos = None if x.hkl_cos is None else torch.cat([x.hkl_cos, torch.full_like(pos, math.nan)], dim=1)
        return PeakBatch(torch.cat([x.two_theta, pos], 1), torch.cat([x.intensity, height], 1), cos)


class PreferredOrientation(AugmentOp):
    """March–Dollase texture: I ← I·(r² cos²α + sin²α / r)^(−3/2), r ~ U(r_range) per pattern.

    cos α from ``PeakBatch.hkl_cos`` (NaN peaks unchanged); r = 1 is the identity; the factor averages
    to 1 over all orientations. Without ``hkl_cos`` the op warns once and returns its input."""

    level = "peaks"

    def __init__(self, r_range: Range = (0.7, 1.0)) -> None:
        self.r = as_range(r_range, "PreferredOrientation.r_range")
        self._warned = False

    def apply(self, x: PeakBatch, generator, grid) -> PeakBatch:
        if x.hkl_cos is None:
            if not self._warned:
                warnings.warn(
                    "PreferredOrientation: PeakBatch has no hkl_cos; texture not applied", stacklevel=3
                )
                self._warned = True
            return x
        r = uniform(self.r, (x.batch_size, 1), generator, x.device).to(x.intensity.dtype)
        cos2 = x.hkl_cos.to(x.intensity.dtype) ** 2
        factor = (r**2 * cos2 + (1 - cos2) / r) ** -1.5
        return x.with_(intensity=x.intensity * torch.where(torch.isnan(cos2), 1.0, factor))


class SmoothBackground(AugmentOp):
    """Add b(2θ) = a·max(y)·ĉ(t): ĉ a random Chebyshev sum Σ_j c_j T_j(t), c_j ~ U(−1, 1)/(j + 1), on
    t ∈ [−1, 1] across the pattern, shifted to min 0 and scaled to max 1; a ~ U(amplitude) per pattern."""

    def __init__(self, degree: int = 4, amplitude: Range = (0.0, 0.1)) -> None:
        self.degree, self.amplitude = int(degree), as_range(amplitude, "SmoothBackground.amplitude")

    def apply(self, x: Tensor, generator, grid) -> Tensor:
        b, n = x.shape
        t = torch.linspace(-1.0, 1.0, n, device=x.device, dtype=x.dtype)
        basis = [torch.ones_like(t), t]
        while len(basis) <= self.degree:
            basis.append(2 * t * basis[-1] - basis[-2])
        coeff = uniform((-1.0, 1.0), (b, self.degree + 1), generator, x.device).to(x.dtype)
        coeff = coeff / torch.arange(1, self.degree + 2, device=x.device, dtype=x.dtype)
        curve = coeff @ torch.stack(basis[: self.degree + 1])
        curve = curve - curve.amin(1, keepdim=True)
        curve = curve / curve.amax(1, keepdim=True).clamp_min(1e-12)
        amp = uniform(self.amplitude, (b, 1), generator, x.device).to(x.dtype)
        return x + amp * x.amax(1, keepdim=True).clamp_min(0.0) * curve


class PoissonGaussianNoise(AugmentOp):
    """AlphaDiffract noise (paper 004, Methods 5.2), λ_max ~ U(lambda_max), σ_rel ~ U(sigma_rel) per pattern:

    eq. 1: I_P = max(I)/λ_max · Poisson(λ_max · I / max(I));
    eq. 2: I_G = (I_P − min I_P)/(max I_P − min I_P) + N(0, σ_rel);
    eq. 3: I_noisy = (I_G − min I_G)/(max I_G − min I_G) · (max I_P − min I_P) + min I_P.
    Patterns whose maximum is ≤ 0 are returned unchanged."""

    def __init__(self, lambda_max: Range = (1.0, 100.0), sigma_rel: Range = (1e-3, 1e-1)) -> None:
        self.lam = as_range(lambda_max, "PoissonGaussianNoise.lambda_max")
        self.sigma = as_range(sigma_rel, "PoissonGaussianNoise.sigma_rel")

    def apply(self, x: Tensor, generator, grid) -> Tensor:
        b = x.shape[0]
        top = x.amax(1, keepdim=True)
        ok = top > 0
        safe_top = torch.where(ok, top, torch.ones_like(top))
        lam = uniform(self.lam, (b, 1), generator, x.device).to(x.dtype)
        rates = (lam * x.clamp_min(0.0) / safe_top).to(generator.device if generator is not None else "cpu")
        pois = safe_top / lam * torch.poisson(rates, generator=generator).to(x.device, x.dtype)  # eq. 1
        lo, span = pois.amin(1, keepdim=True), pois.amax(1, keepdim=True) - pois.amin(1, keepdim=True)
        sigma = uniform(self.sigma, (b, 1), generator, x.device).to(x.dtype)
        gauss = (pois - lo) / span.clamp_min(1e-30) + sigma * _noise(
            tuple(x.shape), "normal", generator, x.device
        )
        g_lo = gauss.amin(1, keepdim=True)
        g_span = (gauss.amax(1, keepdim=True) - g_lo).clamp_min(1e-30)
        noisy = (gauss - g_lo) / g_span * span + lo  # eq. 3
        return torch.where(ok, noisy, x)


class WhiteNoise(AugmentOp):
    """Add n·max(y)·ξ, ξ ~ N(0, 1) or U(−1, 1) per point; n ~ U(sigma_rel) per pattern."""

    def __init__(self, sigma_rel: Range = (0.0, 0.05), distribution: str = "normal") -> None:
        self.sigma, self.kind = as_range(sigma_rel, "WhiteNoise.sigma_rel"), distribution

    def apply(self, x: Tensor, generator, grid) -> Tensor:
        level = uniform(self.sigma, (x.shape[0], 1), generator, x.device).to(x.dtype) * x.amax(
            1, keepdim=True
        )
        return x + level * _noise(tuple(x.shape), self.kind, generator, x.device).to(x.dtype)


class EdgeCrop(AugmentOp):
    """Zero everything outside [low, high] (degrees), low ~ U(low_range), high ~ U(high_range) per pattern.

    Works on patterns (needs ``grid``) and on peaks (zeroes the intensity of peaks outside)."""

    level = "any"

    def __init__(self, low_range: Range = (0.0, 24.0), high_range: Range = (100.0, 120.0)) -> None:
        self.low, self.high = as_range(low_range, "EdgeCrop.low_range"), as_range(high_range, "EdgeCrop.high")

    def __call__(self, x, generator: torch.Generator | None = None, grid: Tensor | None = None):
        b = x.batch_size if isinstance(x, PeakBatch) else x.shape[0]
        device = x.device
        low = uniform(self.low, (b, 1), generator, device)
        high = uniform(self.high, (b, 1), generator, device)
        if isinstance(x, PeakBatch):
            keep = (x.two_theta >= low) & (x.two_theta <= high)
            return x.with_(intensity=torch.where(keep, x.intensity, 0.0))
        if grid is None or grid.numel() != x.shape[1]:
            raise ConfigError("EdgeCrop on patterns needs the 2θ grid of the patterns (grid=...)")
        g = grid.to(device)[None, :]
        return torch.where((g >= low) & (g <= high), x, torch.zeros((), dtype=x.dtype, device=device))


class Normalise(AugmentOp):
    """Rescale each pattern: ``max`` → y/max(y)·scale, ``minmax`` → (y − min)/(max − min)·scale."""

    def __init__(self, mode: str = "max", scale: float = 1.0) -> None:
        if mode not in ("max", "minmax"):
            raise ConfigError(f"Normalise.mode must be 'max' or 'minmax', got {mode!r}")
        self.mode, self.scale = mode, float(scale)

    def apply(self, x: Tensor, generator, grid) -> Tensor:
        lo = x.amin(1, keepdim=True) if self.mode == "minmax" else torch.zeros_like(x[:, :1])
        span = x.amax(1, keepdim=True) - lo
        return torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1.0) * self.scale, x)


class Compose:
    """Apply ops in order: ``Compose(ops)(x, generator=None, grid=None)``."""

    def __init__(self, ops: Sequence[AugmentOp]) -> None:
        self.ops = list(ops)

    def __call__(self, x, generator: torch.Generator | None = None, grid: Tensor | None = None):
        for op in self.ops:
            x = op(x, generator, grid)
        return x

    def __repr__(self) -> str:
        return f"Compose([{', '.join(type(op).__name__ for op in self.ops)}])"
