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

Speed: a typical cell (4 atoms, ~200 lattice points at Cu Kα to 90°) costs tens of numpy calls, so the code
keeps their number low: cached half-space index grids per index box, g² as one matrix-vector product, phase
factors as products of per-axis exponentials gathered per point, form factors of all elements as one batched
matrix product. Large problems (many points × sites) use one BLAS product over the whole index box instead.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from pymatgen.core import Structure

from pxrdbench.errors import InputError
from pxrdbench.physics.scattering import ScattererTable, form_factors_from_s2, scatterer_table

D_RELATIVE_MERGE_TOL = 1e-9
"""Lattice points with |Δd|/d below this merge into one reflection."""

_CACHED_GRID_POINTS = 12_000
"""Index boxes up to this many points keep their half-space grid cached (≤ ~1.2 MB each, 128 boxes, LRU)."""

GATHER_MAX_ENTRIES = 30_000
"""Lattice points × sites up to which phases are gathered per point; above, one BLAS box product is used."""

_CHUNK_ENTRIES = 4_000_000
"""Complex entries of one intermediate array of the box product (64 MB); larger boxes go in slabs of h."""


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


@dataclass(frozen=True)
class _HalfSpaceGrid:
    """Integer points of one Friedel half of the index box [0, H] × [−K, K] × [−L, L], lexicographic order.

    In C order the box's other half (h = 0 and k < 0, or h = k = 0 and l ≤ 0) is its first ``skip`` = K·(2L
    + 1) + L + 1 points, so grid row r is box index r + skip. ``monomials`` (P, 6) = (h², k², l², 2hk, 2hl,
    2kl): g² = monomials @ (G*00, G*11, G*22, G*01, G*02, G*12) is one matrix-vector product. ``axis_rows``
    (3, P) index each point's h, k and l into the concatenated axis values (0 … H, −K … K, −L … L), stored as
    2πi·value in ``axis_values`` with the coordinate they multiply in ``axis_coordinate``.
    """

    bounds: tuple[int, int, int]
    skip: int
    hkl: np.ndarray  # (P, 3) int64
    monomials: np.ndarray  # (P, 6) float64
    axis_rows: np.ndarray  # (3, P) intp
    axis_values: np.ndarray  # (Q,) complex
    axis_coordinate: np.ndarray  # (Q,) 0, 1 or 2


def _build_grid(n_h: int, n_k: int, n_l: int) -> _HalfSpaceGrid:
    """Half-space grid of the box with bounds (H, K, L): h > 0, or h = 0 and k > 0, or h = k = 0 and l > 0."""
    shape = (n_h + 1, 2 * n_k + 1, 2 * n_l + 1)
    skip = n_k * shape[2] + n_l + 1
    axes = (np.arange(n_h + 1), np.arange(-n_k, n_k + 1), np.arange(-n_l, n_l + 1))
    box = np.empty((*shape, 3), dtype=np.int64)
    box[..., 0], box[..., 1], box[..., 2] = axes[0][:, None, None], axes[1][:, None], axes[2]
    hkl = box.reshape(-1, 3)[skip:]
    as_float = hkl.astype(float)
    monomials = as_float[:, [0, 1, 2, 0, 0, 1]] * as_float[:, [0, 1, 2, 1, 2, 2]]
    monomials[:, 3:] *= 2.0
    grid = _HalfSpaceGrid(
        bounds=(n_h, n_k, n_l),
        skip=skip,
        hkl=hkl,
        monomials=monomials,
        axis_rows=(hkl + (0, n_h + 1 + n_k, n_h + 2 * n_k + 2 + n_l)).T.astype(np.intp),
        axis_values=2j * np.pi * np.concatenate(axes),
        axis_coordinate=np.repeat([0, 1, 2], shape),
    )
    for array in (grid.hkl, grid.monomials, grid.axis_rows, grid.axis_values, grid.axis_coordinate):
        array.setflags(write=False)
    return grid


_cached_grid = lru_cache(maxsize=128)(_build_grid)


