"""Reflections → stick peaks at a wavelength: Bragg angles, Lorentz-polarisation, pymatgen's merge and
cut-off.

For a reflection of spacing d (Å) at wavelength λ (Å): sin θ = λ / (2d) (Bragg), and its powder intensity is

    I = m·|F|² · LP(θ),     LP(θ) = (1 + cos² 2θ) / (sin² θ · cos θ)

(unpolarised beam, no monochromator; the form pymatgen's XRDCalculator uses). Peaks whose 2θ fall on the same
multiple of 1e-5° after rounding (pymatgen's ``TWO_THETA_TOL`` binning) are one peak; intensities are scaled
so the strongest is 100 and peaks at or below ``min_relative_intensity`` on that 0–100 scale are dropped
(pymatgen's ``SCALED_INTENSITY_TOL`` = 1e-3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from pymatgen.core import Structure

from pxrdbench.errors import WavelengthError
from pxrdbench.physics.reflections import Reflections, compute_reflections
from pxrdbench.physics.wavelength import Wavelength, parse_wavelength

TWO_THETA_MERGE_TOL_DEG = 1e-5
"""Peaks are binned by round(2θ / 1e-5°), as pymatgen does."""

PYMATGEN_SCALED_INTENSITY_TOL = 1e-3
"""Peaks with scaled intensity (0–100) at or below this are dropped, as pymatgen does."""


@dataclass(frozen=True)
class PeakList:
    """Stick pattern of one structure at one wavelength.

    Attributes:
        two_theta: (P,) peak positions in degrees, ascending.
        intensity: (P,) intensities scaled so the strongest is 100.
        d: (P,) d-spacings (Å) of the representative reflection of each peak.
        hkl: (P, 3) representative Miller indices.
        multiplicity: (P,) total number of lattice points merged into the peak.
        wavelength_angstrom: the (mean) wavelength in Å the peaks were computed for.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    d: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray
    wavelength_angstrom: float

    def __len__(self) -> int:
        return int(self.two_theta.shape[0])


def lorentz_polarisation(two_theta_deg: np.ndarray | float) -> np.ndarray:
    """LP(θ) = (1 + cos² 2θ) / (sin² θ · cos θ), dimensionless, for 2θ in degrees (0 < 2θ < 180)."""
    two_theta = np.radians(np.asarray(two_theta_deg, dtype=np.float64))
    theta = two_theta / 2.0
    return (1.0 + np.cos(two_theta) ** 2) / (np.sin(theta) ** 2 * np.cos(theta))


def resolve_wavelength(spec: str | float | Wavelength | None, source: str) -> Wavelength:
    """:func:`parse_wavelength`, with every error naming ``source`` (None and values ≤ 0 are errors).

    Successful parses of plain numbers and names are memoised (a few hundred at most).
    """
    if isinstance(spec, Wavelength):
        return spec
    memo = type(spec) in (float, str)
    if memo and (known := _RESOLVED.get(spec)) is not None:
        return known
    where = f"{source} (wavelength)"
    try:
        wavelength = parse_wavelength(spec, source=where)
    except WavelengthError as exc:
        if exc.source == where:
            raise
        raise WavelengthError(where, f"{exc.source}: {exc.reason}") from exc
    if memo and len(_RESOLVED) < 512:
        _RESOLVED[spec] = wavelength
    return wavelength


_RESOLVED: dict[str | float, Wavelength] = {}


