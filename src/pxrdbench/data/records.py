"""The record types every structure source yields.

A source is an iterator of :class:`StructureRecord` (parsed) and :class:`SourceFailure` (skipped, with a
reason). Builds count and report failures; they never abort on one and never drop one silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

# annotations only: reading a cache must not import pymatgen (the GPU check's machine has none)
if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass
class StructureRecord:
    """One crystal structure from a source.

    Attributes:
        id: unique within the dataset (e.g. ``"amcsd:0012345"``, ``"mp-1234"``).
        structure: the pymatgen structure (partial occupancies kept).
        source: the source name (``"amcsd"``, ``"mp_cgcnn"``, ...).
        group: the split-group key; records sharing a group never fall on two sides of a split
            (AMCSD: the mineral name; others: the (reduced formula, space group) pair, set at build time when empty).
        meta: source-specific extras (e.g. mineral name, formation energy, pressure/temperature).
    """

    id: str
    structure: Structure
    source: str
    group: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceFailure:
    """An entry a source could not turn into a structure: which one and why."""

    id: str
    source: str
    reason: str
