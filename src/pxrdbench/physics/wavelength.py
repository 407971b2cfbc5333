"""X-ray wavelengths and the geometry of Bragg's law.

Bragg's law: λ = 2 d sin θ, so d = λ / (2 sin θ) (Å) and the scattering vector magnitude
q = 4π sin θ / λ = 2π / d (Å⁻¹). Photon energy and wavelength: λ[Å] = hc / E = 12.39842 / E[keV].

Characteristic lines are the emission values pymatgen tabulates (Å). A named ``Kα`` source is the Kα1/Kα2
doublet with intensity ratio 2:1, whose weighted mean is the familiar single value (Cu Kα = 1.54184 Å);
``Kα1`` is the single line. There is deliberately no default wavelength anywhere: a caller who does not
know the wavelength of a measurement must say so and gets a :class:`~pxrdbench.errors.WavelengthError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from pxrdbench.errors import PatternError, WavelengthError

HC_KEV_ANGSTROM = 12.398419843320026
"""h·c in keV·Å (CODATA 2018): λ[Å] = HC_KEV_ANGSTROM / E[keV]."""

KA2_TO_KA1_RATIO = 0.5
"""Intensity ratio I(Kα2)/I(Kα1) used for named Kα doublets."""

_LINES: dict[str, tuple[float, float]] = {
    # element: (Kα1, Kα2) in Å
    "Cu": (1.54056, 1.54439),
    "Mo": (0.70930, 0.71359),
    "Co": (1.78896, 1.79285),
    "Fe": (1.93604, 1.93998),
    "Cr": (2.28970, 2.29361),
    "Ag": (0.559421, 0.563813),
}


@dataclass(frozen=True)
class Wavelength:
    """A monochromatic line or a weighted set of lines.

    Attributes:
        name: label for provenance (``"CuKa"``, ``"0.6199A"``, ``"20keV"``).
        lines: ``((λ₁, w₁), (λ₂, w₂), ...)`` wavelengths in Å with relative weights (w₁ = 1 for the main line).
    """

    name: str
    lines: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.lines:
            raise WavelengthError(self.name, "a wavelength needs at least one line")
        for lam, weight in self.lines:
            if not np.isfinite(lam) or lam <= 0:
                raise WavelengthError(self.name, f"wavelength must be positive and finite, got {lam!r} Å")
            if not np.isfinite(weight) or weight <= 0:
                raise WavelengthError(self.name, f"line weight must be positive, got {weight!r}")

    @property
    def angstrom(self) -> float:
        """Intensity-weighted mean wavelength (Å); the single value to use when doublets are not rendered."""
        lams = np.array([lam for lam, _ in self.lines])
        weights = np.array([w for _, w in self.lines])
        return float((lams * weights).sum() / weights.sum())

    @property
    def kev(self) -> float:
        """Photon energy (keV) of the mean wavelength."""
        return HC_KEV_ANGSTROM / self.angstrom

    @property
    def primary(self) -> Wavelength:
        """The strongest line alone (Kα1 of a doublet)."""
        lam, _ = max(self.lines, key=lambda lw: lw[1])
        return Wavelength(f"{self.name}[primary]", ((lam, 1.0),))


def _named_sources() -> dict[str, Wavelength]:
    table: dict[str, Wavelength] = {}
    for element, (ka1, ka2) in _LINES.items():
        table[f"{element}Ka"] = Wavelength(f"{element}Ka", ((ka1, 1.0), (ka2, KA2_TO_KA1_RATIO)))
        table[f"{element}Ka1"] = Wavelength(f"{element}Ka1", ((ka1, 1.0),))
        table[f"{element}Ka2"] = Wavelength(f"{element}Ka2", ((ka2, 1.0),))
    return table


NAMED_SOURCES: dict[str, Wavelength] = _named_sources()
"""Named sources: ``CuKa`` (doublet), ``CuKa1``, ``CuKa2`` and the same for Mo, Co, Fe, Cr, Ag."""

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def parse_wavelength(spec: str | float | Wavelength | None, *, source: str = "wavelength") -> Wavelength:
    """Turn a user's wavelength into a :class:`Wavelength`.

    Accepts a named source (``"CuKa"``, ``"MoKa1"``; case-insensitive, ``α`` allowed), a number in Å
    (``1.5406``, ``"1.5406"``, ``"1.5406A"``), or an energy (``"20keV"``). ``None`` is an error: pxrdbench
    never assumes Cu Kα for a pattern whose wavelength is unknown.
    """
    if isinstance(spec, Wavelength):
        return spec
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        raise WavelengthError(
            source, "no wavelength given; pass one explicitly (e.g. 'CuKa', '1.5406' in Å or '20keV')"
        )
    if isinstance(spec, (int, float, np.floating)):
        return Wavelength(f"{float(spec):g}A", ((float(spec), 1.0),))
    text = str(spec).strip().replace("α", "a").replace("Å", "A")
    for name, wl in NAMED_SOURCES.items():
        if text.lower() == name.lower():
            return wl
    if m := re.fullmatch(_NUMBER + r"\s*kev", text, flags=re.IGNORECASE):
        energy = float(m.group(1))
        if energy <= 0:
            raise WavelengthError(source, f"photon energy must be positive, got {text!r}")
        return Wavelength(f"{energy:g}keV", ((HC_KEV_ANGSTROM / energy, 1.0),))
    if m := re.fullmatch(r"(-?" + _NUMBER[1:] + r"\s*(?:A|angstrom)?", text, flags=re.IGNORECASE):
        return Wavelength(f"{float(m.group(1)):g}A", ((float(m.group(1)), 1.0),))
    known = ", ".join(sorted(NAMED_SOURCES))
    raise WavelengthError(
        source, f"cannot read wavelength {spec!r}; use a number in Å, '<E>keV' or one of {known}"
    )


def two_theta_to_d(two_theta_deg: np.ndarray | float, wavelength_angstrom: float) -> np.ndarray:
    """d = λ / (2 sin θ) in Å for 2θ in degrees (2θ = 0 gives inf)."""
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2.0
    with np.errstate(divide="ignore"):
        return wavelength_angstrom / (2.0 * np.sin(theta))


def d_to_two_theta(d_angstrom: np.ndarray | float, wavelength_angstrom: float) -> np.ndarray:
    """2θ = 2 asin(λ / 2d) in degrees; NaN where λ / 2d > 1 (the reflection is not reachable)."""
    ratio = wavelength_angstrom / (2.0 * np.asarray(d_angstrom, dtype=float))
    with np.errstate(invalid="ignore"):
        out = np.degrees(2.0 * np.arcsin(np.where(ratio <= 1.0, ratio, np.nan)))
    return out


def two_theta_to_q(two_theta_deg: np.ndarray | float, wavelength_angstrom: float) -> np.ndarray:
    """q = 4π sin θ / λ in Å⁻¹ for 2θ in degrees."""
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2.0
    return 4.0 * np.pi * np.sin(theta) / wavelength_angstrom


def q_to_two_theta(q_inv_angstrom: np.ndarray | float, wavelength_angstrom: float) -> np.ndarray:
    """2θ = 2 asin(q λ / 4π) in degrees; NaN where unreachable."""
    ratio = np.asarray(q_inv_angstrom, dtype=float) * wavelength_angstrom / (4.0 * np.pi)
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(ratio <= 1.0, ratio, np.nan)))


def d_to_q(d_angstrom: np.ndarray | float) -> np.ndarray:
    """q = 2π / d (Å⁻¹)."""
    return 2.0 * np.pi / np.asarray(d_angstrom, dtype=float)


def convert_two_theta(
    two_theta_deg: np.ndarray | float, from_wavelength: float, to_wavelength: float
) -> np.ndarray:
    """Re-express 2θ measured at λ at another wavelength λ': 2θ' = 2 asin(λ'/λ · sin θ) (degrees).

    Angles whose image would need sin θ' > 1 are returned as NaN (they cannot be observed at λ').
    """
    theta = np.radians(np.asarray(two_theta_deg, dtype=float)) / 2.0
    ratio = (to_wavelength / from_wavelength) * np.sin(theta)
    with np.errstate(invalid="ignore"):
        return np.degrees(2.0 * np.arcsin(np.where(ratio <= 1.0, ratio, np.nan)))


@dataclass(frozen=True)
class RemappedPattern:
    """A pattern re-expressed at another wavelength, with what could not be kept.

    Attributes:
        two_theta: new 2θ values (degrees), strictly increasing.
        intensity: intensities of the kept points (unchanged values; Bragg re-mapping moves, not rescales).
        n_dropped: number of input points with no image at the new wavelength.
        dropped_two_theta_range: (min, max) of the dropped input 2θ (degrees), or None.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    n_dropped: int
    dropped_two_theta_range: tuple[float, float] | None


