"""Cross-source deduplication on (reduced formula, space group)."""

from __future__ import annotations

import random

import pytest
from pymatgen.core import Composition, Lattice, Structure

from pxrdbench.data.dedup import DEFAULT_SOURCE_PRIORITY, dedup_key, deduplicate, reduced_formula, split_group
from pxrdbench.data.records import StructureRecord
from pxrdbench.errors import InputError


def rocksalt() -> Structure:
    return Structure(
        Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )  # only the formula matters


def test_reduced_formula_of_ordered_and_disordered_compositions():
    assert reduced_formula(rocksalt()) == "NaCl"
    assert reduced_formula(Composition("Si4O8")) == "SiO2"
    assert reduced_formula(Composition("Mg1.8Fe0.2SiO4")) == reduced_formula(Composition("Mg0.9Fe0.1Si0.5O2"))
    assert reduced_formula(Composition("Mg1.8Fe0.2SiO4")) != reduced_formula(Composition("Mg1.6Fe0.4SiO4"))
    with pytest.raises(InputError, match="empty"):
        reduced_formula(Composition({}))


def test_dedup_key_and_split_group():
    record = StructureRecord("mp-22862", rocksalt(), "mp_cgcnn")
    assert dedup_key(record, 225) == "NaCl|225"
    assert split_group(record, 225) == "NaCl|225"
    mineral = StructureRecord("amcsd:3", rocksalt(), "amcsd", group="halite")
    assert split_group(mineral, 225) == "halite"
    with pytest.raises(InputError, match="1..230"):
        dedup_key(record, 0)


ENTRIES = [
    ("mp-2", "mp_cgcnn", "NaCl|225"),
    ("oqmd_icsd:7", "oqmd_icsd", "NaCl|225"),
    ("amcsd:9", "amcsd", "NaCl|225"),
    ("amcsd:3", "amcsd", "NaCl|225"),  # a second AMCSD entry of the same compound (a P/T series): kept
    ("mp-1", "mp_cgcnn", "SiO2|154"),
    ("oqmd_icsd:8", "oqmd_icsd", "SiO2|154"),
    ("oqmd_icsd:9", "oqmd_icsd", "Cu|225"),
    ("x1", "my_source", "Cu|225"),
]


def test_deduplicate_keeps_the_priority_source_and_all_its_entries():
    kept, dropped = deduplicate(ENTRIES)
    assert kept == ["amcsd:3", "amcsd:9", "mp-1", "oqmd_icsd:9"]
    assert dropped == [
        ("mp-2", "amcsd:3"),
        ("oqmd_icsd:7", "amcsd:3"),
        ("oqmd_icsd:8", "mp-1"),
        ("x1", "oqmd_icsd:9"),
    ]
    assert DEFAULT_SOURCE_PRIORITY[0] == "amcsd"


def test_deduplicate_is_order_independent_and_takes_a_store_style_priority():
    shuffled = ENTRIES[:]
    random.Random(3).shuffle(shuffled)
    assert deduplicate(shuffled) == deduplicate(ENTRIES)
    kept, dropped = deduplicate(ENTRIES, source_priority={"mp_cgcnn": 0, "oqmd_icsd": 1, "amcsd": 2})
    assert kept == ["mp-1", "mp-2", "oqmd_icsd:9"]
    assert (
        ("amcsd:9", "mp-2") in dropped
        and ("amcsd:3", "mp-2") in dropped
        and ("oqmd_icsd:8", "mp-1") in dropped
    )
    assert ("x1", "oqmd_icsd:9") in dropped  # unlisted sources rank last


def test_deduplicate_rejects_repeated_ids():
    with pytest.raises(InputError, match="repeated"):
        deduplicate([("a", "amcsd", "k|1"), ("a", "mp_cgcnn", "k|1")])
