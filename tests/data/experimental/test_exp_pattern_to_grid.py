"""ExperimentalPattern validation, Bragg conversion onto a view grid, and the label helpers."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.data.experimental import (
    CRYSTAL_SYSTEMS,
    ExperimentalPattern,
    crystal_system_index,
    make_pattern,
    space_group_number,
    to_grid,
)
from pxrdbench.errors import ConfigError, InputError, PatternError, WavelengthError
from pxrdbench.physics.wavelength import NAMED_SOURCES


def _gaussian_pattern(d_spacing: float, wavelength: str, lo: float, hi: float, step: float = 0.01):
    """A single Gaussian peak at the 2θ of ``d_spacing`` (Bragg: 2θ = 2 asin(λ / 2d)) on a constant 10."""
    lam = NAMED_SOURCES[wavelength].angstrom
    centre = np.degrees(2 * np.arcsin(lam / (2 * d_spacing)))
    tt = np.arange(lo, hi, step)
    y = 10 + 1000 * np.exp(-0.5 * ((tt - centre) / 0.05) ** 2)
    return make_pattern("gauss", tt, y, NAMED_SOURCES[wavelength], provenance={"path": "memory"}), centre


def test_validate_rejects_each_defect_naming_the_pattern():
    cases = {
        "empty": (np.array([]), np.array([])),
        "NaN": (np.array([1.0, 2.0, 3.0]), np.array([1.0, np.nan, 1.0])),
        "negative": (np.array([-1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])),
        "not strictly increasing": (np.array([1.0, 2.0, 2.0]), np.array([1.0, 1.0, 1.0])),
        "equal length": (np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0])),
        "at least 2": (np.array([1.0]), np.array([1.0])),
    }
    for words, (tt, y) in cases.items():
        pattern = ExperimentalPattern("p1", tt, y, None, provenance={"path": "scan.xy"})
        with pytest.raises(PatternError) as info:
            pattern.validate()
        assert "p1 (scan.xy)" in str(info.value) and words in str(info.value), words


def test_make_pattern_reverses_a_descending_scan():
    p = make_pattern("desc", np.array([3.0, 2.0, 1.0]), np.array([30.0, 20.0, 10.0]), None)
    assert p.two_theta.tolist() == [1.0, 2.0, 3.0] and p.intensity.tolist() == [10.0, 20.0, 30.0]
    assert any("reversed" in n for n in p.provenance["notes"])


def test_same_wavelength_is_plain_interpolation_and_max_normalised():
    pattern, centre = _gaussian_pattern(2.8201, "CuKa", 20.0, 40.0)
    grid = np.arange(10.0, 50.0, 0.02)
    y, mask = to_grid(pattern, grid, "CuKa", scale=1.0)
    assert y.shape == grid.shape and mask.dtype == bool
    inside = (grid >= pattern.two_theta[0]) & (grid <= pattern.two_theta[-1])
    np.testing.assert_array_equal(mask, inside)
    assert np.all(y[~mask] == 0.0)
    assert y[mask].max() == pytest.approx(1.0)
    assert abs(grid[np.argmax(y)] - centre) <= 0.02
    raw, _ = to_grid(pattern, grid, "CuKa", normalise="none")
    expected = np.interp(grid[mask], pattern.two_theta, pattern.intensity)
    np.testing.assert_allclose(raw[mask], expected)


def test_conversion_to_another_wavelength_keeps_the_d_spacing():
    d = 2.8201  # NaCl (200), Å
    pattern, _ = _gaussian_pattern(d, "CuKa", 20.0, 60.0)
    grid = np.arange(5.0, 40.0, 0.005)
    y, mask = to_grid(pattern, grid, "MoKa", scale=100.0)
    expected = np.degrees(2 * np.arcsin(NAMED_SOURCES["MoKa"].angstrom / (2 * d)))
    assert abs(grid[np.argmax(y)] - expected) < 0.01
    assert y.max() == pytest.approx(100.0)
    lo = np.degrees(
        2
        * np.arcsin(NAMED_SOURCES["MoKa"].angstrom / NAMED_SOURCES["CuKa"].angstrom * np.sin(np.radians(10)))
    )
    assert abs(grid[mask][0] - lo) < 0.006
    # a number in Å and the named source agree
    y2, _ = to_grid(pattern, grid, NAMED_SOURCES["MoKa"].angstrom, scale=100.0)
    np.testing.assert_allclose(y, y2)


def test_points_unreachable_at_the_grid_wavelength_are_dropped_not_invented():
    pattern, _ = _gaussian_pattern(1.0, "MoKa", 30.0, 80.0)  # sin θ' > 1 at Cu Kα beyond ~55° Mo 2θ
    grid = np.arange(60.0, 180.0, 0.1)
    y, mask = to_grid(pattern, grid, "CuKa", normalise="none")
    assert mask.any() and not mask[-1]
    assert np.all(y[~mask] == 0)


def test_errors_no_wavelength_no_overlap_bad_normalise():
    p = make_pattern("nowl", np.linspace(10, 20, 11), np.ones(11), None, provenance={"path": "x.xy"})
    with pytest.raises(WavelengthError, match=r"nowl \(x.xy\)"):
        to_grid(p, np.linspace(10, 20, 5), "CuKa")
    q = make_pattern("cu", np.linspace(10, 20, 11), np.ones(11), NAMED_SOURCES["CuKa"])
    with pytest.raises(PatternError, match="does not overlap"):
        to_grid(q, np.linspace(50, 60, 5), "CuKa")
    with pytest.raises(ConfigError, match="max"):
        to_grid(q, np.linspace(10, 20, 5), "CuKa", normalise="maxx")
    with pytest.raises(WavelengthError):
        to_grid(q, np.linspace(10, 20, 5), "not-a-wavelength")


def test_space_group_symbols_and_crystal_systems():
    cases = {
        "P2_1/c": 14,
        "P21/c": 14,
        "P 1 21/n 1": 14,
        "P 63 m c": 186,
        "P3_221": 154,
        "P321": 150,
        "F m -3 m": 225,
        "P n": 7,
        "P 4 M M": 99,
        "R -3 c:H": 167,
        "P c a 21": 29,
    }
    for symbol, number in cases.items():
        assert space_group_number(symbol) == number, symbol
    with pytest.raises(InputError, match="Q9"):
        space_group_number("Q9")
    edges = {
        1: 0,
        2: 0,
        3: 1,
        15: 1,
        16: 2,
        74: 2,
        75: 3,
        142: 3,
        143: 4,
        167: 4,
        168: 5,
        194: 5,
        195: 6,
        230: 6,
    }
    assert {sg: crystal_system_index(sg) for sg in edges} == edges
    assert CRYSTAL_SYSTEMS[crystal_system_index(225)] == "cubic"
    with pytest.raises(InputError):
        crystal_system_index(231)
