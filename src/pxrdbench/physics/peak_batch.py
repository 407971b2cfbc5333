"""Padded batches of Bragg peaks (torch): reflection lists → peak positions and integrated intensities.

A cached reflection list holds d-spacings (Å) and m·|F|² (wavelength independent). For a
wavelength with lines (λ_j, w_j), Bragg's law puts reflection k of line j at
2θ_jk = 2 asin(λ_j / 2d_k) (degrees) with integrated intensity I_jk = w_j · m|F|²_k · LP(θ_jk), where
the Lorentz–polarisation factor of an unpolarised beam without a monochromator is
LP(θ) = (1 + cos²2θ) / (sin²θ cosθ) (dimensionless).

Everything here works on padded (B, P) tensors: B patterns, P peak slots; padding slots carry
intensity 0 and are ignored by :func:`pxrdbench.physics.profiles.render_profiles` and by every
augmentation op.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from pxrdbench.errors import InputError, WavelengthError
from pxrdbench.physics.wavelength import Wavelength

D_PADDING = float("inf")
"""d-spacing used for padding slots: λ/2d = 0 puts them at 2θ = 0 with intensity 0 (never rendered)."""


@dataclass
class PeakBatch:
    """Peaks of B patterns in P padded slots.

    Attributes:
        two_theta: Tensor[B, P], peak centres 2θ_k in degrees.
        intensity: Tensor[B, P], integrated intensities (area under the rendered peak, in intensity·degrees);
            ``>= 0``, padding and unreachable/out-of-range peaks are exactly 0.
        hkl_cos: optional Tensor[B, P], cos α between each reflection's scattering vector and the
            texture axis (March–Dollase preferred orientation); ``NaN`` marks a peak that is not
            from the textured phase (an added impurity peak), which texture ops leave unchanged.
            ``None`` if unknown.
    """

    two_theta: Tensor
    intensity: Tensor
    hkl_cos: Tensor | None = None

    def __post_init__(self) -> None:
        if self.two_theta.ndim != 2 or self.two_theta.shape != self.intensity.shape:
            raise InputError(
                "PeakBatch",
                f"two_theta and intensity must both be (B, P), got {tuple(self.two_theta.shape)} "
                f"and {tuple(self.intensity.shape)}",
            )
        if self.hkl_cos is not None and self.hkl_cos.shape != self.two_theta.shape:
            raise InputError(
                "PeakBatch.hkl_cos",
                f"must match two_theta {tuple(self.two_theta.shape)}, got {tuple(self.hkl_cos.shape)}",
            )

    @property
    def batch_size(self) -> int:
        """Number of patterns B."""
        return int(self.two_theta.shape[0])

    @property
    def n_slots(self) -> int:
        """Number of peak slots P (real peaks plus padding)."""
        return int(self.two_theta.shape[1])

    @property
    def device(self) -> torch.device:
        """Device of the peak tensors."""
        return self.two_theta.device

    @property
    def mask(self) -> Tensor:
        """Bool Tensor[B, P]: True for real peaks (intensity > 0)."""
        return self.intensity > 0

    def to(self, device: torch.device | str) -> PeakBatch:
        """The same peaks on ``device``."""
        cos = None if self.hkl_cos is None else self.hkl_cos.to(device)
        return PeakBatch(self.two_theta.to(device), self.intensity.to(device), cos)

    def normalised(self) -> PeakBatch:
        """Intensities divided by each pattern's maximum (max per row = 1; an all-zero row stays zero)."""
        peak_max = self.intensity.amax(dim=1, keepdim=True)
        scale = torch.where(peak_max > 0, peak_max, torch.ones_like(peak_max))
        return replace(self, intensity=self.intensity / scale)

    def with_(self, **changes: Tensor | None) -> PeakBatch:
        """A copy with some fields replaced (``two_theta``, ``intensity``, ``hkl_cos``)."""
        return replace(self, **changes)


def pad_reflections(
    d_list: list[np.ndarray],
    intensity_list: list[np.ndarray],
    *,
    dtype: torch.dtype = torch.float64,
    source: str = "reflections",
) -> tuple[Tensor, Tensor]:
    """Pack variable-length reflection lists into zero-padded (B, P) tensors.

    Args:
        d_list: per pattern, d-spacings in Å (any order), all > 0.
        intensity_list: per pattern, m·|F|² values (>= 0), same lengths as ``d_list``.
        dtype: dtype of both outputs (float64 keeps 2θ exact to ~1e-12°; the renderer casts as it needs).

    Returns:
        ``(d, m_f2)`` of shape (B, P), P the longest list (at least 1). Padding slots have
        d = ``D_PADDING`` (+inf) and m·|F|² = 0.
    """
    if len(d_list) != len(intensity_list):
        raise InputError(source, f"{len(d_list)} d-spacing lists but {len(intensity_list)} intensity lists")
    n_rows = len(d_list)
    lengths = [int(np.asarray(d).size) for d in d_list]
    width = max([1, *lengths])
    d_out = np.full((n_rows, width), D_PADDING, dtype=np.float64)
    i_out = np.zeros((n_rows, width), dtype=np.float64)
    for row, (d_row, i_row) in enumerate(zip(d_list, intensity_list, strict=True)):
        d_arr = np.asarray(d_row, dtype=np.float64).ravel()
        i_arr = np.asarray(i_row, dtype=np.float64).ravel()
        if d_arr.shape != i_arr.shape:
            raise InputError(f"{source}[{row}]", f"{d_arr.size} d-spacings but {i_arr.size} intensities")
        if d_arr.size and (not np.all(np.isfinite(d_arr)) or d_arr.min() <= 0):
            raise InputError(f"{source}[{row}]", "d-spacings must be positive and finite (Å)")
        if i_arr.size and (not np.all(np.isfinite(i_arr)) or i_arr.min() < 0):
            raise InputError(f"{source}[{row}]", "intensities m·|F|² must be finite and >= 0")
        d_out[row, : d_arr.size] = d_arr
        i_out[row, : i_arr.size] = i_arr
    return torch.as_tensor(d_out, dtype=dtype), torch.as_tensor(i_out, dtype=dtype)


