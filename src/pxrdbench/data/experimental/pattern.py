"""A measured powder pattern and its conversion onto a view's 2θ grid.

Every experimental loader returns :class:`ExperimentalPattern`. :func:`to_grid` is the one place where a
measured pattern enters a view: its 2θ axis is moved to the view's wavelength by Bragg's law (each point keeps
its d-spacing, 2θ' = 2 asin(λ'/λ · sin θ)), resampled onto the grid by linear interpolation, masked where the
measurement does not reach (nothing is extrapolated) and normalised the same way simulated patterns are.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Structure

from pxrdbench.errors import ConfigError, InputError, PatternError, WavelengthError, did_you_mean
from pxrdbench.physics.wavelength import Wavelength, parse_wavelength, remap_pattern
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, crystal_system_index  # noqa: F401 (re-exported)

NORMALISATIONS: tuple[str, ...] = ("max", "none")


@dataclass
class ExperimentalPattern:
    """One measured powder pattern.

    Attributes:
        id: unique name (``"rruff908:17"``, ``"pdcif15:br1322Isup2"``, file stem for single files).
        two_theta: scattering angles 2θ in degrees, strictly increasing.
        intensity: intensities (arbitrary units, finite; may be negative after background subtraction).
        wavelength: the measurement's wavelength; ``None`` only when neither the file nor the caller gave one.
        labels: ground truth where known: ``crystal_system`` (0–6, see :data:`CRYSTAL_SYSTEMS`),
            ``space_group`` (1–230), ``formula``, ``elements``, ``lattice`` (a, b, c in Å; α, β, γ in °),
            ``n_phases``.
        structure: the refined / labelled crystal structure when there is exactly one.
        provenance: where it came from: ``path``, ``format``, ``institution``, ``index``, ``notes`` ...
    """

    id: str
    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: Wavelength | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    structure: Structure | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The id plus the file it was read from, for error messages."""
        path = self.provenance.get("path")
        return f"{self.id} ({path})" if path else self.id

    def validate(self) -> ExperimentalPattern:
        """Check the arrays; raise :class:`PatternError` naming the pattern and the file otherwise.

        Rules: 1-D arrays of equal length ≥ 2; all values finite; 2θ ≥ 0 and strictly increasing.
        """
        tt = np.asarray(self.two_theta, dtype=float)
        y = np.asarray(self.intensity, dtype=float)
        if tt.size == 0 or y.size == 0:
            raise PatternError(self.source, "the pattern is empty (no data points)")
        if tt.ndim != 1 or y.ndim != 1 or tt.shape != y.shape:
            raise PatternError(
                self.source, f"2θ and intensity must be 1-D of equal length, got {tt.shape} and {y.shape}"
            )
        if tt.size < 2:
            raise PatternError(self.source, f"a pattern needs at least 2 points, got {tt.size}")
        for name, arr in (("2θ", tt), ("intensity", y)):
            bad = ~np.isfinite(arr)
            if bad.any():
                first = int(np.argmax(bad))
                raise PatternError(
                    self.source,
                    f"{int(bad.sum())} non-finite {name} value(s) (NaN/inf), first at point {first}",
                )
        if tt.min() < 0:
            raise PatternError(self.source, f"negative 2θ ({tt.min():g}°); 2θ must be ≥ 0")
        steps = np.diff(tt)
        if (steps <= 0).any():
            first = int(np.argmax(steps <= 0))
            raise PatternError(
                self.source,
                f"2θ is not strictly increasing at point {first + 1} ({tt[first]:g}° → {tt[first + 1]:g}°)",
            )
        self.two_theta, self.intensity = tt, y
        return self


def make_pattern(
    id: str,
    two_theta: np.ndarray,
    intensity: np.ndarray,
    wavelength: Wavelength | None,
    *,
    labels: dict[str, Any] | None = None,
    structure: Structure | None = None,
    provenance: dict[str, Any] | None = None,
) -> ExperimentalPattern:
    """Build and validate a pattern; a scan recorded from high to low 2θ is reversed (and noted)."""
    tt = np.asarray(two_theta, dtype=float)
    y = np.asarray(intensity, dtype=float)
    prov = dict(provenance or {})
    if tt.ndim == 1 and tt.shape == y.shape and tt.size >= 2 and np.all(np.diff(tt) < 0):
        tt, y = tt[::-1].copy(), y[::-1].copy()
        prov.setdefault("notes", []).append("scan recorded from high to low 2θ; reversed")
    pattern = ExperimentalPattern(id, tt, y, wavelength, dict(labels or {}), structure, prov)
    return pattern.validate()


