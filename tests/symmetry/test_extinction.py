"""Extinction groups: the absence rule, the class partition, known members and the shipped table."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import StructureError
from pxrdbench.symmetry import extinction as ext
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, crystal_system_index, hall_spacegroup_type


def _absent_set(sg: int, hkl_max: int = 6) -> set[tuple[int, int, int]]:
    return {tuple(int(x) for x in row) for row in ext.absent_reflections(sg, hkl_max)}


def _box(hkl_max: int = 6) -> list[tuple[int, int, int]]:
    return [tuple(int(x) for x in row) for row in ext.hkl_box(hkl_max)]


def test_class_count_and_per_system_counts() -> None:
    assert ext.n_extinction_groups() == 112
    assert len(ext.EXTINCTION_GROUPS) == 112
    per_system = [0] * 7
    for members in ext.EXTINCTION_GROUPS:
        systems = {crystal_system_index(n) for n in members}
        assert len(systems) == 1, f"class {members} spans crystal systems {systems}"
        per_system[systems.pop()] += 1
    assert per_system == [1, 6, 44, 31, 6, 7, 17]


def test_candidate_keyings_counted() -> None:
    counts = ext.load_extinction_table()["class_counts"]
    assert counts == {"absences": 80, "crystal_family": 108, "crystal_system": 112, "laue_class": 131}


def test_partition_covers_every_group_once() -> None:
    flat = [n for members in ext.EXTINCTION_GROUPS for n in members]
    assert sorted(flat) == list(range(1, 231))
    assert [ext.extinction_group_index(m[0]) for m in ext.EXTINCTION_GROUPS] == list(range(112))


def test_p21c_alone_with_its_conditions() -> None:
    assert ext.EXTINCTION_GROUPS[ext.extinction_group_index(14)] == (14,)
    expected = {(h, k, l) for h, k, l in _box() if (k == 0 and l % 2) or (h == 0 and l == 0 and k % 2)}
    assert _absent_set(14) == expected
    assert ext.extinction_symbol(14) == "monoclinic P 1 2_1/c 1"


def test_pnma_class_and_pna21_in_its_pn21a_setting() -> None:
    assert ext.extinction_symbol(62) == "orthorhombic P n - a"
    # Pnma: 0kl: k+l=2n; hk0: h=2n; h00: h=2n; 0k0: k=2n; 00l: l=2n.
    expected = {
        (h, k, l)
        for h, k, l in _box()
        if (h == 0 and (k + l) % 2) or (l == 0 and h % 2) or (h == 0 and l == 0 and k % 2)
    }
    assert _absent_set(62) == expected
    # In its standard setting Pna2_1 has the a glide normal to b (h0l: h=2n), so it is a different class ...
    assert ext.extinction_symbol(33) == "orthorhombic P n a -"
    assert ext.extinction_group_index(33) != ext.extinction_group_index(62)
    # ... but in the setting Pn2_1a (ITA's "P n - a" row) its absences are exactly those of Pnma.
    halls = [h for h in range(1, 531) if hall_spacegroup_type(h).number == 33]
    pn21a = next(h for h in halls if hall_spacegroup_type(h).international_full == "P n 2_1 a")
    hkl = ext.hkl_box(6)
    np.testing.assert_array_equal(ext.absent_mask(33, hkl, hall_number=pn21a), ext.absent_mask(62, hkl))
    with pytest.raises(ValueError, match="not a setting"):
        ext.absent_mask(62, hkl, hall_number=pn21a)


def test_known_members() -> None:
    assert ext.extinction_group_index(1) == ext.extinction_group_index(2)
    cubic_f = {ext.extinction_group_index(n) for n in (196, 202, 209, 216, 225)}
    assert len(cubic_f) == 1
    assert ext.extinction_group_index(227) not in cubic_f  # Fd-3m: d glide
    assert ext.extinction_group_index(141) != ext.extinction_group_index(139)
    assert ext.extinction_symbol(141) == "tetragonal I a - d"
    assert ext.extinction_symbol(227) == "cubic F d - -"
    assert ext.extinction_symbol(194) == "hexagonal P - - c"  # 6_3 implied by the c glide
    assert ext.extinction_group_index(23) == ext.extinction_group_index(24)  # I222 and I2_12_12_1


def test_laue_keying_splits_what_powder_cannot_tell_apart() -> None:
    by_laue = ext.group_by_absences("laue_class")
    index = {n: i for i, members in enumerate(by_laue) for n in members}
    assert index[202] != index[225] and index[209] == index[225]
    with pytest.raises(ValueError, match="unknown extinction keying"):
        ext.group_by_absences("point_group")


def test_lattice_and_screw_conditions() -> None:
    i_absent = _absent_set(139)
    assert i_absent == {(h, k, l) for h, k, l in _box() if (h + k + l) % 2}
    row_141 = {l for h, k, l in _absent_set(141) if h == 0 and k == 0 and l > 0}
    assert row_141 == {1, 2, 3, 5, 6}  # 00l: l = 4n
    row_169 = {l for h, k, l in _absent_set(169) if h == 0 and k == 0 and l > 0}
    assert row_169 == {1, 2, 3, 4, 5}  # 6_1: 000l: l = 6n
    r_absent = _absent_set(146)  # R3 on hexagonal axes (obverse): -h+k+l = 3n
    assert r_absent == {(h, k, l) for h, k, l in _box() if (-h + k + l) % 3}
    assert _absent_set(1) == set() and _absent_set(221) == set()


@pytest.mark.parametrize("sg", [14, 43, 62, 88, 141, 167, 169, 206, 227, 230])
def test_rule_matches_structure_factor_of_generic_position(sg: int) -> None:
    rotations, translations = ext.symmetry_operations(sg)
    hkl = ext.hkl_box(4)
    rng = np.random.default_rng(sg)
    x = rng.random((3, 3))  # three generic positions
    positions = np.einsum("oij,pj->opi", rotations, x) + translations[:, None, :]  # (ops, p, 3)
    f = np.exp(2j * np.pi * np.einsum("ni,opi->nop", hkl, positions)).sum(axis=1)  # (N, p)
    vanishes = np.all(np.abs(f) < 1e-8 * len(rotations), axis=1)
    np.testing.assert_array_equal(vanishes, ext.absent_mask(sg, hkl))


def test_symbols_unique_and_prefixed() -> None:
    symbols = ext.load_extinction_table()["symbols"]
    assert len(set(symbols)) == len(symbols) == 112
    for members, symbol in zip(ext.EXTINCTION_GROUPS, symbols, strict=True):
        assert symbol.startswith(CRYSTAL_SYSTEMS[crystal_system_index(members[0])] + " ")


def test_bad_input_named() -> None:
    with pytest.raises(StructureError, match="sg_number"):
        ext.extinction_group_index(231)
    with pytest.raises(StructureError, match="1..230"):
        ext.absent_reflections(0, 4)
    with pytest.raises(ValueError, match="hkl_max"):
        ext.hkl_box(0)


def test_shipped_partition_equals_fresh_computation() -> None:
    assert ext.group_by_absences("crystal_system") == ext.EXTINCTION_GROUPS


@pytest.mark.slow
def test_shipped_table_equals_fresh_and_box_is_large_enough() -> None:
    shipped = {k: v for k, v in ext.load_extinction_table().items() if k != "source"}
    assert ext.compute_extinction_table() == shipped
    assert ext.group_by_absences("crystal_system", 12) == ext.EXTINCTION_GROUPS
