"""Within-source exact duplicates: entries of one source that are the same crystal structure.

Splits keep such entries together (:mod:`.grouping`); retrieval needs a label per entry naming its *duplicate
set*, so that every member counts as a correct answer for a query of any other.

Two entries are exact duplicates when all of these hold:

1. same source (entries of two sources are never duplicates here; cross-source merging is :mod:`.dedup`);
2. same reduced formula (:func:`pxrdbench.data.dedup.reduced_formula`, so disordered compositions compare on
   atom fractions rounded to 4 digits) and same space-group number;
3. all six lattice parameters agree within :data:`LATTICE_RTOL` (0.1 %) relative, compared in the canonical
   cell the cache stores: the Niggli-reduced cell of spglib's primitive cell (``symmetry_labels``'s
   ``niggli``). Angles are compared folded to ``min(θ, 180° − θ)``, because a Niggli cell with an angle at
   90° (± the reduction's tolerance) may come out in its all-acute or all-obtuse form;
4. pymatgen's ``StructureMatcher`` with the tight tolerances below matches them (both ways).

Why not the matcher's defaults (``ltol=0.2, stol=0.3, angle_tol=5, scale=True``): they rescale both cells to
one volume and allow 20 % length errors, so a whole pressure or temperature series of one mineral (cells that
differ by 0.5–5 %) would collapse into one set. Here ``scale=False`` and ``ltol``/``angle_tol`` sit just
above the 0.1 % pre-filter, so the matcher decides on the atoms: ``stol=0.05`` (RMS displacement in units of
``(V / n_sites)^(1/3)``, about 0.1 Å) accepts two refinements of the same structure and rejects different
site arrangements. ``primitive_cell=True`` makes a conventional/primitive or supercell copy, and an origin
shift, match its original; ``attempt_supercell=False`` because both sides are already primitive.

Sets are the connected components (union–find) of the matching pairs, with one guard against chaining: a
merge is refused when it would put two entries whose cells disagree (rule 3) into one set. Without it, a finely
stepped temperature series (AMCSD holds 38 entries of Ni from 257 to 825 °C, 0.64 % apart at the ends, each
step well under 0.1 %) would chain into one set; with it, every pair within a set passes the lattice rule, and
a long series is cut into runs of neighbouring points. Only pairs within one (source, formula, space group)
bucket that pass the lattice pre-filter reach the matcher; a pair already joined is not compared again; at
most :data:`MAX_MATCHER_CALLS_PER_BUCKET` matcher calls run per bucket (the rest are counted as distinct, with
a logged message). Pairs are visited in id order (string order), so the result does not depend on the input
order.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from pxrdbench.data.dedup import reduced_formula
from pxrdbench.errors import InputError

LATTICE_RTOL = 1e-3
"""Relative agreement required of each of a, b, c, α, β, γ (Niggli cell of the primitive cell)."""
MATCHER_LTOL = 0.002
"""StructureMatcher fractional length tolerance (just above :data:`LATTICE_RTOL`)."""
MATCHER_STOL = 0.05
"""StructureMatcher site tolerance, RMS in units of (V / n_sites)^(1/3) (about 0.1 Å)."""
MATCHER_ANGLE_TOL = 0.2
"""StructureMatcher angle tolerance (degrees; 0.1 % of 90° is 0.09°)."""
MAX_MATCHER_CALLS_PER_BUCKET = 2000
"""Cap on StructureMatcher calls within one (source, formula, space group) bucket."""
RULE = {
    "version": 1,  # bump when the rule changes in a way the constants do not show
    "lattice_rtol": LATTICE_RTOL,
    "ltol": MATCHER_LTOL,
    "stol": MATCHER_STOL,
    "angle_tol": MATCHER_ANGLE_TOL,
    "max_calls_per_bucket": MAX_MATCHER_CALLS_PER_BUCKET,
}
"""Everything the labels depend on besides the entries; cache keys include it, so a change rebuilds caches."""

log_ = logging.getLogger(__name__)


@dataclass(frozen=True)
class DuplicateCandidate:
    """One entry to label.

    Attributes:
        id: unique entry id (the label of a set is its smallest id).
        source: source name; only entries of one source can be duplicates.
        formula: reduced formula string or a Composition (normalised with ``dedup.reduced_formula``).
        space_group: space-group number 1–230.
        lattice: (a, b, c, α, β, γ) of the Niggli-reduced primitive cell, Å and degrees.
        structure: the structure, or a zero-argument callable returning it (called only when needed).
    """

    id: str
    source: str
    formula: str | Composition
    space_group: int
    lattice: Sequence[float]
    structure: Structure | Callable[[], Structure]


def make_matcher() -> StructureMatcher:
    """The StructureMatcher with this module's tight tolerances."""
    return StructureMatcher(
        ltol=MATCHER_LTOL,
        stol=MATCHER_STOL,
        angle_tol=MATCHER_ANGLE_TOL,
        primitive_cell=True,
        scale=False,
        attempt_supercell=False,
    )


