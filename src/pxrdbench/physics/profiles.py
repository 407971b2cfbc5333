"""Batched peak-profile rendering (torch): PeakBatch + 2θ grid + profile parameters → patterns (B, N).

Widths (FWHM in degrees 2θ: Caglioti, GSAS-II size and strain, the reference-wavelength conversion, the
Thompson–Cox–Hastings pseudo-Voigt) are computed in :mod:`pxrdbench.physics.widths`. Unit-area shapes:
pV = η L + (1 − η) G with G(x) = (2/Γ) sqrt(ln2/π) exp(−4 ln2 x²/Γ²) and L(x) = (2/πΓ) / (1 + 4x²/Γ²).

Asymmetry (split pseudo-Voigt, a project choice): the left half has FWHM Γ(1 − ρ), the right half
Γ(1 + ρ), each scaled so the profile is continuous at its maximum, which stays at 2θ_k; total FWHM Γ
and area 1 are kept. ρ ∈ (−1, 1); ρ > 0 puts the longer tail on the high-angle side, ρ < 0 on the
low-angle side (as axial divergence does).

Rendering is bin-integrated: y_i = Σ_k I_k [F_k(x_i + Δ/2) − F_k(x_i − Δ/2)] / Δ on a uniform grid of
step Δ (F_k the profile's CDF), so Σ_i y_i Δ = Σ_k I_k even for peaks narrower than a step; for Δ ≪ Γ
it equals point sampling to O((Δ/Γ)²). Peaks are cut at ±``window_fwhm``·Γ (±3Γ for pure Gaussians,
whose mass beyond is < 2e-12). A Lorentzian keeps 1 − (2/π) atan(2k) ≈ 1/(πk) of its area beyond
±kΓ (1.6 % at k = 20; windows are rounded up, so k is 20–30). With ``conserve_area`` (default) each
peak is divided by its mass inside the window: integrated intensities stay exact and a Lorentzian
stands ≤ 1.6 % high; without it the shape inside the window is exact and the tail mass is lost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.widths import (
    Number,
    caglioti_fwhm,
    reference_theta,
    scherrer_fwhm,
    strain_fwhm,
    tch_pseudo_voigt,
)

PROFILE_SHAPES = ("gaussian", "lorentzian", "pseudo_voigt")
GAUSSIAN_WINDOW_FWHM = 3.0
"""Half window (in FWHM) used for peaks with η = 0."""
_SQRT_LN2_2 = 2.0 * math.sqrt(math.log(2.0))


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


def unit_cdf(u: Tensor, eta: Tensor, rho: Tensor | None, parts: tuple[bool, bool] = (True, True)) -> Tensor:
    """CDF (up to a constant) of the unit-area split pseudo-Voigt at u = (2θ − 2θ_k)/Γ.

    Symmetric part S(u) = η atan(2u)/π + (1 − η) erf(2 sqrt(ln2) u)/2; with asymmetry the side of u
    has width Γ(1 ∓ ρ) and weight (1 ∓ ρ): F(u) = (1 ∓ ρ) S(u/(1 ∓ ρ)). Shapes broadcast. ``parts`` =
    (any Gaussian part, any Lorentzian part) lets pure shapes skip a transcendental.
    """
    side = None if rho is None else torch.sign(u).mul_(rho).add_(1.0)
    scaled = u if side is None else u / side
    out = torch.erf(scaled * _SQRT_LN2_2).mul_(0.5 * (1.0 - eta)) if parts[0] else torch.zeros_like(scaled)
    if parts[1]:
        out = torch.addcmul(out, torch.atan(scaled * 2.0), eta / math.pi)
    return out if side is None else out.mul_(side)


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


def _bucket(count: Tensor) -> Tensor:
    """Round window half-widths up to 2^j or 1.5·2^j (≤ 1.5× waste, few distinct shapes)."""
    pow2 = torch.exp2(torch.floor(torch.log2(count.clamp_min(1.0))))
    return torch.where(count <= pow2, pow2, torch.where(count <= 1.5 * pow2, 1.5 * pow2, 2 * pow2)).ceil()


def render_profiles(
    peaks: PeakBatch,
    grid: Tensor,
    profile: ProfileParams,
    *,
    window_fwhm: float = 20.0,
    conserve_area: bool = True,
    samples_per_fwhm: int = 16,
    max_chunk_elements: int = 1 << 18,
    reference_wavelength: float | None = None,
) -> Tensor:
    """Bin-averaged sum of unit-area profiles, y_i = Σ_k I_k P_k(x_i); float32 Tensor[B, N].

    Multi-resolution, so a peak costs a bounded number of evaluations whatever its width: level ℓ
    bins are 2^ℓ grid steps wide and reach the grid by repeated 2× linear interpolation of densities
    (mass-preserving). A peak's window is integrated on a tail level with ≥ 2 bins per FWHM; its
    core (±3Γ) on the level with ≥ ``samples_per_fwhm`` bins per FWHM (level 0 for narrow peaks), as
    exact core bins minus the interpolated tail bins there. Peaks wider than ``samples_per_fwhm``
    grid steps are therefore linearly interpolated near the top (≈ 0.4 % of their height at 16).

    Args:
        peaks: positions (degrees) and integrated intensities; the output follows ``peaks.device``.
        grid: Tensor[N] of uniformly spaced 2θ values (degrees).
        profile: widths, η and asymmetry (formulas in the module docstring).
        window_fwhm: half window in FWHM for peaks with a Lorentzian part.
        conserve_area: divide each peak by its mass inside the window (Σ_i y_i Δ = Σ_k I_k exactly).
        samples_per_fwhm: core resolution m (interpolation error ∝ 1/m²).
        max_chunk_elements: peaks × window bins evaluated at once (about 30 bytes each).
        reference_wavelength: λ_ref (Å) whose 2θ axis the instrument width is stated on; it is converted
            through d to ``profile.wavelength_angstrom`` (:func:`peak_shapes`). None: the grid's own 2θ.
    """
    start, step = _uniform_grid(grid)
    n_points, batch, device = grid.numel(), peaks.batch_size, peaks.device
    fwhm, eta, rho = peak_shapes(peaks, profile, reference_wavelength)
    rho = rho.expand_as(fwhm)
    centre = (peaks.two_theta.to(torch.float64) - start) / step  # grid steps; bin i = [i − ½, i + ½)
    wide, narrow = fwhm * (1.0 + rho.abs()) / step, fwhm * (1.0 - rho.abs()) / step
    level = torch.floor(torch.log2(narrow / samples_per_fwhm)).clamp_min(0.0)
    shift = (torch.floor(torch.log2(narrow / 2.0)) - level).clamp(0.0, _MAX_TAIL_SHIFT)
    shift = torch.where(eta > 0, shift, 0.0)  # pure Gaussians need no tail level
    tail_steps = torch.exp2(level + shift)
    core = _bucket(torch.ceil(GAUSSIAN_WINDOW_FWHM * wide / tail_steps) + 1.0)
    reach = _bucket(torch.maximum(torch.ceil(window_fwhm * wide / tail_steps) + 1.0, core + 2.0))
    reach = torch.where(eta > 0, reach, core)
    live = (peaks.intensity > 0) & torch.isfinite(centre)
    live &= (centre + (reach + 1) * tail_steps >= 0) & (centre - (reach + 1) * tail_steps <= n_points)
    flat = torch.nonzero(live.reshape(-1)).squeeze(1)
    if flat.numel() == 0:
        return torch.zeros(batch, n_points, dtype=torch.float32, device=device)
    pick = {
        "fwhm": fwhm / step, "eta": eta, "rho": rho, "centre": centre, "level": level, "shift": shift,
        "core": core, "reach": reach, "scale": peaks.intensity.to(torch.float64) / step,
    }  # fmt: skip
    pick = {name: value.reshape(-1)[flat] for name, value in pick.items()}
    pick["row"] = torch.div(flat, peaks.n_slots, rounding_mode="floor")
    if conserve_area:
        pick["scale"] = pick["scale"] / _window_mass(pick)
    n_levels = int((pick["level"] + pick["shift"]).max()) + 1
    margin = 2 * int(((pick["reach"] + 1) * torch.exp2(pick["shift"])).max()) + 2
    sizes = [-(-n_points // (1 << lv)) + 2 * margin for lv in range(n_levels)]
    offsets = [sum(batch * sz for sz in sizes[:lv]) for lv in range(n_levels + 1)]
    buffers = torch.zeros(offsets[-1], dtype=torch.float32, device=device)
    layout = (torch.tensor(sizes, device=device), torch.tensor(offsets[:-1], device=device), margin)
    has_asym = bool((rho != 0).any())
    key = (pick["shift"] * 2**40 + pick["core"] * 2**20 + pick["reach"]).to(torch.int64)
    for value in torch.unique(key).tolist():
        members = torch.nonzero(key == value).squeeze(1)
        shape = (value >> 40, (value >> 20) & 0xFFFFF, value & 0xFFFFF)  # shift, core, reach
        width = (2 * shape[1] + 1) * (1 << shape[0]) + 2 * shape[2] + 2
        for chunk in members.split(max(1, max_chunk_elements // width)):
            sub = {name: v[chunk] for name, v in pick.items()}
            parts = (bool((sub["eta"] < 1).any()), bool((sub["eta"] > 0).any()))
            _render_chunk(buffers, sub, shape, (layout, has_asym, parts))
    levels = [buffers[offsets[lv] : offsets[lv + 1]].view(batch, sizes[lv]) for lv in range(n_levels)]
    acc = levels[-1]
    for lv in range(n_levels - 1, 0, -1):  # coarse → fine, 2× linear interpolation, margins included
        acc = levels[lv - 1] + _upsample(acc, 1)[:, margin : margin + sizes[lv - 1]]
    return acc[:, margin : margin + n_points].clamp_min(0.0).contiguous()


_MAX_TAIL_SHIFT = 3
"""Tail bins are at most 2^3 = 8 core bins wide."""


def _upsample(density: Tensor, times: int) -> Tensor:
    """2× linear interpolation (align_corners=False), ``times`` times, along the last axis of (n, L)."""
    x = density[:, None, :]
    for _ in range(times):
        x = torch.nn.functional.interpolate(x, scale_factor=2, mode="linear", align_corners=False)
    return x[:, 0, :]


def _window_mass(pick: dict[str, Tensor]) -> Tensor:
    """Mass of each peak's unit-area profile inside its rendering window (for ``conserve_area``)."""
    tail_steps = torch.exp2(pick["level"] + pick["shift"])
    tail_bin = torch.floor((pick["centre"] + 0.5) / tail_steps)
    ends = (
        torch.stack([tail_bin - pick["reach"], tail_bin + pick["reach"] + 1.0], dim=1) * tail_steps[:, None]
    )
    u = (ends - (pick["centre"] + 0.5)[:, None]) / pick["fwhm"][:, None]
    cdf = unit_cdf(u, pick["eta"][:, None], pick["rho"][:, None])
    return (cdf[:, 1] - cdf[:, 0]).clamp_min(1e-12)