def check_two_theta_range(two_theta_range: tuple[float, float], source: str) -> tuple[float, float]:
    """Return (lo, hi) in degrees or raise WavelengthError unless 0 ≤ lo < hi ≤ 180."""
    try:
        lo, hi = (float(v) for v in two_theta_range)
    except (TypeError, ValueError) as exc:
        raise WavelengthError(
            f"{source} (2θ range)", f"expected (min, max) in degrees, got {two_theta_range!r}"
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0.0 or hi > 180.0 or lo >= hi:
        raise WavelengthError(
            f"{source} (2θ range)",
            f"2θ range ({lo:g}, {hi:g})° is empty or outside (0, 180); need 0 ≤ min < max ≤ 180",
        )
    return lo, hi


@lru_cache(maxsize=256)
def _lines(wavelength: Wavelength, ka2: bool) -> tuple[tuple[float, float], ...]:
    """(λ, weight) pairs to render: all lines with ``ka2``, else the weighted mean λ alone (memoised)."""
    if ka2 or len(wavelength.lines) == 1:
        return wavelength.lines
    return ((wavelength.angstrom, 1.0),)


def _line_peaks(
    reflections: Reflections, lam: float, weight: float, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """2θ (degrees, ascending) and weight·m|F|²·LP of the reflections visible in [lo, hi] at λ, and the index
    of the first of them (they are consecutive).

    d is descending, so sin θ = λ/(2d) ascends and the visible reflections are one slice, found by bisection
    on sin θ (the test pymatgen applies to |g| = 2 sin θ / λ). LP uses cos 2θ = 1 − 2 sin²θ, cos θ = √(1 −
    sin²θ).
    """
    sin_theta = (0.5 * lam) / reflections.d
    first = 0 if lo <= 0.0 else int(sin_theta.searchsorted(math.sin(math.radians(lo) / 2.0), "left"))
    last = max(first, int(sin_theta.searchsorted(min(1.0, math.sin(math.radians(hi) / 2.0)), "right")))
    intensity = reflections.intensity
    if first > 0 or last < sin_theta.shape[0]:
        sin_theta, intensity = sin_theta[first:last], intensity[first:last]
    sin2 = sin_theta * sin_theta
    cos_2theta = 1.0 - 2.0 * sin2
    lp = (1.0 + cos_2theta * cos_2theta) / (sin2 * np.sqrt(1.0 - sin2))
    two_theta = np.arcsin(sin_theta) * _TWO_DEGREES  # = degrees(2 asin), bit for bit
    return two_theta, (intensity if weight == 1.0 else weight * intensity) * lp, first


_TWO_DEGREES = 360.0 / math.pi
"""2θ in degrees per radian of θ (exactly twice 180/π, so x · this == degrees(2x) bit for bit)."""


def peaks(
    reflections: Reflections,
    wavelength: str | float | Wavelength | None,
    two_theta_range: tuple[float, float] = (0.0, 90.0),
    *,
    ka2: bool = False,
    min_relative_intensity: float = PYMATGEN_SCALED_INTENSITY_TOL,
    source: str = "structure",
) -> PeakList:
    """Stick peaks of ``reflections`` at ``wavelength`` within ``two_theta_range`` (degrees).

    ``wavelength`` is anything :func:`parse_wavelength` accepts; None is an error. Without ``ka2`` the
    intensity-weighted mean λ is used (Cu Kα → 1.541837 Å); with ``ka2`` every line of the source gives its
    own peak with intensity × line weight. I = m|F|²·LP(θ), binned by round(2θ/1e-5°), scaled to max 100;
    peaks with scaled intensity ≤ ``min_relative_intensity`` (on the 0–100 scale, pymatgen's rule) are
    dropped. Each peak reports the d, hkl of its lowest-angle member and the summed multiplicity of its
    members.
    """
    wl = resolve_wavelength(wavelength, source)
    lo, hi = check_two_theta_range(two_theta_range, source)
    return _peak_list(reflections, wl, lo, hi, ka2=ka2, min_relative_intensity=min_relative_intensity)


def _peak_list(
    reflections: Reflections,
    wl: Wavelength,
    lo: float,
    hi: float,
    *,
    ka2: bool = False,
    min_relative_intensity: float = PYMATGEN_SCALED_INTENSITY_TOL,
) -> PeakList:
    """:func:`peaks` on validated inputs (numpy methods rather than functions: fewer wrapper layers)."""
    lines = _lines(wl, ka2)
    mean_angstrom = lines[0][0] if len(lines) == 1 else wl.angstrom
    if len(lines) == 1:
        two_theta, intensity, first = _line_peaks(reflections, lines[0][0], lines[0][1], lo, hi)
        index = None  # peak i is reflection first + i
    else:
        parts = [_line_peaks(reflections, lam, weight, lo, hi) for lam, weight in lines]
        two_theta = np.concatenate([p[0] for p in parts])
        intensity = np.concatenate([p[1] for p in parts])
        index = np.concatenate([np.arange(p[2], p[2] + p[0].shape[0]) for p in parts])
        order = np.argsort(two_theta, kind="stable")
        two_theta, intensity, index = two_theta.take(order), intensity.take(order), index.take(order)
        first = 0
    if two_theta.shape[0] == 0:
        return _empty(mean_angstrom)
    multiplicity = reflections.multiplicity[first : first + two_theta.shape[0]] if index is None else None
    keys = np.rint(two_theta * (1.0 / TWO_THETA_MERGE_TOL_DEG))
    same_bin = keys[1:] == keys[:-1]
    if same_bin.any():  # some peaks share a 1e-5° bin: merge them
        starts = np.concatenate((_ZERO, (~same_bin).nonzero()[0] + 1))
        index = np.arange(first, first + two_theta.shape[0]) if index is None else index
        multiplicity = np.add.reduceat(reflections.multiplicity.take(index), starts)
        intensity = np.add.reduceat(intensity, starts)
        two_theta, index = two_theta.take(starts), index.take(starts)
    elif multiplicity is None:
        multiplicity = reflections.multiplicity.take(index)
    top = intensity.max()
    if not top > 0:
        return _empty(mean_angstrom)
    scaled = intensity * (100.0 / top)
    keep = (scaled > min_relative_intensity).nonzero()[0]
    rep = keep + first if index is None else index.take(keep)
    return PeakList(
        two_theta=two_theta.take(keep),
        intensity=scaled.take(keep),
        d=reflections.d.take(rep),
        hkl=reflections.hkl.take(rep, axis=0),
        multiplicity=multiplicity.take(keep),
        wavelength_angstrom=mean_angstrom,
    )


_ZERO = np.zeros(1, dtype=np.intp)


def _empty(wavelength_angstrom: float) -> PeakList:
    """A PeakList with no peaks."""
    return PeakList(
        two_theta=np.zeros(0),
        intensity=np.zeros(0),
        d=np.zeros(0),
        hkl=np.zeros((0, 3), dtype=np.int64),
        multiplicity=np.zeros(0, dtype=np.int64),
        wavelength_angstrom=wavelength_angstrom,
    )


def d_min_for_range(wavelength: Wavelength, two_theta_max: float, *, ka2: bool = False) -> float:
    """Smallest d (Å) visible up to 2θ_max: d_min = λ_min / (2 sin θ_max), λ_min: shortest rendered line."""
    lam = min(lam for lam, _ in _lines(wavelength, ka2))
    return lam / (2.0 * math.sin(math.radians(two_theta_max) / 2.0))


def simulate(
    structure: Structure,
    wavelength: str | float | Wavelength | None,
    two_theta_range: tuple[float, float] = (0.0, 90.0),
    *,
    default_b: float = 0.0,
    source: str = "structure",
    **peak_options: Any,
) -> PeakList:
    """Stick pattern of ``structure``: :func:`compute_reflections` down to the d of the range's upper end,
    then :func:`peaks` (``peak_options``: ``ka2``, ``min_relative_intensity``).

    Only the reflections the range can show are computed (d ≥ λ_min / (2 sin(2θ_max / 2)), less 1e-9 relative
    so none at the edge is lost to rounding); the wavelength and range are validated once.
    """
    wl = resolve_wavelength(wavelength, source)
    lo, hi = check_two_theta_range(two_theta_range, source)
    d_min = d_min_for_range(wl, hi, ka2=bool(peak_options.get("ka2", False))) * (1.0 - 1e-9)
    reflections = compute_reflections(structure, d_min, default_b=default_b, source=source)
    return _peak_list(reflections, wl, lo, hi, **peak_options)
