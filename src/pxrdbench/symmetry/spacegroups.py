"""Space-group numbers and what follows from the number alone: crystal system, Laue class, point group,
Hermann–Mauguin symbol and spglib's standard setting (no structure needed).

Both :mod:`pxrdbench.symmetry.labels` (a structure's labels) and :mod:`pxrdbench.symmetry.extinction`
(absence classes) build on this module, so neither imports the other's internals.
"""

from __future__ import annotations

import warnings
from functools import cache, lru_cache
from typing import Any

from pxrdbench.errors import StructureError

CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)
# Last space-group number of each crystal system, in the order of CRYSTAL_SYSTEMS.
_SYSTEM_LAST_NUMBER: tuple[int, ...] = (2, 15, 74, 142, 167, 194, 230)

LAUE_CLASSES: tuple[str, ...] = (
    "-1",
    "2/m",
    "mmm",
    "4/m",
    "4/mmm",
    "-3",
    "-3m",
    "6/m",
    "6/mmm",
    "m-3",
    "m-3m",
)
# Last space-group number of each Laue class, in the order of LAUE_CLASSES.
_LAUE_LAST_NUMBER: tuple[int, ...] = (2, 15, 74, 88, 142, 148, 167, 176, 194, 206, 230)


def _check_number(sg_number: int) -> int:
    """Return ``sg_number`` as int, raising StructureError unless it is an integer in 1..230."""
    if isinstance(sg_number, bool) or int(sg_number) != sg_number or not 1 <= int(sg_number) <= 230:
        raise StructureError(
            "sg_number", f"space group number must be an integer in 1..230, got {sg_number!r}"
        )
    return int(sg_number)


def crystal_system_index(sg_number: int) -> int:
    """Index (0–6, order of CRYSTAL_SYSTEMS) of the crystal system of space group ``sg_number``.

    Ranges: triclinic 1–2, monoclinic 3–15, orthorhombic 16–74, tetragonal 75–142, trigonal 143–167,
    hexagonal 168–194, cubic 195–230.
    """
    n = _check_number(sg_number)
    return next(i for i, last in enumerate(_SYSTEM_LAST_NUMBER) if n <= last)


def crystal_system(sg_number: int) -> str:
    """Name of the crystal system of space group ``sg_number`` (one of CRYSTAL_SYSTEMS)."""
    return CRYSTAL_SYSTEMS[crystal_system_index(sg_number)]


def laue_class(sg_number: int) -> str:
    """Laue class (one of the 11 in LAUE_CLASSES) of space group ``sg_number``.

    Ranges: -1 1–2, 2/m 3–15, mmm 16–74, 4/m 75–88, 4/mmm 89–142, -3 143–148, -3m 149–167, 6/m 168–176,
    6/mmm 177–194, m-3 195–206, m-3m 207–230.
    """
    n = _check_number(sg_number)
    return next(LAUE_CLASSES[i] for i, last in enumerate(_LAUE_LAST_NUMBER) if n <= last)


@lru_cache(maxsize=1)
def _first_hall_numbers() -> tuple[int, ...]:
    """spglib's first Hall number of each space group 1..230 (index n − 1)."""
    first: dict[int, int] = {}
    for hall in range(1, 531):
        first.setdefault(hall_spacegroup_type(hall).number, hall)
    return tuple(first[n] for n in range(1, 231))


@cache
def hall_spacegroup_type(hall_number: int) -> Any:
    """spglib's SpaceGroupType of Hall setting ``hall_number`` (1..530), deprecation warnings silenced."""
    import spglib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return spglib.get_spacegroup_type(int(hall_number))


def standard_hall_number(sg_number: int) -> int:
    """spglib Hall number of the standard setting of ``sg_number`` (its first Hall number).

    This is ITA's standard setting: unique axis b, cell choice 1 for monoclinic groups; hexagonal axes for R
    groups; origin choice 1 where there are two.
    """
    return _first_hall_numbers()[_check_number(sg_number) - 1]


def point_group(sg_number: int) -> str:
    """Hermann–Mauguin symbol of the point group of ``sg_number`` (e.g. ``"mmm"``, ``"-43m"``)."""
    return hall_spacegroup_type(standard_hall_number(sg_number)).pointgroup_international


def space_group_symbol(sg_number: int) -> str:
    """Short Hermann–Mauguin symbol of ``sg_number``, as spglib/pymatgen give it (``"P2_1/c"``)."""
    return hall_spacegroup_type(standard_hall_number(sg_number)).international_short


def space_group_label(number: int) -> str:
    """The 1-based space-group ``number`` followed by its short Hermann–Mauguin symbol, e.g. ``"225 Fm-3m"``,
    ``"14 P2_1/c"`` (the symbol of :func:`space_group_symbol`; StructureError outside 1..230)."""
    n = _check_number(number)
    return f"{n} {space_group_symbol(n)}"
