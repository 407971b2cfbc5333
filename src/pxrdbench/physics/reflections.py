"""Structure → reflections: d-spacings, multiplicities and m·|F|², wavelength independent and vectorised.

For every reciprocal-lattice point g = h a* + k b* + l c* with 0 < |g| ≤ 1/d_min (crystallographic reciprocal
lattice, no 2π, so |g| = 1/d in Å⁻¹) the structure factor is

    F(h) = Σ_j occ_j · f_j(s) · exp(−B_j s²) · exp(2πi h·x_j),     s = sin θ / λ = |g| / 2 = 1 / (2d)  [Å⁻¹]

with f_j the tabulated form factor (:mod:`pxrdbench.physics.scattering`), occ_j the occupancy of species j on
its site (mixed and partially occupied sites contribute one term per species), B_j the isotropic displacement
parameter (Å²) and x_j fractional coordinates. Form factors are real (no anomalous dispersion), so Friedel's
law |F(h)| = |F(−h)| holds and only the half space h > 0 | (h = 0, k > 0) | (h = k = 0, l > 0) is computed.

Lattice points whose d agree to a relative D_RELATIVE_MERGE_TOL = 1e-9 merge into one reflection (symmetry
equivalents and exact coincidences such as cubic (300)/(221)): multiplicity m = number of lattice points (both
Friedel mates), intensity = Σ |F|² = m·|F|² for one orbit (electrons²). Relation to pymatgen's merge rule
(peaks whose 2θ round to the same multiple of 1e-5° are one peak): Δ2θ[°] = (360/π)·tan θ·Δd/d, so Δd/d = 1e-9
is < 1e-7° for 2θ < 120° and < 1e-5° for 2θ < 178.7°: reflections only merge lattice points pymatgen always
puts in one peak, and :func:`pxrdbench.physics.peaks.peaks` applies pymatgen's own 2θ binning at the chosen
wavelength (near-coincident orbits of a nearly hexagonal cell, 1e-8 apart in d, are merged or not exactly as
pymatgen does). Nothing is dropped here, not even systematic absences (|F|² at float-noise level): pymatgen
counts such lattice points in the hkl lists of the peak they coincide with, and drops the peaks (after
Lorentz-polarisation) whose scaled intensity is ≤ 1e-3 of 100, which :func:`~pxrdbench.physics.peaks.peaks`
does too. The representative hkl of a reflection is the lexicographically largest of its lattice points
((2, 0, 0) for {200}, (1, 0, 1) rather than (1, 0, −1)).
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pymatgen.core import Structure

from pxrdbench.errors import InputError
from pxrdbench.physics.scattering import ScattererTable, form_factors_from_s2, scatterer_table

D_RELATIVE_MERGE_TOL = 1e-9
"""Lattice points with |Δd|/d below this merge into one reflection."""

_CHUNK_ENTRIES = 4_000_000
"""Complex entries of one intermediate array (64 MB); larger index boxes are processed in slabs of h."""


@dataclass(frozen=True)
class Reflections:
    """Wavelength-independent reflection list of one structure.

    Attributes:
        d: (R,) d-spacings in Å, strictly descending. hkl: (R, 3) int representative Miller indices
        (lexicographically largest lattice point of the reflection). multiplicity: (R,) int number of merged
        lattice points. intensity: (R,) float64 m·|F|² in electrons² (absolute; no Lorentz-polarisation
        factor).
    """

    d: np.ndarray
    hkl: np.ndarray
    multiplicity: np.ndarray
    intensity: np.ndarray

    def __len__(self) -> int:
        return int(self.d.shape[0])

    def to_dict(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (for npz caches)."""
        return {"d": self.d, "hkl": self.hkl, "multiplicity": self.multiplicity, "intensity": self.intensity}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reflections:
        """Rebuild from :meth:`to_dict` output (dtypes normalised)."""
        return cls(
            d=np.asarray(data["d"], dtype=np.float64),
            hkl=np.asarray(data["hkl"], dtype=np.int64).reshape(-1, 3),
            multiplicity=np.asarray(data["multiplicity"], dtype=np.int64),
            intensity=np.asarray(data["intensity"], dtype=np.float64),
        )


