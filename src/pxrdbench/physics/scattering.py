"""What scatters: atomic X-ray form factors, and a structure reduced to its scatterers.

The coefficients are the ones pymatgen ships with its XRD calculator
(``pymatgen/analysis/diffraction/atomic_scattering_params.json``: 99 elements, four (a_i, b_i) pairs each,
neutral atoms only). They are read from the installed pymatgen package at run time, never copied.
The functional form is the one pymatgen's ``XRDCalculator`` evaluates, so both codes agree exactly:

    f(s) = Z − 41.78214 · s² · Σ_i a_i · exp(−b_i · s²),     s = sin θ / λ = 1 / (2d)  [Å⁻¹]

f is in electrons, Z is the atomic number. The table holds no ions: an ionic species (``"Fe2+"``) scatters as
its neutral element with Z of the element, exactly as pymatgen treats it.

:func:`scatterer_table` validates a pymatgen Structure and turns it into the arrays a structure factor needs
(positions, occupancy weights per scatterer type, form-factor parameters, reciprocal metric).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.periodic_table import Element

from pxrdbench.errors import StructureError

FORM_FACTOR_S2_PREFACTOR = 41.78214
"""The constant multiplying s² · Σ a_i exp(−b_i s²) in the tabulated fit (Å², as in pymatgen)."""

B_FACTOR_KEYS = ("B_iso", "b_iso", "B", "debye_waller", "debye-waller", "debye_waller_factor")
"""Site properties read as an isotropic displacement parameter B (Å²)."""

U_FACTOR_KEYS = ("U_iso", "u_iso")
"""Site properties read as U_iso (Å²), converted with B = 8π² U."""

_TABLE_PACKAGE = "pymatgen.analysis.diffraction"
_TABLE_FILE = "atomic_scattering_params.json"
_ION_SUFFIX = re.compile(r"^([A-Z][a-z]?)(?:\d*[+-]|[+-]\d*)?$")


@lru_cache(maxsize=1)
def _coefficient_table() -> dict[str, tuple[int, np.ndarray]]:
    """Load {element: (Z, coefficients (n, 2) as (a_i, b_i))} from the installed pymatgen package."""
    text = resources.files(_TABLE_PACKAGE).joinpath(_TABLE_FILE).read_text(encoding="utf-8")
    raw = json.loads(text)
    table: dict[str, tuple[int, np.ndarray]] = {}
    for symbol, coeffs in raw.items():
        z = Element(symbol).Z
        table[symbol] = (z, np.asarray(coeffs, dtype=np.float64).reshape(-1, 2))
    return table


def known_elements() -> tuple[str, ...]:
    """Element symbols with tabulated form factors (sorted)."""
    return tuple(sorted(_coefficient_table()))


def element_symbol(species: str, *, source: str = "structure") -> str:
    """Map a species label (``"Fe"``, ``"Fe2+"``, ``"O2-"``) to the tabulated element symbol.

    Raises StructureError naming ``source`` and the species when the element has no tabulated form factor.
    """
    label = str(species).strip()
    table = _coefficient_table()
    if label in table:
        return label
    match = _ION_SUFFIX.match(label)
    if match and match.group(1) in table:
        return match.group(1)
    bare = match.group(1) if match else label
    raise StructureError(source, f"unknown element {bare!r}: no X-ray form factor is tabulated for it")


def form_factor_parameters(elements: Sequence[str], *, source: str = "structure") -> tuple[np.ndarray, ...]:
    """Atomic numbers Z (n,), Gaussian amplitudes a (n, 4) and widths b (n, 4) in Å² for ``elements``."""
    symbols = tuple(element_symbol(el, source=source) for el in elements)
    return _parameters_of(symbols)


@lru_cache(maxsize=4096)
def _parameters_of(symbols: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """Cached (Z, a, b) arrays for tabulated element symbols (treat the arrays as read-only)."""
    table = _coefficient_table()
    rows = [table[symbol] for symbol in symbols]
    n_terms = max((c.shape[0] for _, c in rows), default=4)
    z = np.array([zz for zz, _ in rows], dtype=np.float64)
    a = np.zeros((len(rows), n_terms))
    b = np.zeros((len(rows), n_terms))
    for i, (_, coeffs) in enumerate(rows):
        a[i, : coeffs.shape[0]] = coeffs[:, 0]
        b[i, : coeffs.shape[0]] = coeffs[:, 1]
    return z, a, b


def form_factors_from_s2(z: np.ndarray, a: np.ndarray, b: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """f(s) = Z − 41.78214 · s² · Σ_i a_i exp(−b_i s²) for parameter arrays and s² (Å⁻²).

    Args:
        z: (n,) atomic numbers; a, b: (n, k) coefficients (a dimensionless, b in Å²); s2: (m,) values of s².

    Returns:
        (n, m) form factors in electrons.
    """
    s2 = np.asarray(s2, dtype=np.float64)
    gauss = (a[:, :, None] * np.exp(-b[:, :, None] * s2)).sum(axis=1)
    return z[:, None] - (FORM_FACTOR_S2_PREFACTOR * s2) * gauss


def form_factors(elements: Sequence[str], s: np.ndarray, *, source: str = "structure") -> np.ndarray:
    """Atomic X-ray form factors f(s) in electrons for each element at each s = sin θ / λ = 1/(2d) (Å⁻¹).

    f(s) = Z − 41.78214 · s² · Σ_i a_i exp(−b_i s²). Returns an array of shape (len(elements), len(s)).
    Unknown elements raise StructureError naming the element and ``source``.
    """
    s_arr = np.atleast_1d(np.asarray(s, dtype=np.float64))
    z, a, b = form_factor_parameters(elements, source=source)
    return form_factors_from_s2(z, a, b, s_arr * s_arr)


@dataclass(frozen=True)
class ScattererTable:
    """A structure reduced to the arrays the structure factor needs.

    Sites are the distinct positions; scatterer types are distinct (element, B) pairs, so a mixed site
    contributes one weight per species. ``weights[s, t]`` is the occupancy of type t on site s.
    """

    frac_coords: np.ndarray  # (N, 3) fractional coordinates
    weights: np.ndarray  # (N, T) occupancies, float64
    type_element: np.ndarray  # (T,) index into ``elements``
    type_b: np.ndarray  # (T,) isotropic B in Å²
    has_b: bool  # whether any B is non-zero
    elements: tuple[str, ...]  # (E,) tabulated element symbols
    z: np.ndarray  # (E,) atomic numbers
    a: np.ndarray  # (E, k) Gaussian amplitudes
    b: np.ndarray  # (E, k) Gaussian widths in Å²
    reciprocal_metric: np.ndarray  # (3, 3) G* = inverse of the metric tensor, Å⁻²
    cell_lengths: np.ndarray  # (3,) |a|, |b|, |c| in Å
    volume: float  # Å³


def site_b_factor(properties: dict[str, Any], default_b: float) -> float:
    """Isotropic B (Å²) from site properties (B keys first, then U keys as B = 8π²U), else ``default_b``."""
    for key in B_FACTOR_KEYS:
        if properties.get(key) is not None:
            return float(properties[key])
    for key in U_FACTOR_KEYS:
        if properties.get(key) is not None:
            return 8.0 * np.pi**2 * float(properties[key])
    return float(default_b)


def _metric_and_volume(matrix: list[list[float]], source: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Reciprocal metric G* = G⁻¹ (Å⁻²), cell lengths (Å) and V = sqrt(det G) (Å³) for lattice rows a, b, c.

    G = M Mᵀ is the metric tensor. Plain-float arithmetic (3 × 3); StructureError if V is not finite or ≤
    1e-6.
    """
    (g00, g01, g02), (_, g11, g12), (_, _, g22) = (
        [sum(x * y for x, y in zip(row_i, row_j, strict=True)) for row_j in matrix] for row_i in matrix
    )
    c00, c01, c02 = g11 * g22 - g12 * g12, g02 * g12 - g01 * g22, g01 * g12 - g02 * g11
    c11, c12, c22 = g00 * g22 - g02 * g02, g01 * g02 - g00 * g12, g00 * g11 - g01 * g01
    det = g00 * c00 + g01 * c01 + g02 * c02
    volume = math.sqrt(det) if det > 0 else (det if not math.isfinite(det) else 0.0)
    if not math.isfinite(volume) or volume <= 1e-6:
        raise StructureError(source, f"cell volume is {volume!r} Å³ (must be finite and > 1e-6)")
    c00, c01, c02, c11, c12, c22 = c00 / det, c01 / det, c02 / det, c11 / det, c12 / det, c22 / det
    inverse = np.array([[c00, c01, c02], [c01, c11, c12], [c02, c12, c22]])
    lengths = np.array([math.sqrt(g00), math.sqrt(g11), math.sqrt(g22)])
    return inverse, lengths, volume


