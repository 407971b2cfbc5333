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


@lru_cache(maxsize=1)
def _parameter_arrays() -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """{symbol: row} and read-only Z (n,), a (n, k), b (n, k) of every tabulated element (k = most terms)."""
    table = _coefficient_table()
    n_terms = max(coeffs.shape[0] for _, coeffs in table.values())
    z = np.array([zz for zz, _ in table.values()], dtype=np.float64)
    a, b = np.zeros((len(table), n_terms)), np.zeros((len(table), n_terms))
    for i, (_, coeffs) in enumerate(table.values()):  # missing terms stay a = b = 0 and add nothing
        a[i, : coeffs.shape[0]] = coeffs[:, 0]
        b[i, : coeffs.shape[0]] = coeffs[:, 1]
    for array in (z, a, b):
        array.setflags(write=False)
    return {symbol: i for i, symbol in enumerate(table)}, z, a, b


@lru_cache(maxsize=4096)
def _parameters_of(symbols: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """(Z, a, b) rows of tabulated element symbols, cached (treat the arrays as read-only)."""
    row_of, z, a, b = _parameter_arrays()
    rows = [row_of[symbol] for symbol in symbols]
    return z.take(rows), a.take(rows, axis=0), b.take(rows, axis=0)


def form_factors_from_s2(z: np.ndarray, a: np.ndarray, b: np.ndarray, s2: np.ndarray) -> np.ndarray:
    """f(s) = Z − 41.78214 · s² · Σ_i a_i exp(−b_i s²) for parameter arrays and s² (Å⁻²).

    Args:
        z: (n,) atomic numbers; a, b: (n, k) coefficients (a dimensionless, b in Å²); s2: (m,) values of s².

    Returns:
        (n, m) form factors in electrons. The Gaussian sums of all n elements are one batched matrix
        product (n, 1, k) @ (n, k, m): few numpy calls, as the sizes are small.
    """
    s2 = np.asarray(s2, dtype=np.float64)
    gauss = (a[:, None, :] @ np.exp(np.multiply.outer(b, -s2)))[:, 0]
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


def _metric_and_volume(matrix: np.ndarray, source: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Reciprocal metric G* = G⁻¹ (Å⁻²), cell lengths (Å) and V = sqrt(det G) (Å³) for lattice rows a, b, c.

    G = M Mᵀ is the metric tensor (G_ij = a_i · a_j); G* is its inverse by cofactors, G*_ij = C_ij / det G.
    Written out in plain floats (a 3 × 3 costs less so than through numpy). StructureError if V is not finite
    or ≤ 1e-6.
    """
    (a0, a1, a2), (b0, b1, b2), (c0, c1, c2) = matrix.tolist()
    g00, g11, g22 = a0 * a0 + a1 * a1 + a2 * a2, b0 * b0 + b1 * b1 + b2 * b2, c0 * c0 + c1 * c1 + c2 * c2
    g01, g02, g12 = a0 * b0 + a1 * b1 + a2 * b2, a0 * c0 + a1 * c1 + a2 * c2, b0 * c0 + b1 * c1 + b2 * c2
    c00, c01, c02 = g11 * g22 - g12 * g12, g02 * g12 - g01 * g22, g01 * g12 - g02 * g11
    c11, c12, c22 = g00 * g22 - g02 * g02, g01 * g02 - g00 * g12, g00 * g11 - g01 * g01
    det = g00 * c00 + g01 * c01 + g02 * c02
    volume = math.sqrt(det) if det > 0 else (det if not math.isfinite(det) else 0.0)
    if not math.isfinite(volume) or volume <= 1e-6:
        raise StructureError(source, f"cell volume is {volume!r} Å³ (must be finite and > 1e-6)")
    inv = 1.0 / det
    c00, c01, c02, c11, c12, c22 = c00 * inv, c01 * inv, c02 * inv, c11 * inv, c12 * inv, c22 * inv
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
    factor. Site data are read once through the cheapest public accessors (``sites``, ``frac_coords``,
    ``species.items()``); a species is read as its element (``Species.symbol``: Fe2+ → Fe).
    """
    sites = structure.sites
    n_sites = len(sites)
    if n_sites == 0:
        raise StructureError(source, "structure has no sites")
    reciprocal_metric, lengths, volume = _metric_and_volume(structure.lattice.matrix, source)
    coords = np.array([site.frac_coords for site in sites], dtype=np.float64)
    if not math.isfinite(coords.sum()):  # NaN and inf propagate into the sum
        raise StructureError(source, "site coordinates are not finite (NaN or inf)")
    default = float(default_b)
    types: dict[tuple[str, float], int] = {}
    entries: list[tuple[int, int, float]] = []
    for i, site in enumerate(sites):
        props = site.properties
        b_value = site_b_factor(props, default) if props else default
        if not math.isfinite(b_value):
            raise StructureError(source, f"site {i}: displacement parameter B is {b_value!r} Å²")
        for species, occupancy in site.species.items():
            symbol = _symbol_cache.get(species.symbol) or _remember_symbol(species.symbol, source)
            if not 0 < occupancy < math.inf:
                raise StructureError(source, f"site {i}: occupancy of {symbol} is {occupancy!r}")
            entries.append((i, types.setdefault((symbol, b_value), len(types)), occupancy))
    n_types = len(types)
    if len(entries) == n_sites and all(occupancy == 1.0 for _, _, occupancy in entries):
        weights = _identity(n_types).take([t for _, t, _ in entries], axis=0)  # ordered, fully occupied
    else:  # two species of one site can share a type (Fe2+ and Fe3+ are both Fe): add them up
        weights = np.zeros((n_sites, n_types))
        for i, t, occupancy in entries:
            weights[i, t] += occupancy
    has_b = any(b_value != 0.0 for _, b_value in types)
    if has_b:
        elements = tuple(dict.fromkeys(symbol for symbol, _ in types))
        type_element = np.array([elements.index(symbol) for symbol, _ in types], dtype=np.int64)
        type_b = np.array([b_value for _, b_value in types], dtype=np.float64)
    else:  # every B is 0: the types are the elements, in order
        elements = tuple(symbol for symbol, _ in types)
        type_element, type_b = _constant_rows(n_types)
    z, a, b = _parameters_of(elements)
    return ScattererTable(
        frac_coords=coords,
        weights=weights,
        type_element=type_element,
        type_b=type_b,
        has_b=has_b,
        elements=elements,
        z=z,
        a=a,
        b=b,
        reciprocal_metric=reciprocal_metric,
        cell_lengths=lengths,
        volume=volume,
    )


def _remember_symbol(label: str, source: str) -> str:
    """:func:`element_symbol` of ``label``, stored in the label cache (unknown labels raise, unstored)."""
    symbol = _symbol_cache[label] = element_symbol(label, source=source)
    return symbol


@lru_cache(maxsize=64)
def _identity(n_types: int) -> np.ndarray:
    """Read-only T × T identity: its row t is the weight row of a site fully occupied by type t."""
    eye = np.eye(n_types)
    eye.setflags(write=False)
    return eye


@lru_cache(maxsize=64)
def _constant_rows(n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """Read-only (0, 1, …, T − 1) as int64 and T zeros: type → element map and B when no site has a B."""
    index, zeros = np.arange(n_types, dtype=np.int64), np.zeros(n_types)
    index.setflags(write=False)
    zeros.setflags(write=False)
    return index, zeros


_symbol_cache: dict[str, str] = {}