def _sphere_points(
    metric: np.ndarray, cell_lengths: np.ndarray, g2_max: float
) -> tuple[tuple[int, int, int], np.ndarray, np.ndarray]:
    """Lattice points of one Friedel half space with 0 < g² ≤ g2_max, sorted by g².

    g² = hᵀ G* h (G* the reciprocal metric tensor, Å⁻²). Since h = g·a, |h| ≤ |g|·|a| bounds an index box
    [0, H] × [−K, K] × [−L, L]; the half space is h > 0, or h = 0 and k > 0, or h = k = 0 and l > 0.

    Returns:
        (H, K, L); flat C-order indices of the points into the (H+1, 2K+1, 2L+1) box, which increase with
        the lexicographic order of (h, k, l); and their g² (both sorted by g²).
    """
    limit = g2_max * (1.0 + 1e-12)
    radius = math.sqrt(limit) * (1.0 + 1e-9)
    n_h, n_k, n_l = (int(math.floor(radius * float(length))) for length in cell_lengths)
    h = np.arange(0.0, n_h + 1.0)
    k = np.arange(-n_k, n_k + 1.0)
    ell = np.arange(-n_l, n_l + 1.0)
    (m00, m01, m02), (_, m11, m12), (_, _, m22) = metric.tolist()
    plane = (m00 * h * h)[:, None] + (m11 * k * k + (2.0 * m01 * h)[:, None] * k)  # (H+1, 2K+1)
    slope = (2.0 * m02 * h)[:, None] + 2.0 * m12 * k  # coefficient of l
    g2 = (plane[:, :, None] + slope[:, :, None] * ell) + m22 * ell * ell
    inside = g2 <= limit
    inside[0, :n_k, :] = False  # h = 0, k < 0
    inside[0, n_k, : n_l + 1] = False  # h = k = 0, l ≤ 0
    flat = np.flatnonzero(inside)
    g2_points = g2.ravel()[flat]
    order = np.argsort(g2_points)
    return (n_h, n_k, n_l), flat[order], g2_points[order]