def remap_pattern(
    two_theta_deg: np.ndarray,
    intensity: np.ndarray,
    from_wavelength: Wavelength | float | str,
    to_wavelength: Wavelength | float | str,
    *,
    source: str = "pattern",
) -> RemappedPattern:
    """Move a measured pattern to another wavelength by Bragg's law (each point keeps its d-spacing).

    Points that cannot be observed at the target wavelength (λ'/λ · sin θ > 1) are dropped and reported
    in the result, never silently. Both wavelengths are required.
    """
    lam_from = parse_wavelength(from_wavelength, source=f"{source} (measured wavelength)").angstrom
    lam_to = parse_wavelength(to_wavelength, source=f"{source} (target wavelength)").angstrom
    tt = np.asarray(two_theta_deg, dtype=float)
    y = np.asarray(intensity, dtype=float)
    if tt.shape != y.shape or tt.ndim != 1:
        raise PatternError(
            source, f"2θ and intensity must be 1-D of equal length, got {tt.shape} and {y.shape}"
        )
    new = convert_two_theta(tt, lam_from, lam_to)
    keep = np.isfinite(new)
    dropped = tt[~keep]
    rng = (float(dropped.min()), float(dropped.max())) if dropped.size else None
    return RemappedPattern(new[keep], y[keep], int(dropped.size), rng)
