"""Extinction groups: space groups that share one set of systematic absences (DIFCON's extinction-group task).

No PyPI package tabulates the map, so it is derived from the symmetry operations of each space group's
standard setting (spglib's database: monoclinic unique axis b cell choice 1, R groups on hexagonal axes).

Absence rule. The structure factor of the general position x is F(h) = Σ_(R,t) exp(2πi h·(Rx + t)). Terms with
the same hR collect into exp(2πi hR·x)·Σ exp(2πi h·t); those plane waves are independent functions of x, and
the sum over the stabiliser {(R,t): hR = h} is a character sum, so F(h) ≡ 0 for generic x iff some operation
with hR = h has exp(2πi h·t) ≠ 1 (h·t not an integer). Centring translations are operations with R = I, so
lattice absences are included.

Test set. Every translation in a standard setting has denominator 2, 3, 4 or 6, so whether h is absent depends
only on its stabiliser and on h modulo 12; the box |h|, |k|, |l| ≤ ABSENCE_HKL_MAX = 6 holds all 13 ≥ 12
residues per index, enough to see every condition type (d-glides h+k = 4n, 4₁ 00l: l = 4n, 6₁ 000l: l = 6n).
The test suite checks that a box of 12 gives the same partition.

Keying. Classes are keyed by (crystal system, absence set): the Laue class cannot be told from a powder
pattern (4/m and 4/mmm, -3 and -3m, 6/m and 6/mmm, m-3 and m-3m give the same peak list), so a powder
extinction group must not split on it. ``class_counts()`` reports the count for every candidate key (see the
module tests).

Symbols. ``extinction_symbol`` gives an ITA-style extinction symbol derived from the full Hermann–Mauguin
symbol of a class member: glide letters are kept (m becomes '-'), a screw is kept only where its absences are
not already produced by the centring and the glides (as ITA does: Pnma → 'P n - a'), rotations become '-'.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.symmetry.spacegroups import (
    CRYSTAL_SYSTEMS,
    _check_number,
    crystal_system_index,
    hall_spacegroup_type,
    laue_class,
    standard_hall_number,
)

ABSENCE_HKL_MAX = 6
EXTINCTION_TABLE_FILE = "extinction_groups.json"
RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
_EPS = 1e-6


def hkl_box(hkl_max: int) -> np.ndarray:
    """All integer (h, k, l) with |h|, |k|, |l| ≤ hkl_max except (0, 0, 0), shape (N, 3), int."""
    if int(hkl_max) < 1:
        raise ValueError(f"hkl_max must be >= 1, got {hkl_max!r}")
    r = np.arange(-int(hkl_max), int(hkl_max) + 1)
    grid = np.stack(np.meshgrid(r, r, r, indexing="ij"), axis=-1).reshape(-1, 3)
    return grid[np.any(grid != 0, axis=1)]


def hall_operations(hall_number: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotations (n, 3, 3) int and fractional translations (n, 3) of spglib Hall setting ``hall_number``.

    Centring translations are included as operations with R = I.
    """
    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ops = spglib.get_symmetry_from_database(int(hall_number))
    return np.asarray(ops["rotations"], dtype=np.int64), np.asarray(ops["translations"], dtype=np.float64)


@cache
def symmetry_operations(sg_number: int) -> tuple[np.ndarray, np.ndarray]:
    """Operations (rotations, translations) of the standard setting of ``sg_number`` (see hall_operations)."""
    return hall_operations(standard_hall_number(_check_number(sg_number)))


def _absent_by_operation(rotations: np.ndarray, translations: np.ndarray, hkl: np.ndarray) -> np.ndarray:
    """Bool (n_ops, N): operation (R, t) alone extinguishes h, i.e. h(R − I) = 0 and h·t ∉ ℤ."""
    unique, inverse = np.unique(rotations.reshape(len(rotations), 9), axis=0, return_inverse=True)
    minus_identity = unique.reshape(-1, 3, 3) - np.eye(3)  # (u, 3, 3)
    h = hkl.astype(np.float64)
    moved = h @ minus_identity.transpose(1, 0, 2).reshape(3, -1)  # (N, 3u): h(R − I) per unique R
    fixed = np.all(np.abs(moved.reshape(len(h), -1, 3)) < 0.5, axis=2)[:, inverse.ravel()]  # (N, n_ops)
    phase = h @ translations.T  # (N, n_ops), in cycles
    shifted = np.abs(phase - np.round(phase)) > _EPS
    return (fixed & shifted).T


