"""Reflections and form factors: exact agreement with pymatgen, analytic structure factors, validation."""

from __future__ import annotations

import itertools
import json
from importlib import resources

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import DummySpecies, Lattice, Structure

from pxrdbench.errors import InputError, StructureError
from pxrdbench.physics.peaks import simulate
from pxrdbench.physics.reflections import Reflections, compute_reflections, compute_reflections_batch
from pxrdbench.physics.scattering import form_factors, scatterer_table
from pxrdbench.physics.wavelength import NAMED_SOURCES

CU = NAMED_SOURCES["CuKa"].angstrom
MO = NAMED_SOURCES["MoKa"].angstrom


def pymatgen_multiplicities(pattern) -> list[int]:
    """Total lattice points per pymatgen peak (sum over its hkl families)."""
    return [sum(family["multiplicity"] for family in families) for families in pattern.hkls]


def assert_same_as_pymatgen(structure: Structure, wavelength: float, calculator: XRDCalculator | None = None):
    ours = simulate(structure, wavelength)
    theirs = (calculator or XRDCalculator(wavelength=wavelength)).get_pattern(structure)
    assert len(ours) == len(theirs.x)
    np.testing.assert_allclose(ours.two_theta, theirs.x, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.intensity, theirs.y, rtol=0, atol=1e-3)
    assert ours.multiplicity.tolist() == pymatgen_multiplicities(theirs)
    np.testing.assert_allclose(ours.d, theirs.d_hkls, rtol=1e-9)


@pytest.mark.parametrize("wavelength", [CU, MO], ids=["CuKa", "MoKa"])
def test_peak_lists_equal_pymatgen(named_structure, wavelength):
    _, structure = named_structure
    assert_same_as_pymatgen(structure, wavelength)


def test_b_factors_match_pymatgen_debye_waller(nacl_with_b):
    calculator = XRDCalculator(wavelength=CU, debye_waller_factors={"Na": 1.2, "Cl": 0.8})
    assert_same_as_pymatgen(nacl_with_b, CU, calculator)
    # and B changes the pattern: high-angle peaks are damped relative to no B
    plain = simulate(nacl_with_b.copy(site_properties={"B_iso": [0.0] * len(nacl_with_b)}), CU)
    damped = simulate(nacl_with_b, CU)
    assert damped.intensity[-1] < plain.intensity[-1] - 1.0


def test_default_b_applies_to_every_site(nacl):
    calculator = XRDCalculator(wavelength=CU, debye_waller_factors={"Na": 0.5, "Cl": 0.5})
    ours = simulate(nacl, CU, default_b=0.5)
    theirs = calculator.get_pattern(nacl)
    np.testing.assert_allclose(ours.intensity, theirs.y, atol=1e-3)


def test_rock_salt_structure_factors_are_analytic(nacl):
    refl = compute_reflections(nacl, 1.0)
    rows = {tuple(h): i for i, h in enumerate(refl.hkl.tolist())}
    for hkl, mult, sign in [((2, 0, 0), 6, +1), ((1, 1, 1), 8, -1)]:
        i = rows[hkl]
        s = 1.0 / (2.0 * refl.d[i])
        f_na, f_cl = form_factors(["Na", "Cl"], np.array([s]))[:, 0]
        assert refl.multiplicity[i] == mult
        assert refl.d[i] == pytest.approx(5.6402 / np.sqrt(sum(x * x for x in hkl)), rel=1e-12)
        assert refl.intensity[i] == pytest.approx(mult * (4 * (f_na + sign * f_cl)) ** 2, rel=1e-10)


def test_rock_salt_mixed_parity_reflections_are_absent(nacl):
    refl = compute_reflections(nacl, 0.8)
    parity = refl.hkl % 2
    mixed = ~(np.all(parity == 0, axis=1) | np.all(parity == 1, axis=1))
    assert mixed.any() and (~mixed).any()
    assert np.all(refl.intensity[mixed] < 1e-20 * refl.intensity.max())
    assert np.all(refl.intensity[~mixed] > 1e-3 * refl.intensity.max())


def test_cesium_chloride_100(cscl):
    refl = compute_reflections(cscl, 2.0)
    i = refl.hkl.tolist().index([1, 0, 0])
    f_cs, f_cl = form_factors(["Cs", "Cl"], np.array([1 / (2 * 4.123)]))[:, 0]
    assert refl.multiplicity[i] == 6
    assert refl.intensity[i] == pytest.approx(6 * (f_cs - f_cl) ** 2, rel=1e-10)