def _render_chunk(buffers: Tensor, sub: dict[str, Tensor], shape: tuple[int, int, int], ctx: tuple) -> None:
    """Add one chunk of peaks sharing (tail shift, core and reach half-widths) to the level buffers."""
    tail_shift, half_core, half_reach = shape
    ratio = 1 << tail_shift
    tail_level = sub["level"] + tail_shift
    tail_bin = torch.floor((sub["centre"] + 0.5) / torch.exp2(tail_level))
    tail = _pass(buffers, sub, tail_level, tail_bin - half_reach, 2 * half_reach + 1, ctx, None)
    if tail_shift == 0:
        return
    around = tail[:, half_reach - half_core - 2 : half_reach + half_core + 3]  # core ± 2 tail bins
    predicted = _upsample(around, tail_shift)[:, 2 * ratio : (2 * half_core + 3) * ratio]
    first = (tail_bin - half_core) * ratio
    _pass(buffers, sub, sub["level"], first, (2 * half_core + 1) * ratio, ctx, predicted)


def _pass(
    buffers: Tensor,
    sub: dict[str, Tensor],
    level: Tensor,
    first: Tensor,
    n_bins: int,
    ctx: tuple,
    minus: Tensor | None,
) -> Tensor:
    """Integrate bins [first, first + n_bins) of ``level`` per peak; add densities less ``minus``."""
    (sizes, offsets, margin), has_asym, parts = ctx
    bin_steps = torch.exp2(level)
    ab = ((first - (sub["centre"] + 0.5) / bin_steps) * bin_steps / sub["fwhm"]).to(torch.float32)[:, None]
    b = (bin_steps / sub["fwhm"]).to(torch.float32)[:, None]
    k = torch.arange(n_bins + 1, device=buffers.device, dtype=torch.float32)
    eta = sub["eta"].to(torch.float32)[:, None]
    rho = sub["rho"].to(torch.float32)[:, None] if has_asym else None
    density = torch.diff(unit_cdf(torch.addcmul(ab, k, b), eta, rho, parts), dim=1)  # u = (k + a)·b
    density.mul_((sub["scale"] / bin_steps).to(torch.float32)[:, None])
    added = density if minus is None else density - minus
    lv = level.to(torch.int64)
    base = offsets[lv] + sub["row"] * sizes[lv] + margin + first.to(torch.int64)
    target = base[:, None] + torch.arange(n_bins, device=buffers.device)[None, :]
    buffers.index_add_(0, target.reshape(-1), added.reshape(-1))
    return density