def scatterer_table(
    structure: Structure, *, default_b: float = 0.0, source: str = "structure"
) -> ScattererTable:
    """Validate ``structure`` and reduce it to a :class:`ScattererTable`.

    B per site from ``site.properties`` (keys :data:`B_FACTOR_KEYS`, or :data:`U_FACTOR_KEYS` as B = 8π²U),
    else ``default_b`` (Å²). Raises StructureError naming ``source`` for: no sites, non-finite or ≤ 1e-6 Å³
    cell volume, non-finite coordinates or B, non-positive occupancy, an element without tabulated form
    factor.
    """
    n_sites = len(structure)
    if n_sites == 0:
        raise StructureError(source, "structure has no sites")
    reciprocal_metric, lengths, volume = _metric_and_volume(structure.lattice.matrix.tolist(), source)
    coords = np.array([site.frac_coords for site in structure], dtype=np.float64)
    if not math.isfinite(float(coords.sum())):  # NaN and inf propagate into the sum
        raise StructureError(source, "site coordinates are not finite (NaN or inf)")
    types: dict[tuple[str, float], int] = {}
    entries: list[tuple[int, int, float]] = []
    for i, site in enumerate(structure):
        props = site.properties
        b_value = site_b_factor(props, default_b) if props else float(default_b)
        if not math.isfinite(b_value):
            raise StructureError(source, f"site {i}: displacement parameter B is {b_value!r} Å²")
        for species, occupancy in site.species.items():
            label = species.symbol if type(species) is Element else str(species)
            symbol = _symbol_cache.get(label) or _symbol_cache.setdefault(
                label, element_symbol(label, source=source)
            )
            if not 0 < occupancy < math.inf:
                raise StructureError(source, f"site {i}: occupancy of {symbol} is {occupancy!r}")
            entries.append((i, types.setdefault((symbol, b_value), len(types)), float(occupancy)))
    weights = np.zeros((n_sites, len(types)))
    for i, t, occupancy in entries:
        weights[i, t] += occupancy
    elements = tuple(dict.fromkeys(symbol for symbol, _ in types))
    z, a, b = _parameters_of(elements)
    return ScattererTable(
        frac_coords=coords,
        weights=weights,
        type_element=np.array([elements.index(symbol) for symbol, _ in types], dtype=np.int64),
        type_b=np.array([bv for _, bv in types], dtype=np.float64),
        has_b=any(bv != 0.0 for _, bv in types),
        elements=elements,
        z=z,
        a=a,
        b=b,
        reciprocal_metric=reciprocal_metric,
        cell_lengths=lengths,
        volume=volume,
    )


_symbol_cache: dict[str, str] = {}