def test_reflection_list_invariants(zno):
    d_min = 1.1
    refl = compute_reflections(zno, d_min)
    assert np.all(np.diff(refl.d) < 0) and refl.d[-1] >= d_min
    # multiplicities count every lattice point of the sphere except g = 0 (brute force over a box)
    rec = zno.lattice.reciprocal_lattice_crystallographic.matrix
    count = sum(
        1
        for h in itertools.product(range(-8, 9), repeat=3)
        if any(h) and np.linalg.norm(np.array(h) @ rec) <= 1 / d_min
    )
    assert refl.multiplicity.sum() == count
    # d matches the representative hkl, which is the lexicographically largest point of its set
    np.testing.assert_allclose(refl.d, [zno.lattice.d_hkl(h) for h in refl.hkl], rtol=1e-10)
    assert tuple(refl.hkl[0]) >= (0, 0, 0)


def test_partial_occupancy_scales_intensity():
    half = Structure(Lattice.cubic(3.0), [{"Cu": 0.5}], [[0, 0, 0]])
    full = Structure(Lattice.cubic(3.0), ["Cu"], [[0, 0, 0]])
    np.testing.assert_allclose(
        compute_reflections(half, 1.0).intensity * 4, compute_reflections(full, 1.0).intensity
    )


def test_dict_round_trip(zno):
    refl = compute_reflections(zno, 1.0)
    back = Reflections.from_dict({k: np.asarray(v) for k, v in refl.to_dict().items()})
    assert len(back) == len(refl)
    for key, value in refl.to_dict().items():
        np.testing.assert_array_equal(getattr(back, key), value)


def test_form_factors_match_the_tabulated_formula():
    raw = json.loads(
        resources.files("pymatgen.analysis.diffraction").joinpath("atomic_scattering_params.json").read_text()
    )
    s = np.array([0.0, 0.1, 0.35, 0.7])
    got = form_factors(["O", "Fe", "Fe2+"], s)
    assert got.shape == (3, 4)
    for row, (symbol, z) in zip(got, [("O", 8), ("Fe", 26), ("Fe", 26)], strict=True):
        coeffs = np.array(raw[symbol])
        expected = z - 41.78214 * s**2 * (coeffs[:, 0] * np.exp(-np.outer(s**2, coeffs[:, 1]))).sum(axis=1)
        np.testing.assert_allclose(row, expected, rtol=1e-12)
    assert got[1, 0] == 26.0


@pytest.mark.parametrize(
    ("structure", "needle"),
    [
        (Structure(Lattice.cubic(3.0), [], []), "no sites"),
        (Structure(Lattice([[1, 0, 0], [2, 0, 0], [0, 0, 1]]), ["Fe"], [[0, 0, 0]]), "volume"),
        (Structure(Lattice.cubic(3.0), [DummySpecies("Xx")], [[0, 0, 0]]), "unknown element 'Xx'"),
        (Structure(Lattice.cubic(3.0), ["Fe"], [[np.nan, 0, 0]]), "not finite"),
    ],
    ids=["no_sites", "zero_volume", "unknown_element", "nan_coords"],
)
def test_invalid_structures_raise_structure_error(structure, needle):
    with pytest.raises(StructureError, match=needle) as info:
        compute_reflections(structure, 1.0, source="mp-42")
    assert info.value.source == "mp-42"


@pytest.mark.parametrize("d_min", [0.0, -1.0, float("nan")])
def test_non_positive_d_min_is_an_input_error(nacl, d_min):
    with pytest.raises(InputError, match="d_min"):
        compute_reflections(nacl, d_min)


def test_unknown_element_in_form_factors():
    with pytest.raises(StructureError, match="'Qq'"):
        form_factors(["Qq"], np.array([0.1]))


def test_scatterer_table_mixed_site_weights():
    structure = Structure(
        Lattice.cubic(2.86), [{"Fe": 0.5, "Co": 0.5}, {"Fe": 1.0}], [[0, 0, 0], [0.5, 0.5, 0.5]]
    )
    table = scatterer_table(structure)
    assert table.elements == ("Fe", "Co")
    np.testing.assert_allclose(table.weights, [[0.5, 0.5], [1.0, 0.0]])
    assert table.volume == pytest.approx(2.86**3)


def test_batch_returns_errors_in_place(nacl, cscl):
    empty = Structure(Lattice.cubic(3.0), [], [])
    out = compute_reflections_batch([nacl, empty, cscl], 1.2, ids=["a", "b", "c"])
    assert isinstance(out[0], Reflections) and isinstance(out[2], Reflections)
    assert isinstance(out[1], StructureError) and out[1].source == "b"
    np.testing.assert_array_equal(out[2].intensity, compute_reflections(cscl, 1.2).intensity)


@pytest.mark.slow
def test_batch_with_worker_processes(nacl, cscl):
    empty = Structure(Lattice.cubic(3.0), [], [])
    out = compute_reflections_batch([nacl, empty, cscl, nacl], 1.2, workers=2)
    assert isinstance(out[1], StructureError) and "structure[1]" in str(out[1])
    np.testing.assert_array_equal(out[3].intensity, compute_reflections(nacl, 1.2).intensity)