def to_grid(
    pattern: ExperimentalPattern,
    grid_two_theta: np.ndarray,
    grid_wavelength: Wavelength | float | str,
    *,
    normalise: str = "max",
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Put a measured pattern on a view's grid: returns ``(intensity, mask)`` of the grid's length.

    1. Bragg conversion to the grid's wavelength: 2θ' = 2 asin(λ_grid / λ_meas · sin(2θ / 2)), degrees, with
       λ the intensity-weighted mean of each (Å); points unreachable at λ_grid (sin θ' > 1) are dropped.
    2. Linear interpolation of intensity onto ``grid_two_theta`` (degrees).
    3. Grid points outside the converted measured range get ``mask=False`` and intensity 0 (never invented).
    4. ``normalise="max"``: the largest valid value becomes ``scale``; ``"none"`` keeps the values.

    Background is not subtracted here. Raises :class:`WavelengthError` when the pattern has no wavelength and
    :class:`PatternError` when the measured range does not overlap the grid.
    """
    if normalise not in NORMALISATIONS:
        raise did_you_mean(normalise, NORMALISATIONS, "normalisation")
    if pattern.wavelength is None:
        raise WavelengthError(
            pattern.source,
            "the pattern has no wavelength (the file states none); "
            "reload it with wavelength=... to convert it",
        )
    grid = np.asarray(grid_two_theta, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ConfigError(f"grid_two_theta must be a non-empty finite 1-D array, got shape {grid.shape}")
    target = parse_wavelength(grid_wavelength, source=f"{pattern.source} (grid wavelength)")
    moved = remap_pattern(
        pattern.two_theta, pattern.intensity, pattern.wavelength, target, source=pattern.source
    )
    out = np.zeros(grid.shape, dtype=float)
    mask = np.zeros(grid.shape, dtype=bool)
    if moved.two_theta.size >= 2:
        lo, hi = moved.two_theta[0], moved.two_theta[-1]
        mask = (grid >= lo) & (grid <= hi)
    if not mask.any():
        rng = f"{moved.two_theta[0]:.3f}–{moved.two_theta[-1]:.3f}°" if moved.two_theta.size else "nothing"
        raise PatternError(
            pattern.source,
            f"measured range at {target.angstrom:.5f} Å ({rng}) does not overlap the grid "
            f"{grid.min():.3f}–{grid.max():.3f}°",
        )
    out[mask] = np.interp(grid[mask], moved.two_theta, moved.intensity)
    if normalise == "max":
        peak = out[mask].max()
        if not peak > 0:
            raise PatternError(pattern.source, "cannot max-normalise: no positive intensity on the grid")
        out[mask] *= scale / peak
    return out, mask


@lru_cache(maxsize=1)
def _symbol_tables() -> tuple[dict[str, int], dict[str, int]]:
    """Hermann–Mauguin symbols of the 530 spglib Hall settings → number (exact; without '_' if unique)."""
    import spglib

    exact: dict[str, int] = {}
    loose: dict[str, set[int]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's notice about its error handling
        types = [spglib.get_spacegroup_type(hall) for hall in range(1, 531)]
    for t in types:
        names = {t.international_short, t.international_full, *t.international.split("=")}
        for name in names:
            key = "".join(name.split())
            exact.setdefault(key, t.number)
            loose.setdefault(key.replace("_", ""), set()).add(t.number)
    unique = {k: next(iter(v)) for k, v in loose.items() if len(v) == 1}
    return exact, unique


def space_group_number(symbol: str) -> int:
    """Space-group number of a Hermann–Mauguin symbol in common spellings.

    Accepts ``"P2_1/c"``, ``"P21/c"``, ``"P 1 21/n 1"``, ``"P 63 m c"``, ``"R -3 c:H"``, ``"P n"``,
    ``"P 4 M M"``; raises
    :class:`InputError` for a symbol that is unknown or ambiguous without screw-axis underscores.
    """
    tokens = str(symbol).strip().strip("'\"").split(":")[0].split()
    key = "".join(tokens)
    variants = [key, key[:1].upper() + key[1:].lower()]
    if len(tokens) == 2:  # monoclinic short form "P n" → "P 1 n 1"
        variants.append(f"{tokens[0]}1{tokens[1]}1")
    exact, loose = _symbol_tables()
    for variant in variants:
        if variant in exact:
            return exact[variant]
        if variant.replace("_", "") in loose:
            return loose[variant.replace("_", "")]
    raise InputError(f"space group {symbol!r}", "unknown or ambiguous Hermann–Mauguin symbol")


def structure_labels(structure: Structure, *, symprec: float = 0.01) -> dict[str, Any]:
    """Labels of a structure: space group and crystal system (spglib), formula, elements, lattice."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    labels: dict[str, Any] = {
        "formula": structure.composition.reduced_formula,
        "elements": sorted({el.symbol for el in structure.composition.elements}),
        "lattice": tuple(float(v) for v in (*structure.lattice.abc, *structure.lattice.angles)),
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # spglib's notice about its error handling
            sg = int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except Exception:  # noqa: BLE001 - spglib fails on some disordered cells; labels stay partial
        return labels
    labels["space_group"] = sg
    labels["crystal_system"] = crystal_system_index(sg)
    return labels


def read_text(path: str | Path) -> str:
    """The text of a data file; :class:`InputError` when missing, :class:`PatternError` when empty."""
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "file does not exist")
    text = p.read_text(encoding="utf-8", errors="replace").lstrip("\ufeff")
    if not text.strip():
        raise PatternError(str(p), "the file is empty")
    return text


def resolve_wavelength(
    file_wavelength: Wavelength | None, caller: Wavelength | float | str | None, source: str, notes: list[str]
) -> Wavelength | None:
    """The file's wavelength when it states one, else the caller's, else ``None``.

    A caller's value that disagrees with the file's (by more than 1e-4 Å) is ignored and the fact noted.
    """
    given = parse_wavelength(caller, source=f"{source} (wavelength=)") if caller is not None else None
    if file_wavelength is None:
        return given
    if given is not None and abs(given.angstrom - file_wavelength.angstrom) > 1e-4:
        notes.append(
            f"caller wavelength {given.angstrom:.5f} Å ignored: "
            f"the file states {file_wavelength.angstrom:.5f} Å"
        )
    return file_wavelength
