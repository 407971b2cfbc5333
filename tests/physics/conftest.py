"""Small hand-built structures for the physics tests (pymatgen Structure.from_spacegroup or explicit)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "physics"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@cache
def _rock_salt() -> Structure:
    """NaCl, Fm-3m, a = 5.6402 Å (8 atoms in the conventional cell)."""
    return Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(5.6402), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )


@cache
def _cesium_chloride() -> Structure:
    """CsCl, Pm-3m, a = 4.123 Å (2 atoms)."""
    return Structure(Lattice.cubic(4.123), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


@cache
def _wurtzite_zno() -> Structure:
    """ZnO wurtzite, P6_3mc, a = 3.2498, c = 5.2066 Å, u = 0.3819."""
    return Structure.from_spacegroup(
        "P6_3mc",
        Lattice.hexagonal(3.2498, 5.2066),
        ["Zn", "O"],
        [[1 / 3, 2 / 3, 0.0], [1 / 3, 2 / 3, 0.3819]],
    )


@cache
def _monoclinic_cell() -> Structure:
    """A monoclinic P2_1/c cell (β = 103.5°) with three elements on general positions."""
    lattice = Lattice.monoclinic(5.21, 6.47, 7.83, 103.5)
    return Structure.from_spacegroup(
        "P2_1/c", lattice, ["Fe", "Si", "O"], [[0.12, 0.31, 0.27], [0.41, 0.08, 0.63], [0.77, 0.52, 0.14]]
    )


@cache
def _disordered_fe_co() -> Structure:
    """B2-type cell with a mixed 0.5 Fe / 0.5 Co site and a half-occupied Na site."""
    return Structure(
        Lattice.cubic(2.86),
        [{"Fe": 0.5, "Co": 0.5}, {"Al": 1.0}, {"Na": 0.5}],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.0, 0.0]],
    )


def with_b_factors() -> Structure:
    """Rock salt with isotropic B = 1.2 Å² on Na and 0.8 Å² on Cl (site property ``B_iso``)."""
    structure = rock_salt()
    structure.add_site_property("B_iso", [1.2 if site.specie.symbol == "Na" else 0.8 for site in structure])
    return structure


def rock_salt() -> Structure:
    """A fresh copy of the cached NaCl cell (building from the space group is slow)."""
    return _rock_salt().copy()


def cesium_chloride() -> Structure:
    return _cesium_chloride().copy()


def wurtzite_zno() -> Structure:
    return _wurtzite_zno().copy()


def monoclinic_cell() -> Structure:
    return _monoclinic_cell().copy()


def disordered_fe_co() -> Structure:
    return _disordered_fe_co().copy()


STRUCTURES = {
    "rock_salt": rock_salt,
    "cesium_chloride": cesium_chloride,
    "wurtzite_zno": wurtzite_zno,
    "monoclinic": monoclinic_cell,
    "disordered_fe_co": disordered_fe_co,
}


@pytest.fixture
def nacl() -> Structure:
    return rock_salt()


@pytest.fixture
def cscl() -> Structure:
    return cesium_chloride()


@pytest.fixture
def zno() -> Structure:
    return wurtzite_zno()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(params=sorted(STRUCTURES))
def named_structure(request: pytest.FixtureRequest) -> tuple[str, Structure]:
    """Each hand-built structure in turn, with its name."""
    return request.param, STRUCTURES[request.param]()


@pytest.fixture
def nacl_with_b() -> Structure:
    return with_b_factors()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data relative to the repository root; skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (needed for real-structure checks)")
    return SHARED_DATA