def absent_mask(sg_number: int, hkl: np.ndarray, *, hall_number: int | None = None) -> np.ndarray:
    """Bool (N,): which integer reflections ``hkl`` (N, 3) are systematically absent in ``sg_number``.

    The standard setting is used unless ``hall_number`` names another spglib Hall setting of the group.
    """
    if hall_number is None:
        rotations, translations = symmetry_operations(sg_number)
    else:
        if hall_spacegroup_type(hall_number).number != _check_number(sg_number):
            raise ValueError(f"Hall setting {hall_number} is not a setting of space group {sg_number}")
        rotations, translations = hall_operations(hall_number)
    hkl = np.asarray(hkl, dtype=np.int64).reshape(-1, 3)
    return _absent_by_operation(rotations, translations, hkl).any(axis=0)


def absent_reflections(sg_number: int, hkl_max: int = ABSENCE_HKL_MAX) -> np.ndarray:
    """Absent (h, k, l), |h|, |k|, |l| ≤ hkl_max, in the standard setting of ``sg_number``; (M, 3) int."""
    hkl = hkl_box(hkl_max)
    return hkl[absent_mask(sg_number, hkl)]


@cache
def _absence_signature(sg_number: int, hkl_max: int) -> bytes:
    """Packed absence mask of ``sg_number`` on ``hkl_box(hkl_max)`` (a hashable key)."""
    return np.packbits(absent_mask(sg_number, hkl_box(hkl_max))).tobytes()


_KEYS = {
    "absences": lambda n: (),
    "crystal_family": lambda n: (min(crystal_system_index(n), 4) if crystal_system_index(n) < 6 else 6,),
    "crystal_system": lambda n: (crystal_system_index(n),),
    "laue_class": lambda n: (laue_class(n),),
}
KEYING = "crystal_system"


def group_by_absences(key: str = "crystal_system", hkl_max: int = ABSENCE_HKL_MAX) -> list[tuple[int, ...]]:
    """Partition 1..230 into classes of equal (key, absence set); classes ordered by their smallest member.

    ``key`` is ``"crystal_system"`` (the package's choice), ``"laue_class"``, ``"crystal_family"``
    (trigonal and hexagonal merged) or ``"absences"`` (absences alone, across crystal systems).
    """
    if key not in _KEYS:
        raise ValueError(f"unknown extinction keying {key!r}; known: {sorted(_KEYS)}")
    classes: dict[tuple, list[int]] = {}
    for n in range(1, 231):
        classes.setdefault((*_KEYS[key](n), _absence_signature(n, hkl_max)), []).append(n)
    return sorted((tuple(v) for v in classes.values()), key=lambda c: c[0])


def class_counts(hkl_max: int = ABSENCE_HKL_MAX) -> dict[str, int]:
    """Number of extinction classes under each candidate keying."""
    return {key: len(group_by_absences(key, hkl_max)) for key in _KEYS}


def compute_extinction_table(hkl_max: int = ABSENCE_HKL_MAX) -> dict[str, Any]:
    """Derive the extinction-group table from spglib (what resources/extinction_groups.json stores).

    Keys: ``keying``, ``hkl_max``, ``class_counts`` (count per candidate keying), ``groups`` (member lists,
    ordered by smallest member) and ``symbols`` (ITA-style extinction symbol per class, crystal system
    prefixed).
    """
    groups = group_by_absences(KEYING, hkl_max)
    return {
        "keying": KEYING,
        "hkl_max": int(hkl_max),
        "class_counts": class_counts(hkl_max),
        "groups": [list(members) for members in groups],
        "symbols": [_class_symbol(members) for members in groups],
    }