def _structure_factors(table: ScattererTable, bounds: tuple[int, int, int], flat: np.ndarray) -> np.ndarray:
    """Partial structure factors F_t(h) = Σ_s w_st exp(2πi h·x_s) per scatterer type t at the points ``flat``.

    exp(2πi(hx + ky + lz)) = e_x[h] e_y[k] e_z[l] factorises, so over the whole index box F_t[h, k, l] = Σ_s
    (e_x[h, s] e_y[k, s]) (w_st e_z[l, s]) is one complex matrix product (BLAS) with no trigonometric function
    per point; chunked over h so intermediates stay below ~64 MB. Returns (M, T) complex.
    """
    n_h, n_k, n_l = bounds
    coords = table.frac_coords
    n_sites, n_types = table.weights.shape
    phase = 2j * np.pi
    e_x = np.exp(phase * (np.arange(0.0, n_h + 1.0)[:, None] * coords[:, 0]))  # (H+1, N)
    e_y = np.exp(phase * (np.arange(-n_k, n_k + 1.0)[:, None] * coords[:, 1]))  # (2K+1, N)
    e_z = np.exp(phase * (np.arange(-n_l, n_l + 1.0)[:, None] * coords[:, 2]))  # (2L+1, N)
    z_weighted = (e_z.T[:, :, None] * table.weights[:, None, :]).reshape(n_sites, -1)  # (N, (2L+1)·T)
    per_h = (2 * n_k + 1) * (2 * n_l + 1)
    rows_per_chunk = max(1, _CHUNK_ENTRIES // max(per_h * n_types, (2 * n_k + 1) * n_sites))
    if rows_per_chunk > n_h:
        xy = (e_x[:, None, :] * e_y[None, :, :]).reshape(-1, n_sites)
        return (xy @ z_weighted).reshape(-1, n_types)[flat]
    out = np.empty((flat.shape[0], n_types), dtype=np.complex128)
    for h0 in range(0, n_h + 1, rows_per_chunk):
        h1 = min(n_h + 1, h0 + rows_per_chunk)
        xy = (e_x[h0:h1, None, :] * e_y[None, :, :]).reshape(-1, n_sites)
        pick = np.flatnonzero((flat >= h0 * per_h) & (flat < h1 * per_h))
        out[pick] = (xy @ z_weighted).reshape(-1, n_types)[flat[pick] - h0 * per_h]
    return out


def compute_reflections(
    structure: Structure, d_min: float, *, default_b: float = 0.0, source: str = "structure"
) -> Reflections:
    """All reflections of ``structure`` with d ≥ ``d_min`` (Å): d, representative hkl, m and m·|F|²
    (electrons²).

    F(h) = Σ_j occ_j f_j(s) exp(−B_j s²) exp(2πi h·x_j), s = 1/(2d). B_j from the site properties
    (``B_iso``/``b_iso``/``debye_waller``, or ``U_iso`` as B = 8π²U), else ``default_b`` (Å²).
    Raises InputError for d_min ≤ 0 and StructureError (naming ``source``) for an invalid structure.
    """
    if not isinstance(d_min, (int, float, np.number)) or not math.isfinite(d_min) or d_min <= 0:
        raise InputError(f"{source} (d_min)", f"d_min must be a positive number of Å, got {d_min!r}")
    table = scatterer_table(structure, default_b=default_b, source=source)
    bounds, flat, g2 = _sphere_points(table.reciprocal_metric, table.cell_lengths, 1.0 / (d_min * d_min))
    if flat.shape[0] == 0:
        return Reflections.from_dict({"d": [], "hkl": np.zeros((0, 3)), "multiplicity": [], "intensity": []})

    new_group = np.empty(g2.shape[0], dtype=bool)  # a reflection is a run of equal g² (to the tolerance)
    new_group[0] = True
    np.greater(g2[1:] - g2[:-1], (2.0 * D_RELATIVE_MERGE_TOL) * g2[1:], out=new_group[1:])
    starts = np.flatnonzero(new_group)

    g2_reflections = g2[starts]
    s2 = g2_reflections * 0.25  # s² = 1/(4d²), one value per reflection
    f_type = form_factors_from_s2(table.z, table.a, table.b, s2)[table.type_element]  # (T, R)
    if table.has_b:
        f_type = f_type * np.exp(-table.type_b[:, None] * s2)
    partial = _structure_factors(table, bounds, flat)  # (M, T)
    if partial.shape[1] == 1:
        intensity = (
            np.add.reduceat(partial.real[:, 0] ** 2 + partial.imag[:, 0] ** 2, starts) * f_type[0] ** 2
        )
    else:  # Σ_p |Σ_t f_t F_t(p)|² = fᵀ Q f with Q_tu = Σ_p Re(F_t F_u*) over the points of one reflection
        cross = (partial[:, :, None] * partial[:, None, :].conj()).real
        gram = np.add.reduceat(cross, starts, axis=0)  # (R, T, T)
        f_rows = f_type.T
        intensity = ((f_rows[:, :, None] * gram).sum(axis=1) * f_rows).sum(axis=1)
    n_h, n_k, n_l = bounds
    best = np.maximum.reduceat(flat, starts)  # the largest flat index is the lexicographically largest hkl
    hkl = np.column_stack(np.unravel_index(best, (n_h + 1, 2 * n_k + 1, 2 * n_l + 1))) - (0, n_k, n_l)
    return Reflections(
        d=g2_reflections**-0.5,
        hkl=hkl,
        multiplicity=2 * (np.append(starts[1:], g2.shape[0]) - starts),
        intensity=2.0 * intensity,  # the Friedel mates −h contribute the same
    )


def _compute_one(args: tuple[Structure, float, float, str]) -> Reflections | Exception:
    """Worker: reflections of one structure or the exception it raised (as a picklable value)."""
    structure, d_min, default_b, source = args
    try:
        return compute_reflections(structure, d_min, default_b=default_b, source=source)
    except InputError as exc:  # InputError's constructor takes (source, reason): carry both across processes
        return _RemoteInputError(type(exc), exc.source, exc.reason)
    except Exception as exc:  # one bad entry never stops a batch
        return exc


@dataclass(frozen=True)
class _RemoteInputError:
    """Picklable stand-in for an InputError raised in a worker process."""

    error_type: type
    source: str
    reason: str

    def rebuild(self) -> Exception:
        return self.error_type(self.source, self.reason)


def compute_reflections_batch(
    structures: Sequence[Structure],
    d_min: float,
    *,
    workers: int = 1,
    ids: Sequence[str] | None = None,
    default_b: float = 0.0,
) -> list[Reflections | Exception]:
    """:func:`compute_reflections` for many structures; entry i is its Reflections or the exception it raised.

    ``workers > 1`` uses a spawn-context process pool (safe with threads and on every platform).
    ``ids`` name the entries in error messages (default: ``"structure[i]"``).
    """
    names = [str(x) for x in ids] if ids is not None else [f"structure[{i}]" for i in range(len(structures))]
    if len(names) != len(structures):
        raise InputError("ids", f"got {len(names)} ids for {len(structures)} structures")
    jobs = [(s, d_min, default_b, name) for s, name in zip(structures, names, strict=True)]
    if workers <= 1 or len(jobs) <= 1:
        results = [_compute_one(job) for job in jobs]
    else:
        context = multiprocessing.get_context("spawn")
        chunksize = max(1, len(jobs) // (8 * workers))
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            results = list(pool.map(_compute_one, jobs, chunksize=chunksize))
    return [r.rebuild() if isinstance(r, _RemoteInputError) else r for r in results]
