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


# --- the fast paths: cached index grids, gathered vs BLAS-box structure factors, uncached large boxes ---


def _assert_same_reflections(a: Reflections, b: Reflections) -> None:
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.hkl, b.hkl)
    np.testing.assert_array_equal(a.multiplicity, b.multiplicity)
    np.testing.assert_allclose(a.d, b.d, rtol=1e-13)
    np.testing.assert_allclose(a.intensity, b.intensity, rtol=1e-11, atol=1e-12 * a.intensity.max())


def _assert_every_path_agrees(monkeypatch: pytest.MonkeyPatch, structure: Structure) -> None:
    from pxrdbench.physics import reflections as module

    default = compute_reflections(structure, 0.6)
    assert default.hkl.dtype == np.int64 and default.multiplicity.dtype.kind == "i"
    monkeypatch.setattr(module, "GATHER_MAX_ENTRIES", 0)  # cached grid, BLAS box product
    _assert_same_reflections(default, compute_reflections(structure, 0.6))
    monkeypatch.setattr(module, "_CACHED_GRID_POINTS", 0)  # no grid: g² evaluated on the box itself
    uncached = compute_reflections(structure, 0.6)
    assert uncached.hkl.dtype == np.int64
    _assert_same_reflections(default, uncached)


def test_all_structure_factor_paths_agree(monkeypatch, named_structure):
    _assert_every_path_agrees(monkeypatch, named_structure[1])


def test_all_structure_factor_paths_agree_with_b_factors(monkeypatch, nacl_with_b):
    _assert_every_path_agrees(monkeypatch, nacl_with_b)


def test_half_space_grid_rows_are_one_friedel_half_in_lexicographic_order():
    from pxrdbench.physics.reflections import _build_grid

    grid = _build_grid(2, 3, 1)
    rows = [tuple(h) for h in grid.hkl.tolist()]
    box = list(itertools.product(range(0, 3), range(-3, 4), range(-1, 2)))
    # the lexicographically positive points, in order: exactly one of ±h for every h ≠ 0 with |h| in the box
    assert rows == [h for h in box if h > (0, 0, 0)]
    assert [box.index(h) for h in rows] == list(range(grid.skip, len(box)))  # row r is box index r + skip
    h, k, ell = grid.hkl.T.astype(float)
    np.testing.assert_array_equal(
        grid.monomials, np.column_stack([h * h, k * k, ell * ell, 2 * h * k, 2 * h * ell, 2 * k * ell])
    )
    values = (grid.axis_values / (2j * np.pi)).real
    np.testing.assert_array_equal(values[grid.axis_rows].T, grid.hkl)
    np.testing.assert_array_equal(
        grid.axis_coordinate[grid.axis_rows].T, np.broadcast_to([0, 1, 2], grid.hkl.shape)
    )


def test_two_ionic_species_of_one_element_on_a_site_add_up():
    from pymatgen.core import Species

    mixed = Structure(Lattice.cubic(3.0), [{Species("Fe", 2): 0.25, Species("Fe", 3): 0.5}], [[0, 0, 0]])
    table = scatterer_table(mixed)
    assert table.elements == ("Fe",)
    np.testing.assert_allclose(table.weights, [[0.75]])
    plain = Structure(Lattice.cubic(3.0), [{"Fe": 0.75}], [[0, 0, 0]])
    np.testing.assert_allclose(
        compute_reflections(mixed, 1.0).intensity, compute_reflections(plain, 1.0).intensity
    )


def test_cell_is_not_changed_and_repeat_calls_are_identical(zno):
    before = zno.copy()
    first, second = compute_reflections(zno, 0.9), compute_reflections(zno, 0.9)
    assert zno == before
    for key, value in first.to_dict().items():
        np.testing.assert_array_equal(getattr(second, key), value)


@pytest.mark.slow
def test_simulate_is_much_faster_than_pymatgen(nacl, cscl, zno):
    """A loose, load-tolerant floor (the benchmark measures ~25× on 300 MP cells): ≥ 5× in CPU time."""
    import time

    structures = [nacl, cscl, zno]
    calculator = XRDCalculator(wavelength=CU)
    ours = theirs = 0.0
    for _ in range(3):
        for structure in structures:
            start = time.process_time()
            simulate(structure, CU)
            ours += time.process_time() - start
            start = time.process_time()
            calculator.get_pattern(structure)
            theirs += time.process_time() - start
    assert theirs / ours >= 5.0, f"pymatgen {theirs:.3f} s vs pxrdbench {ours:.3f} s"
