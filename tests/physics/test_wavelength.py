"""Wavelengths and Bragg geometry (pxrdbench.physics.wavelength)."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import PatternError, WavelengthError
from pxrdbench.physics.wavelength import (
    HC_KEV_ANGSTROM,
    NAMED_SOURCES,
    Wavelength,
    convert_two_theta,
    d_to_q,
    d_to_two_theta,
    parse_wavelength,
    q_to_two_theta,
    remap_pattern,
    two_theta_to_d,
    two_theta_to_q,
)


def test_named_sources():
    cu = parse_wavelength("CuKa")
    assert cu.lines == ((1.54056, 1.0), (1.54439, 0.5))
    assert cu.angstrom == pytest.approx((1.54056 + 0.5 * 1.54439) / 1.5)
    assert cu.primary.lines == ((1.54056, 1.0),)
    assert parse_wavelength("cukα1").angstrom == 1.54056
    assert parse_wavelength("MoKa2").angstrom == 0.71359
    assert parse_wavelength("MoKa").angstrom == pytest.approx(0.71073, abs=1e-5)  # pymatgen's MoKa
    assert set(NAMED_SOURCES) >= {
        f"{el}Ka{s}" for el in ["Cu", "Mo", "Co", "Fe", "Cr", "Ag"] for s in ["", "1", "2"]
    }


def test_numbers_and_energies():
    assert parse_wavelength(1.5406).angstrom == 1.5406
    assert parse_wavelength("1.5406 Å").angstrom == 1.5406
    assert parse_wavelength("0.7093A").angstrom == 0.7093
    twenty = parse_wavelength("20keV")
    assert twenty.angstrom == pytest.approx(0.619921, abs=1e-6)
    assert twenty.kev == pytest.approx(20.0)
    assert parse_wavelength("CuKa1").kev == pytest.approx(HC_KEV_ANGSTROM / 1.54056)
    wl = Wavelength("x", ((1.0, 1.0),))
    assert parse_wavelength(wl) is wl


@pytest.mark.parametrize("spec", [None, "", "   "])
def test_missing_wavelength_is_an_error(spec):
    with pytest.raises(WavelengthError, match="no wavelength given") as info:
        parse_wavelength(spec, source="scan.xy")
    assert info.value.source == "scan.xy"


@pytest.mark.parametrize("spec", [0.0, -1.0, "-1.5", "0keV", float("nan")])
def test_non_positive_wavelength_is_an_error(spec):
    with pytest.raises(WavelengthError, match="positive"):
        parse_wavelength(spec)


def test_unknown_name_lists_known_sources():
    with pytest.raises(WavelengthError, match="CuKa"):
        parse_wavelength("XyKa")


def test_bragg_conversions_round_trip():
    lam = 1.54056
    d = np.array([3.2564, 2.8201, 1.9941, 1.0])
    tt = d_to_two_theta(d, lam)
    np.testing.assert_allclose(two_theta_to_d(tt, lam), d, rtol=1e-12)
    np.testing.assert_allclose(lam, 2 * d * np.sin(np.radians(tt / 2)), rtol=1e-12)  # Bragg's law
    q = two_theta_to_q(tt, lam)
    np.testing.assert_allclose(q, d_to_q(d), rtol=1e-12)
    np.testing.assert_allclose(q_to_two_theta(q, lam), tt, rtol=1e-12)
    assert np.isnan(d_to_two_theta(0.5, lam))  # λ/2d > 1: unreachable
    assert np.isinf(two_theta_to_d(0.0, lam))


def test_convert_two_theta_keeps_d():
    tt_cu = np.array([20.0, 45.0, 90.0])
    tt_mo = convert_two_theta(tt_cu, 1.54056, 0.70930)
    np.testing.assert_allclose(two_theta_to_d(tt_mo, 0.70930), two_theta_to_d(tt_cu, 1.54056), rtol=1e-12)
    assert np.isnan(convert_two_theta(150.0, 0.70930, 1.54056))


def test_remap_pattern_drops_and_reports_unreachable_points():
    tt = np.linspace(10.0, 150.0, 15)
    y = np.arange(15.0)
    out = remap_pattern(tt, y, "MoKa1", "CuKa1")
    reachable = 1.54056 / 0.70930 * np.sin(np.radians(tt / 2)) <= 1
    assert out.n_dropped == int((~reachable).sum()) > 0
    assert out.dropped_two_theta_range == (tt[~reachable].min(), tt[~reachable].max())
    np.testing.assert_array_equal(out.intensity, y[reachable])
    assert np.all(np.diff(out.two_theta) > 0)
    full = remap_pattern(tt[:3], y[:3], "CuKa1", "MoKa1")
    assert full.n_dropped == 0 and full.dropped_two_theta_range is None


def test_remap_pattern_errors():
    with pytest.raises(WavelengthError, match="measured wavelength"):
        remap_pattern(np.array([10.0]), np.array([1.0]), None, "CuKa", source="scan.xy")
    with pytest.raises(PatternError, match="equal length"):
        remap_pattern(np.array([10.0, 11.0]), np.array([1.0]), "CuKa", "MoKa")
