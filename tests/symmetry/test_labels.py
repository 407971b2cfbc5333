"""Symmetry labels: number → class tables; labels of small ordered, disordered and distorted crystals."""

from __future__ import annotations

import json
import math

import pytest
from pymatgen.core import Lattice, Structure

from pxrdbench.errors import StructureError
from pxrdbench.symmetry import labels as lab
from pxrdbench.symmetry import spacegroups as sg

_POINT_GROUP_TO_LAUE = {
    "1": "-1", "-1": "-1", "2": "2/m", "m": "2/m", "2/m": "2/m", "222": "mmm", "mm2": "mmm", "mmm": "mmm",
    "4": "4/m", "-4": "4/m", "4/m": "4/m", "422": "4/mmm", "4mm": "4/mmm", "-42m": "4/mmm", "4/mmm": "4/mmm",
    "3": "-3", "-3": "-3", "32": "-3m", "3m": "-3m", "-3m": "-3m", "6": "6/m", "-6": "6/m", "6/m": "6/m",
    "622": "6/mmm", "6mm": "6/mmm", "-6m2": "6/mmm", "6/mmm": "6/mmm", "23": "m-3", "m-3": "m-3",
    "432": "m-3m", "-43m": "m-3m", "m-3m": "m-3m",
}  # fmt: skip


def test_crystal_system_boundaries() -> None:
    firsts = {1: 0, 3: 1, 16: 2, 75: 3, 143: 4, 168: 5, 195: 6}
    lasts = {2: 0, 15: 1, 74: 2, 142: 3, 167: 4, 194: 5, 230: 6}
    for n, idx in {**firsts, **lasts}.items():
        assert sg.crystal_system_index(n) == idx
        assert sg.crystal_system(n) == sg.CRYSTAL_SYSTEMS[idx]
    assert sg.CRYSTAL_SYSTEMS[4] == "trigonal" and len(sg.CRYSTAL_SYSTEMS) == 7


def test_laue_class_agrees_with_spglib_point_group_for_all_230() -> None:
    for n in range(1, 231):
        assert sg.laue_class(n) == _POINT_GROUP_TO_LAUE[sg.point_group(n)], n
    assert len({sg.laue_class(n) for n in range(1, 231)}) == 11


def test_standard_settings_and_symbols() -> None:
    assert sg.space_group_symbol(14) == "P2_1/c"
    assert sg.space_group_symbol(225) == "Fm-3m"
    assert sg.hall_spacegroup_type(sg.standard_hall_number(14)).choice == "b1"  # unique axis b, cell choice 1
    assert sg.hall_spacegroup_type(sg.standard_hall_number(166)).choice == "H"  # hexagonal axes


@pytest.mark.parametrize("bad", [0, 231, 2.5, True, -3])
def test_bad_space_group_number(bad: object) -> None:
    with pytest.raises(StructureError, match="sg_number"):
        sg.crystal_system_index(bad)  # type: ignore[arg-type]


def _nacl(a: float = 5.64) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_rock_salt_labels() -> None:
    labels = lab.symmetry_labels(_nacl())
    assert (labels.space_group_number, labels.space_group_symbol) == (225, "Fm-3m")
    assert (labels.crystal_system, labels.crystal_system_index, labels.laue_class) == ("cubic", 6, "m-3m")
    assert labels.point_group == "m-3m"
    assert labels.extinction_symbol == "cubic F - - -"
    a = 5.64 / math.sqrt(2)  # fcc primitive cell: a/√2, 60°
    assert labels.niggli == pytest.approx((a, a, a, 60.0, 60.0, 60.0), abs=1e-6)
    assert labels.symprec_stable and labels.groups_across_ladder == (225, 225, 225, 225)
    conventional = lab.symmetry_labels(_nacl(), primitive_niggli=False)
    assert conventional.niggli == pytest.approx((5.64, 5.64, 5.64, 90.0, 90.0, 90.0), abs=1e-6)
    json.dumps(labels.to_dict())  # JSON-serialisable


def test_rutile_niggli_orders_edges() -> None:
    rutile = Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]]
    )
    labels = lab.symmetry_labels(rutile, source="rutile")
    assert labels.space_group_number == 136 and labels.crystal_system == "tetragonal"
    assert labels.niggli == pytest.approx((2.959, 4.594, 4.594, 90.0, 90.0, 90.0), abs=1e-6)


def test_monoclinic_p21c() -> None:
    s = Structure.from_spacegroup(
        "P2_1/c", Lattice.monoclinic(5.1, 6.3, 7.2, 103.0), ["Si"], [[0.11, 0.23, 0.31]]
    )
    labels = lab.symmetry_labels(s)
    assert labels.space_group_number == 14
    assert labels.extinction_symbol == "monoclinic P 1 2_1/c 1"
    assert labels.laue_class == "2/m" and labels.crystal_system_index == 1


def test_partial_occupancy_is_part_of_the_site_label() -> None:
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    alloy = {"Cu": 0.75, "Au": 0.25}
    disordered = Structure(Lattice.cubic(3.75), [alloy] * 4, coords)
    assert lab.symmetry_labels(disordered).space_group_number == 225  # random fcc alloy
    cu3au = Structure(Lattice.cubic(3.75), [{"Au": 0.9, "Cu": 0.1}, "Cu", "Cu", "Cu"], coords)
    assert lab.symmetry_labels(cu3au).space_group_number == 221  # partly ordered L1_2: Pm-3m
    vacancies = Structure(Lattice.cubic(3.75), [{"Cu": 0.7}] * 4, coords)
    assert lab.symmetry_labels(vacancies).space_group_number == 225
    relabelled = lab._species_labelled(cu3au)
    assert lab.symmetry_labels(relabelled).space_group_number == 221


def test_ladder_flags_a_distorted_structure() -> None:
    s = _nacl()
    s.translate_sites([0], [0.005, 0, 0], frac_coords=True)  # 0.028 Å off the ideal site
    labels = lab.symmetry_labels(s)
    assert labels.space_group_number == 225  # at symprec 0.1 Å
    assert labels.groups_across_ladder[0] != 225 and labels.groups_across_ladder[-1] == 225
    assert not labels.symprec_stable


def test_empty_structure_raises_with_source() -> None:
    empty = Structure(Lattice.cubic(3.0), [], [])
    with pytest.raises(StructureError, match="my.cif: structure has no sites"):
        lab.symmetry_labels(empty, source="my.cif")