def _sphere_points(
    table: ScattererTable, g2_max: float
) -> tuple[tuple[int, int, int], _HalfSpaceGrid | None, np.ndarray, np.ndarray]:
    """Lattice points of one Friedel half space with 0 < g² ≤ g2_max, sorted by g².

    g² = hᵀ G* h (G* the reciprocal metric tensor, Å⁻²). Since h = g·a, |h| ≤ |g|·|a| bounds an index box
    [0, H] × [−K, K] × [−L, L]. Returns (H, K, L); the box's cached grid and the grid rows of the points
    when the box holds ≤ _CACHED_GRID_POINTS points, else None and the points' C-order box indices (both
    ascend with the lexicographic order of (h, k, l)); and the points' g², ascending.
    """
    limit = g2_max * (1.0 + 1e-12)
    radius = math.sqrt(limit) * (1.0 + 1e-9)
    la, lb, lc = table.cell_lengths.tolist()
    bounds = n_h, n_k, n_l = int(radius * la), int(radius * lb), int(radius * lc)
    (m00, m01, m02), (_, m11, m12), (_, _, m22) = table.reciprocal_metric.tolist()
    if (n_h + 1) * (2 * n_k + 1) * (2 * n_l + 1) <= _CACHED_GRID_POINTS:
        grid = _cached_grid(n_h, n_k, n_l)
        g2 = grid.monomials @ np.array((m00, m11, m22, m01, m02, m12))
        inside = (g2 <= limit).nonzero()[0]
    else:  # a large box: evaluate g² on it directly rather than building (and caching) its grid
        grid = None
        h, k, ell = np.arange(0.0, n_h + 1.0), np.arange(-n_k, n_k + 1.0), np.arange(-n_l, n_l + 1.0)
        plane = (m00 * h * h)[:, None] + (m11 * k * k + (2.0 * m01 * h)[:, None] * k)  # (H+1, 2K+1)
        slope = (2.0 * m02 * h)[:, None] + 2.0 * m12 * k  # coefficient of l
        g2_box = (plane[:, :, None] + slope[:, :, None] * ell) + m22 * ell * ell
        g2_box[0, :n_k, :] = np.inf  # h = 0, k < 0: the other half space
        g2_box[0, n_k, : n_l + 1] = np.inf  # h = k = 0, l ≤ 0
        g2 = g2_box.ravel()
        inside = (g2 <= limit).nonzero()[0]
    g2 = g2.take(inside)
    order = g2.argsort()
    return bounds, grid, inside.take(order), g2.take(order)


def _type_form_factors(table: ScattererTable, s2: np.ndarray) -> np.ndarray:
    """(T, R) f_t(s) · exp(−B_t s²) of every scatterer type at s² (Å⁻²), electrons."""
    f_element = form_factors_from_s2(table.z, table.a, table.b, s2)
    if not table.has_b:  # then the types are the elements, in order
        return f_element
    return f_element.take(table.type_element, axis=0) * np.exp(np.multiply.outer(-table.type_b, s2))


