"""Stick peaks: Lorentz-polarisation, Bragg positions, Kα doublets, ranges, cut-off and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator

from pxrdbench.errors import WavelengthError
from pxrdbench.physics.peaks import PeakList, lorentz_polarisation, peaks, simulate
from pxrdbench.physics.reflections import compute_reflections
from pxrdbench.physics.wavelength import NAMED_SOURCES, d_to_two_theta

CU = NAMED_SOURCES["CuKa"]


def test_lorentz_polarisation_known_values():
    # 2θ = 90°: (1 + 0) / (sin²45° cos45°) = 2√2; 2θ = 60°: (1 + 1/4) / (1/4 · √3/2)
    np.testing.assert_allclose(
        lorentz_polarisation([90.0, 60.0]), [2 * np.sqrt(2), 1.25 / (0.25 * np.sqrt(3) / 2)]
    )
    assert lorentz_polarisation(10.0) > lorentz_polarisation(20.0)


def test_peak_positions_follow_bragg(nacl):
    result = simulate(nacl, "CuKa1")
    assert isinstance(result, PeakList) and len(result) > 5
    np.testing.assert_allclose(result.two_theta, d_to_two_theta(result.d, 1.54056), atol=1e-9)
    assert result.wavelength_angstrom == pytest.approx(1.54056)
    assert np.all(np.diff(result.two_theta) > 0)
    assert result.intensity.max() == pytest.approx(100.0)
    assert result.hkl.shape == (len(result), 3)


def test_single_line_mode_uses_the_mean_wavelength(nacl):
    mean = simulate(nacl, "CuKa")
    explicit = simulate(nacl, CU.angstrom)
    np.testing.assert_allclose(mean.two_theta, explicit.two_theta)
    assert mean.wavelength_angstrom == pytest.approx(1.541837, abs=1e-6)


def test_ka2_gives_weighted_doublets(cscl):
    refl = compute_reflections(cscl, 0.8)
    single = peaks(refl, "CuKa1", (20, 90))
    doublet = peaks(refl, "CuKa", (20, 90), ka2=True)
    assert len(doublet) == 2 * len(single)
    (l1, w1), (l2, w2) = CU.lines
    tt1, tt2 = d_to_two_theta(single.d, l1), d_to_two_theta(single.d, l2)
    np.testing.assert_allclose(np.sort(np.concatenate([tt1, tt2])), doublet.two_theta, atol=1e-9)
    # Kα2/Kα1 ratio of one reflection = w2/w1 · LP(2θ2)/LP(2θ1)
    i1 = doublet.intensity[np.isclose(doublet.two_theta, tt1[0])][0]
    i2 = doublet.intensity[np.isclose(doublet.two_theta, tt2[0])][0]
    expected = (w2 / w1) * lorentz_polarisation(tt2[0]) / lorentz_polarisation(tt1[0])
    assert i2 / i1 == pytest.approx(expected, rel=1e-10)


def test_range_limits_match_pymatgen(zno):
    ours = simulate(zno, CU.angstrom, (30.0, 70.0))
    theirs = XRDCalculator(wavelength=CU.angstrom).get_pattern(zno, two_theta_range=(30.0, 70.0))
    np.testing.assert_allclose(ours.two_theta, theirs.x, atol=1e-6)
    np.testing.assert_allclose(ours.intensity, theirs.y, atol=1e-3)
    assert ours.two_theta.min() >= 30.0 and ours.two_theta.max() <= 70.0


def test_cut_off_drops_weak_peaks(nacl):
    refl = compute_reflections(nacl, 0.7)
    everything = peaks(refl, CU, (0, 120), min_relative_intensity=0.0)
    strong = peaks(refl, CU, (0, 120), min_relative_intensity=5.0)
    assert len(strong) < len(everything)
    assert np.all(strong.intensity > 5.0)
    np.testing.assert_array_equal(np.isin(everything.two_theta, strong.two_theta), everything.intensity > 5.0)


def test_no_reflection_in_range_gives_an_empty_list(nacl):
    result = simulate(nacl, CU, (0.1, 5.0))
    assert len(result) == 0 and result.hkl.shape == (0, 3)


@pytest.mark.parametrize("bad_range", [(90, 10), (10, 10), (-5, 90), (0, 200), (float("nan"), 50), "x"])
def test_bad_two_theta_range(nacl, bad_range):
    with pytest.raises(WavelengthError, match="2θ range"):
        simulate(nacl, CU, bad_range, source="nacl.cif")


@pytest.mark.parametrize("wavelength", [None, 0.0, -1.54, "0keV", "Unobtainium"])
def test_bad_wavelength(nacl, wavelength):
    refl = compute_reflections(nacl, 1.0)
    with pytest.raises(WavelengthError) as info:
        peaks(refl, wavelength, source="nacl.cif")
    assert "nacl.cif" in str(info.value)


def test_reflections_in_one_two_theta_bin_merge_into_one_peak():
    from pxrdbench.physics.reflections import Reflections

    lam = 1.5406
    d = np.array([2.5, 2.5 * (1 - 2e-9), 2.0, 1.5])  # the first two are ~1e-7° apart
    refl = Reflections(
        d=d,
        hkl=np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [1, 1, 1]]),
        multiplicity=np.array([2, 4, 6, 8]),
        intensity=np.array([10.0, 30.0, 5.0, 1.0]),
    )
    tt = d_to_two_theta(d, lam)
    assert np.rint(tt[0] * 1e5) == np.rint(tt[1] * 1e5)  # precondition: one pymatgen bin
    result = peaks(refl, lam, (0, 90))
    assert len(result) == 3
    lp = lorentz_polarisation(tt)
    raw = np.array([10.0 * lp[0] + 30.0 * lp[1], 5.0 * lp[2], 1.0 * lp[3]])
    np.testing.assert_allclose(result.intensity, 100 * raw / raw.max(), rtol=1e-12)
    np.testing.assert_array_equal(result.multiplicity, [6, 6, 8])
    np.testing.assert_array_equal(result.hkl[0], [1, 0, 0])  # the lowest-angle member represents the peak
    assert result.d[0] == 2.5 and result.two_theta[0] == pytest.approx(tt[0], abs=1e-12)


def test_lower_range_limit_selects_a_slice(nacl):
    refl = compute_reflections(nacl, 0.9)
    full = peaks(refl, CU, (0, 90), min_relative_intensity=0.0)
    upper = peaks(refl, CU, (35.0, 90), min_relative_intensity=0.0)
    inside = full.two_theta >= 35.0
    np.testing.assert_allclose(upper.two_theta, full.two_theta[inside])
    np.testing.assert_array_equal(upper.hkl, full.hkl[inside])
    # rescaled to the strongest peak of the narrower range
    np.testing.assert_allclose(upper.intensity, 100 * full.intensity[inside] / full.intensity[inside].max())


def test_wavelength_specs_are_memoised_but_errors_are_not(nacl):
    from pxrdbench.physics.peaks import resolve_wavelength

    assert resolve_wavelength("CuKa", "a") is NAMED_SOURCES["CuKa"]
    assert resolve_wavelength(1.5406, "a") is resolve_wavelength(1.5406, "b")
    for _ in range(2):
        with pytest.raises(WavelengthError, match="nacl.cif"):
            resolve_wavelength(-1.0, "nacl.cif")
    refl = compute_reflections(nacl, 1.0)
    by_name, by_object = peaks(refl, "CuKa", (10, 80)), peaks(refl, CU, (10, 80))
    np.testing.assert_array_equal(by_name.two_theta, by_object.two_theta)
    np.testing.assert_array_equal(by_name.intensity, by_object.intensity)


def test_simulate_passes_peak_options_and_rejects_unknown_ones(cscl):
    doublet = simulate(cscl, "CuKa", (20, 90), ka2=True, min_relative_intensity=0.0)
    single = simulate(cscl, "CuKa1", (20, 90), min_relative_intensity=0.0)
    assert len(doublet) == 2 * len(single)
    with pytest.raises(TypeError):
        simulate(cscl, "CuKa", (20, 90), not_an_option=1)