def lorentz_polarisation_factor(theta_rad: Tensor) -> Tensor:
    """LP(θ) = (1 + cos²2θ) / (sin²θ · cosθ), dimensionless, for Bragg angle θ in radians (0 < θ < π/2)."""
    return (1.0 + torch.cos(2.0 * theta_rad) ** 2) / (torch.sin(theta_rad) ** 2 * torch.cos(theta_rad))


def batch_peaks(
    d: Tensor,
    m_f2: Tensor,
    wavelength: Wavelength,
    two_theta_range: tuple[float, float],
    *,
    lorentz_polarisation: bool = True,
    doublet: bool = True,
    hkl_cos: Tensor | None = None,
    dtype: torch.dtype = torch.float32,
) -> PeakBatch:
    """Place reflections at a wavelength: 2θ = 2·asin(λ/2d) (degrees), I = w·m|F|²·LP(θ).

    Args:
        d: Tensor[B, P] d-spacings in Å (padding +inf).
        m_f2: Tensor[B, P] multiplicity × |F|² (padding 0).
        wavelength: the source; with ``doublet=True`` and several lines, every line (λ_j, w_j)
            gives its own copy of the peaks (P grows to P·n_lines, line j in columns
            [j·P, (j+1)·P)); otherwise the intensity-weighted mean λ with weight 1. Kα2 is
            therefore handled here, not by an augmentation op.
        two_theta_range: (low, high) in degrees; peaks outside [low, high] get intensity 0.
        lorentz_polarisation: multiply by LP(θ) = (1 + cos²2θ)/(sin²θ cosθ) (False when m_f2
            already includes it).
        hkl_cos: optional Tensor[B, P] of texture cosines, copied alongside each line.
        dtype: dtype of the returned tensors (the trigonometry runs in float64).

    Unreachable reflections (λ/2d > 1) and padding get 2θ = 0 and intensity 0.
    """
    low, high = float(two_theta_range[0]), float(two_theta_range[1])
    if not high > low:
        raise WavelengthError("two_theta_range", f"empty 2θ range ({low}, {high})")
    if d.shape != m_f2.shape or d.ndim != 2:
        raise InputError(
            "batch_peaks", f"d and m_f2 must both be (B, P), got {tuple(d.shape)} and {tuple(m_f2.shape)}"
        )
    lines = wavelength.lines if (doublet and len(wavelength.lines) > 1) else ((wavelength.angstrom, 1.0),)
    d64 = d.to(torch.float64)
    f64 = m_f2.to(torch.float64)
    positions, intensities = [], []
    for lam, weight in lines:
        ratio = lam / (2.0 * d64)
        reachable = (ratio > 0) & (ratio < 1.0) & torch.isfinite(ratio)
        theta = torch.asin(torch.where(reachable, ratio, torch.zeros_like(ratio)))
        two_theta = torch.rad2deg(2.0 * theta)
        inside = reachable & (two_theta >= low) & (two_theta <= high)
        intensity = weight * f64
        if lorentz_polarisation:
            safe_theta = torch.where(inside, theta, torch.full_like(theta, np.pi / 4))
            intensity = intensity * lorentz_polarisation_factor(safe_theta)
        intensity = torch.where(inside, intensity.clamp_min(0.0), torch.zeros_like(intensity))
        positions.append(two_theta)
        intensities.append(intensity)
    cos = None if hkl_cos is None else torch.cat([hkl_cos] * len(lines), dim=1).to(dtype)
    return PeakBatch(torch.cat(positions, dim=1).to(dtype), torch.cat(intensities, dim=1).to(dtype), cos)


def hkl_axis_cosines(hkl: Tensor, reciprocal_lattice: Tensor, axis_hkl: Tensor) -> Tensor:
    """cos α between g_hkl = h·a* + k·b* + l·c* and the texture direction g_axis (Cartesian reciprocal space).

    Args:
        hkl: Tensor[B, P, 3] Miller indices (padding rows may be 0; they get cos α = 0).
        reciprocal_lattice: Tensor[B, 3, 3] whose rows are a*, b*, c* in Cartesian coordinates (Å⁻¹; with or
            without the 2π factor, the cosine does not depend on it), e.g. pymatgen's
            ``lattice.reciprocal_lattice_crystallographic.matrix``.
        axis_hkl: Tensor[B, 3] the texture axis as a reciprocal-lattice direction (e.g. (0, 0, 1)
            for platelets lying on their (001) face).

    Returns:
        Tensor[B, P]: cos α = g_hkl·g_axis / (|g_hkl|·|g_axis|), in [−1, 1].
    """
    g = torch.einsum("bpi,bij->bpj", hkl.to(reciprocal_lattice.dtype), reciprocal_lattice)
    g_axis = torch.einsum("bi,bij->bj", axis_hkl.to(reciprocal_lattice.dtype), reciprocal_lattice)
    dot = (g * g_axis[:, None, :]).sum(-1)
    norms = g.norm(dim=-1) * g_axis.norm(dim=-1, keepdim=True)
    return torch.where(norms > 0, dot / norms.clamp_min(1e-300), torch.zeros_like(dot)).clamp(-1.0, 1.0)