@lru_cache(maxsize=1)
def load_extinction_table() -> dict[str, Any]:
    """The shipped table (resources/extinction_groups.json; scripts/build_symmetry_tables.py rebuilds it)."""
    return json.loads((RESOURCES_DIR / EXTINCTION_TABLE_FILE).read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _groups() -> list[tuple[int, ...]]:
    """Member tuples of the shipped classes."""
    return [tuple(int(n) for n in members) for members in load_extinction_table()["groups"]]


@lru_cache(maxsize=1)
def _index_of() -> dict[int, int]:
    """Space-group number → class index."""
    return {n: i for i, members in enumerate(_groups()) for n in members}


def __getattr__(name: str) -> Any:
    """Lazy ``EXTINCTION_GROUPS: list[tuple[int, ...]]``: member space groups per class (shipped table)."""
    if name == "EXTINCTION_GROUPS":
        return list(_groups())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def n_extinction_groups() -> int:
    """Number of extinction groups K (indices run 0..K−1)."""
    return len(_groups())


def extinction_group_index(sg_number: int) -> int:
    """Index (0..K−1, classes ordered by smallest member) of the extinction group of ``sg_number``."""
    return _index_of()[_check_number(sg_number)]


# Symmetry directions (lattice basis) of the positions of the full HM symbol, per crystal-system index.
_HEX_2ND = ((1, 0, 0), (0, 1, 0), (1, 1, 0))
_HEX_3RD = ((1, -1, 0), (1, 2, 0), (2, 1, 0))
_POSITIONS: dict[int, tuple[tuple[tuple[int, int, int], ...], ...]] = {
    0: (((1, 0, 0), (0, 1, 0), (0, 0, 1)),),
    1: (((1, 0, 0),), ((0, 1, 0),), ((0, 0, 1),)),
    2: (((1, 0, 0),), ((0, 1, 0),), ((0, 0, 1),)),
    3: (((0, 0, 1),), ((1, 0, 0), (0, 1, 0)), ((1, -1, 0), (1, 1, 0))),
    4: (((0, 0, 1),), _HEX_2ND, _HEX_3RD),
    5: (((0, 0, 1),), _HEX_2ND, _HEX_3RD),
    6: (
        ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
        ((1, 1, 1), (1, -1, 1), (-1, 1, 1), (1, 1, -1)),
        ((1, -1, 0), (1, 1, 0), (0, 1, -1), (0, 1, 1), (1, 0, -1), (1, 0, 1)),
    ),
}
_SCREW_ALIASES = {"4_3": "4_1", "3_2": "3_1", "6_5": "6_1", "6_4": "6_2"}


def _rotation_axis(rotation: np.ndarray) -> np.ndarray:
    """Real-space axis (lattice basis) of a proper rotation: the null vector of R − I (for R ≠ I)."""
    _, _, vt = np.linalg.svd(rotation.astype(float) - np.eye(3))
    return vt[-1]


def _on_directions(axis: np.ndarray, directions: tuple[tuple[int, int, int], ...]) -> bool:
    """True when ``axis`` is parallel to one of ``directions``."""
    return any(np.linalg.norm(np.cross(axis, np.asarray(d, float))) < 1e-6 for d in directions)


def _member_symbol(sg_number: int) -> str:
    """ITA-style extinction symbol derived from the full HM symbol of ``sg_number`` (see module docstring)."""
    full = hall_spacegroup_type(standard_hall_number(sg_number)).international_full
    lattice, *components = full.split()
    rotations, translations = symmetry_operations(sg_number)
    hkl = hkl_box(ABSENCE_HKL_MAX)
    per_op = _absent_by_operation(rotations, translations, hkl)
    det = np.round(np.linalg.det(rotations)).astype(int)
    identity = np.all(rotations == np.eye(3, dtype=int), axis=(1, 2))
    background = per_op[identity | (det < 0)].any(axis=0)  # centring and glide absences
    centring = per_op[identity].any(axis=0)
    proper = [i for i in range(len(rotations)) if det[i] > 0 and not identity[i]]
    improper = [i for i in range(len(rotations)) if det[i] < 0 and np.trace(rotations[i]) == 1]  # mirrors
    system = crystal_system_index(sg_number)
    positions = _POSITIONS[system]
    out = []
    for pos, comp in enumerate(components):
        rot, _, refl = comp.partition("/") if "/" in comp else (comp, "", "")
        if rot in "abcdemn" and rot and not refl:
            rot, refl = "", rot
        kept = []
        if "_" in rot:
            ops = [i for i in proper if _on_directions(_rotation_axis(rotations[i]), positions[pos])]
            screw_absent = per_op[ops].any(axis=0) if ops else np.zeros(len(hkl), bool)
            if np.any(screw_absent & ~background):
                kept.append(_SCREW_ALIASES.get(rot, rot))
        if refl and refl != "m":
            mirror_ops = [
                i for i in improper if _on_directions(_rotation_axis(-rotations[i]), positions[pos])
            ]
            if mirror_ops and np.any(per_op[mirror_ops].any(axis=0) & ~centring):
                kept.append(refl)
        keep_one = rot == "1" and system == 1
        out.append("/".join(kept) if kept else ("1" if keep_one else "-"))
    width = 1 if system == 0 else 2 if lattice == "R" else 3
    return " ".join([lattice, *out, *["-"] * (width - len(out))])


def _class_symbol(members: tuple[int, ...]) -> str:
    """Crystal system + the most common member-derived symbol (ties: the highest-numbered member's)."""
    counts = Counter(_member_symbol(n) for n in reversed(members))
    return f"{CRYSTAL_SYSTEMS[crystal_system_index(members[0])]} {counts.most_common(1)[0][0]}"


def extinction_symbol(sg_number: int) -> str:
    """ITA-style extinction symbol of the class of ``sg_number``, prefixed by its crystal system.

    Examples: 62 (Pnma) gives ``"orthorhombic P n - a"``; 33 (Pna2₁, standard setting) gives
    ``"orthorhombic P n a -"``; 14 gives ``"monoclinic P 1 2_1/c 1"``.
    """
    return load_extinction_table()["symbols"][extinction_group_index(sg_number)]