def _canonical_cell(lattice: Sequence[float]) -> np.ndarray:
    cell = np.asarray(lattice, dtype=float).reshape(6).copy()
    cell[3:] = np.minimum(cell[3:], 180.0 - cell[3:])
    return cell


def lattices_agree(x: Sequence[float], y: Sequence[float], rtol: float = LATTICE_RTOL) -> bool:
    """True when all six parameters agree within ``rtol`` relative (angles folded to at most 90°)."""
    p, q = _canonical_cell(x), _canonical_cell(y)
    return bool(np.all(np.abs(p - q) <= rtol * np.maximum(np.abs(p), np.abs(q))))


def duplicate_sets(
    candidates: Sequence[DuplicateCandidate],
    *,
    max_calls_per_bucket: int = MAX_MATCHER_CALLS_PER_BUCKET,
    log: Callable[[str], None] | None = None,
) -> list[str]:
    """Duplicate-set label per candidate, in input order.

    Returns:
        For a member of a set of two or more entries, the smallest id of its set (string order); ``""`` for an
        entry without duplicates.

    Raises:
        InputError: repeated ids.
    """
    log = log or log_.warning
    ids = [str(c.id) for c in candidates]
    if len(set(ids)) != len(ids):
        raise InputError("candidates", "ids must be unique")
    buckets: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for i, c in enumerate(candidates):
        formula = c.formula if isinstance(c.formula, Composition) else Composition(c.formula)
        buckets[(str(c.source), reduced_formula(formula), int(c.space_group))].append(i)
    parent = list(range(len(candidates)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    loaded: dict[int, Structure] = {}

    def structure(i: int) -> Structure:
        if i not in loaded:
            s = candidates[i].structure
            loaded[i] = s if isinstance(s, Structure) else s()
        return loaded[i]

    matcher = make_matcher()
    for key in sorted(buckets):
        members = sorted(buckets[key], key=lambda i: ids[i])
        table = np.stack([_canonical_cell(candidates[i].lattice) for i in members])
        cells = dict(zip(members, table, strict=True))
        set_of: dict[int, list[int]] = {i: [i] for i in members}  # root -> its members
        calls = 0
        loaded.clear()  # structures are compared within one bucket only
        for a in range(len(members) - 1):
            rest = table[a + 1 :]
            agree = np.all(np.abs(rest - table[a]) <= LATTICE_RTOL * np.maximum(rest, table[a]), axis=1)
            for b in np.flatnonzero(agree) + a + 1:
                i, j = members[a], members[int(b)]
                ri, rj = find(i), find(j)
                if ri == rj:
                    continue
                if not all(lattices_agree(cells[p], cells[q]) for p in set_of[ri] for q in set_of[rj]):
                    continue  # the merged set would hold two cells that disagree (a chained series)
                if calls >= max_calls_per_bucket:
                    log(
                        f"duplicate sets: bucket {key} reached {max_calls_per_bucket} StructureMatcher calls "
                        f"({len(members)} entries); its remaining pairs are counted as distinct"
                    )
                    break
                calls += 1
                if matcher.fit(structure(i), structure(j), symmetric=True):
                    keep, drop = min(ri, rj), max(ri, rj)
                    parent[drop] = keep
                    set_of[keep] += set_of.pop(drop)
            else:
                continue
            break
    roots = [find(i) for i in range(len(candidates))]
    members_of: dict[int, list[str]] = defaultdict(list)
    for i, root in enumerate(roots):
        members_of[root].append(ids[i])
    return [min(members_of[r]) if len(members_of[r]) > 1 else "" for r in roots]


def structure_loader(z: np.ndarray, frac: np.ndarray, lattice: np.ndarray) -> Callable[[], Structure]:
    """A callable building the ordered Structure of cached atoms (majority Z per site, fractional, 3×3 cell)."""
    return lambda: Structure(
        np.asarray(lattice, dtype=float), [int(x) for x in z], np.asarray(frac, dtype=float)
    )