def _gathered_intensities(
    table: ScattererTable,
    grid: _HalfSpaceGrid,
    points: np.ndarray,
    s2: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Σ |F(h)|² (electrons²) over grid rows ``points``, per reflection (``counts`` points from ``starts``).

    F(h) = Σ_s A_s(s²) exp(2πi h·x_s), site amplitude A_s = Σ_t w_st f_t(s) exp(−B_t s²), s² per reflection.
    exp(2πi(hx + ky + lz)) = e[h] e[k] e[l]: only (H + 2K + 2L + 3) × N exponentials are evaluated, then
    gathered per point (arrays are (sites, points) so the site sum runs over contiguous rows).
    """
    coords = table.frac_coords
    axis_phase = np.exp(coords.take(grid.axis_coordinate, axis=1) * grid.axis_values)  # (N, Q)
    factors = axis_phase.take(grid.axis_rows.take(points, axis=1), axis=1)  # (N, 3, M)
    phase = factors[:, 0] * factors[:, 1]
    phase *= factors[:, 2]
    phase *= (table.weights @ _type_form_factors(table, s2)).repeat(counts, axis=1)  # × A_s per point
    squares = phase.sum(axis=0).view(np.float64)  # (Re F, Im F) pairs, M of them
    squares *= squares
    return np.add.reduceat(squares, 2 * starts)


def _box_partial_factors(table: ScattererTable, bounds: tuple[int, int, int], flat: np.ndarray) -> np.ndarray:
    """Partial structure factors F_t(h) = Σ_s w_st exp(2πi h·x_s) per type t at box indices ``flat`` (M, T).

    Over the whole index box F_t[h, k, l] = Σ_s (e_x[h, s] e_y[k, s]) (w_st e_z[l, s]) is one complex matrix
    product (BLAS); chunked over h so intermediates stay below ~64 MB.
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
        return (xy @ z_weighted).reshape(-1, n_types).take(flat, axis=0)
    out = np.empty((flat.shape[0], n_types), dtype=np.complex128)
    for h0 in range(0, n_h + 1, rows_per_chunk):
        h1 = min(n_h + 1, h0 + rows_per_chunk)
        xy = (e_x[h0:h1, None, :] * e_y[None, :, :]).reshape(-1, n_sites)
        pick = np.flatnonzero((flat >= h0 * per_h) & (flat < h1 * per_h))
        out[pick] = (xy @ z_weighted).reshape(-1, n_types)[flat[pick] - h0 * per_h]
    return out


def _box_intensities(
    table: ScattererTable, bounds: tuple[int, int, int], flat: np.ndarray, s2: np.ndarray, starts: np.ndarray
) -> np.ndarray:
    """:func:`_gathered_intensities` through :func:`_box_partial_factors` (for many points × sites).

    Σ_p |Σ_t f_t F_t(p)|² = fᵀ Q f with Q_tu = Σ_p Re(F_t F_u*) over the points p of one reflection.
    """
    partial = _box_partial_factors(table, bounds, flat)  # (M, T)
    f_type = _type_form_factors(table, s2)  # (T, R)
    if partial.shape[1] == 1:
        return np.add.reduceat(partial.real[:, 0] ** 2 + partial.imag[:, 0] ** 2, starts) * f_type[0] ** 2
    gram = np.add.reduceat((partial[:, :, None] * partial[:, None, :].conj()).real, starts, axis=0)
    f_rows = f_type.T
    return ((f_rows[:, :, None] * gram).sum(axis=1) * f_rows).sum(axis=1)


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
    bounds, grid, points, g2 = _sphere_points(table, 1.0 / (d_min * d_min))
    n_points = g2.shape[0]
    if n_points == 0:
        return Reflections.from_dict({"d": [], "hkl": np.zeros((0, 3)), "multiplicity": [], "intensity": []})
    # a reflection is a run of equal g² (to the tolerance): runs start where g² jumps, and end at n_points
    jumps = np.greater(g2[1:] - g2[:-1], (2.0 * D_RELATIVE_MERGE_TOL) * g2[1:]).nonzero()[0]
    jumps += 1
    edges = np.concatenate((_ZERO, jumps, (n_points,)))
    starts = edges[:-1]
    counts = edges[1:] - starts
    g2_reflections = g2.take(starts)
    s2 = 0.25 * g2_reflections  # s² = 1/(4d²)
    largest = np.maximum.reduceat(points, starts)  # points ascend lexicographically: the largest hkl
    if grid is not None:
        hkl = grid.hkl.take(largest, axis=0)
        if n_points * table.weights.shape[0] <= GATHER_MAX_ENTRIES:
            intensity = _gathered_intensities(table, grid, points, s2, starts, counts)
        else:
            intensity = _box_intensities(table, bounds, points + grid.skip, s2, starts)
    else:
        n_h, n_k, n_l = bounds
        hkl = np.column_stack(np.unravel_index(largest, (n_h + 1, 2 * n_k + 1, 2 * n_l + 1))) - (0, n_k, n_l)
        intensity = _box_intensities(table, bounds, points, s2, starts)
    return Reflections(
        d=g2_reflections**-0.5,
        hkl=hkl,
        multiplicity=2 * counts,
        intensity=2.0 * intensity,  # the Friedel mates −h contribute the same
    )


_ZERO = np.zeros(1, dtype=np.intp)


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
