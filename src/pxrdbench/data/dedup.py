"""Cross-source deduplication on the (reduced formula, space group) pair.

Merged datasets (``"mp_cgcnn+oqmd_icsd+amcsd"``) hold the same compound several times: the MP and OQMD
relaxations of one ICSD structure, and often the experimental AMCSD structure too. Before splitting, every key
``"<reduced formula>|<space group>"`` is kept by one source only, the highest in a stated priority; entries of
other sources with that key are dropped and reported as duplicates of the first kept entry. Entries of one
source sharing a key are all kept (an AMCSD pressure series, MP polymorphs): the split groups keep them
together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pymatgen.core import Composition, Structure

from pxrdbench.data.records import StructureRecord
from pxrdbench.errors import InputError

# Default priority (first wins): experimental structures, then the DFT sets the published methods trained on.
DEFAULT_SOURCE_PRIORITY: tuple[str, ...] = (
    "amcsd",
    "mp_cgcnn",
    "oqmd_icsd",
    "mp_api",
    "perov5",
    "carbon24",
    "cif_dir",
    "cif_csv",
    "synthetic",
)
FRACTION_DIGITS = 4  # disordered compositions are compared on atom fractions rounded to this many digits


def reduced_formula(composition: Composition | Structure | StructureRecord) -> str:
    """Canonical reduced formula: pymatgen's ``reduced_formula`` when the amounts are integers (``"SiO2"``).

    Disordered compositions (fractional amounts) are normalised to atom fractions rounded to 4 digits first,
    so that ``Mg1.8Fe0.2SiO4`` and ``Mg0.9Fe0.1Si0.5O2`` give one key.
    """
    if isinstance(composition, StructureRecord):
        composition = composition.structure
    if isinstance(composition, Structure):
        composition = composition.composition
    amounts = composition.get_el_amt_dict()
    if not amounts:
        raise InputError("composition", "empty composition has no formula")
    if all(abs(v - round(v)) < 1e-6 for v in amounts.values()):
        return composition.reduced_formula
    total = sum(amounts.values())
    return Composition({el: round(v / total, FRACTION_DIGITS) for el, v in amounts.items()}).reduced_formula


def dedup_key(record: StructureRecord | Structure | Composition, sg_number: int) -> str:
    """``"<reduced formula>|<space group number>"``, e.g. ``"SiO2|154"``."""
    sg = int(sg_number)
    if not 1 <= sg <= 230:
        raise InputError("sg_number", f"space-group number must lie in 1..230, got {sg_number!r}")
    return f"{reduced_formula(record)}|{sg}"


def split_group(record: StructureRecord, sg_number: int) -> str:
    """The record's split group: its source group when set (AMCSD mineral), else its dedup key."""
    return record.group or dedup_key(record, sg_number)


def _priority_rank(source_priority: Mapping[str, int] | Sequence[str] | None) -> dict[str, int]:
    if source_priority is None:
        source_priority = DEFAULT_SOURCE_PRIORITY
    if isinstance(source_priority, Mapping):
        return {str(k): int(v) for k, v in source_priority.items()}
    return {name: i for i, name in enumerate(source_priority)}


def deduplicate(
    entries: Iterable[tuple[str, str, str]],
    source_priority: Mapping[str, int] | Sequence[str] | None = None,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Drop cross-source duplicates of ``(id, source, key)`` entries; deterministic for any input order.

    For each key, the owning source is the one ranked first in ``source_priority`` (a name -> rank mapping or
    an ordered list; default :data:`DEFAULT_SOURCE_PRIORITY`; unlisted sources rank after listed ones, by
    name). All its entries with the key are kept; every other entry with the key is dropped as a duplicate of
    the owner's smallest id.

    Returns:
        (kept ids, sorted by (rank, source, id)); (dropped id, id it duplicates) pairs, sorted the same way.
    """
    rank = _priority_rank(source_priority)
    rows = [(str(i), str(s), str(k)) for i, s, k in entries]
    repeated = sorted(i for i, n in Counter(r[0] for r in rows).items() if n > 1)
    if repeated:
        raise InputError("entries", f"ids must be unique, repeated: {repeated[:5]}")

    def order(row: tuple[str, str, str]) -> tuple[Any, ...]:
        return (rank.get(row[1], len(rank)), row[1], row[0])

    rows.sort(key=order)
    owner: dict[str, tuple[str, str]] = {}  # key -> (owning source, its first id)
    kept: list[str] = []
    dropped: list[tuple[str, str]] = []
    for record_id, source, key in rows:
        holder = owner.setdefault(key, (source, record_id))
        if holder[0] == source:
            kept.append(record_id)
        else:
            dropped.append((record_id, holder[1]))
    return kept, dropped
