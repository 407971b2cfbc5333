"""IUCr Rietveld powder CIFs: fixtures, the 15 real pdcif15 files and the COD example."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator

from pxrdbench.data.experimental import load_rietveld_cif, to_grid
from pxrdbench.data.experimental.rietveld_cif import cif_number
from pxrdbench.errors import PatternError, WavelengthError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "experimental"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PDCIF15 = SHARED / "experimental" / "pdcif15"
COD = SHARED / "experimental" / "opxrd-format" / "cod_1501688_pdcif.cif"

# file stem → (points, first 2θ, last 2θ, mean wavelength Å, phases, space group or None)
EXPECTED = {
    "av5088sup4": (7665, 4.05, 80.69, 1.54056, 2, None),
    "br1322Isup2": (9652, 15.016, 89.975, 1.54056, 1, 186),
    "br1340Isup2": (4001, 10.0, 90.0, 1.5418, 1, 11),
    "ck5030Vsup6": (7270, 8.519, 129.993, 1.54178, 1, 25),
    "gw5052Mg2Si_100K_LTsup2": (6801, 7.0, 75.0, 0.49935, 1, 225),
    "gw5052Mg2Sn_100K_LTsup23": (7081, 5.5, 76.3, 0.49935, 1, 225),
    "iz1026Isup2": (5151, 15.0, 118.0, 1.5418, 1, 14),
    "ks5409BTsup2": (5245, 15.063, 119.943, 1.54056, 1, 99),
    "sh0123Xraysup5": (2001, 10.0, 110.0, 1.540562, 1, 14),
    "sq1033Isup2": (6501, 10.0, 140.0, 1.5418, 1, 62),
    "sq3214Isup2": (5200, 5.033, 109.013, 1.54059, 1, 62),
    "wh5012phaseIIIsup3": (553, 5.004, 18.218, 0.71073, 1, 194),
    "wh5012phaseIIsup2": (586, 5.004, 19.008, 0.71073, 1, 62),
    "wm2446Isup2": (5880, 9.945, 109.888, 1.54178, 1, 129),
    "wn6225Isup2": (6251, 10.0, 135.0, (1.54056 + 0.5 * 1.54439) / 1.5, 1, 187),
}


def test_cif_number_strips_esd_and_marks_missing():
    assert cif_number("1234(35)") == 1234.0 and cif_number("5.6402(2)") == 5.6402
    assert np.isnan(cif_number(".")) and np.isnan(cif_number("?"))


def test_fixture_range_based_two_theta_counts_with_esd_and_structure():
    (p,) = load_rietveld_cif(FIXTURES / "nacl_cuka1_pdcif.cif")
    assert p.id == "pdcif:nacl_cuka1_pdcif" and p.two_theta.size == 221
    np.testing.assert_allclose(p.two_theta, np.linspace(26.0, 48.0, 221))
    assert p.provenance["intensity_tag"] == "_pd_meas_counts_total"  # measured preferred over calculated
    assert p.intensity.dtype == float and p.intensity.min() >= 50
    assert p.wavelength.lines == ((1.540562, 1.0),)
    assert p.structure is not None and len(p.structure) == 8
    assert p.labels["space_group"] == 225 and p.labels["formula"] == "NaCl" and p.labels["n_phases"] == 1
    # (200) of NaCl (d = a/2) is the strongest peak; on a Mo Kα1 grid it moves to 2 asin(λ_Mo / 2d)
    grid = np.arange(5.0, 30.0, 0.01)
    y, mask = to_grid(p, grid, "MoKa1")
    expected = np.degrees(2 * np.arcsin(0.7093 / 5.6402))
    assert abs(grid[np.argmax(y)] - expected) < 0.02 and mask.sum() > 0


def test_fixture_without_wavelength_needs_the_callers():
    path = FIXTURES / "nacl_no_wavelength_pdcif.cif"
    with pytest.raises(WavelengthError, match=r"nacl_no_wavelength_pdcif.cif.*no wavelength"):
        load_rietveld_cif(path)
    (p,) = load_rietveld_cif(path, wavelength="CuKa1")
    assert p.provenance["wavelength_tag"] == "caller" and p.two_theta.size == 111


def test_cif_without_pattern_loop(tmp_path):
    path = tmp_path / "structure_only.cif"
    text = (FIXTURES / "nacl_no_wavelength_pdcif.cif").read_text()
    path.write_text(text.split("loop_\n_pd_proc_2theta_corrected")[0])
    with pytest.raises(PatternError, match=r"structure_only.cif: no powder pattern loop"):
        load_rietveld_cif(path)


@pytest.mark.skipif(not PDCIF15.is_dir(), reason=f"shared pdcif15 data not found at {PDCIF15}")
@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_real_pdcif15_file(stem):
    (p,) = load_rietveld_cif(PDCIF15 / f"{stem}.rtv.combined.cif")
    n, first, last, lam, n_phases, sg = EXPECTED[stem]
    assert p.two_theta.size == n
    assert p.two_theta[0] == pytest.approx(first, abs=1e-3) and p.two_theta[-1] == pytest.approx(
        last, abs=1e-3
    )
    assert p.wavelength.angstrom == pytest.approx(lam, abs=1e-5)
    assert p.labels["n_phases"] == n_phases and p.labels.get("space_group") == sg
    for phase in p.provenance["phases"]:
        assert phase["structure"] is not None
        declared = phase.get("declared_space_group")
        assert declared is None or declared == phase["labels"]["space_group"]
    if n_phases == 2:
        assert p.structure is None and any("2 phases" in note for note in p.provenance["notes"])
    else:
        assert p.structure is not None


@pytest.mark.slow
@pytest.mark.skipif(not PDCIF15.is_dir(), reason=f"shared pdcif15 data not found at {PDCIF15}")
@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_real_pdcif15_strongest_peak_matches_refined_structure(stem):
    (p,) = load_rietveld_cif(PDCIF15 / f"{stem}.rtv.combined.cif")
    _, first, last, _, _, _ = EXPECTED[stem]
    # cross-check wavelength, 2θ axis and refined structure: the strongest measured point lies within 0.15° of
    # a strong reflection pymatgen computes for the refined phase(s) at the file's (primary) wavelength
    lam = p.wavelength.primary.angstrom
    strongest = p.two_theta[np.argmax(p.intensity)]
    gaps = []
    for phase in p.provenance["phases"]:
        calc = XRDCalculator(wavelength=lam).get_pattern(phase["structure"], two_theta_range=(first, last))
        gaps.append(np.min(np.abs(calc.x[calc.y > 10] - strongest)))
    assert min(gaps) < 0.15


@pytest.mark.skipif(not COD.is_file(), reason=f"shared COD pdCIF example not found at {COD}")
def test_real_cod_example_weights_from_the_file():
    (p,) = load_rietveld_cif(COD)
    assert p.two_theta.size == 3728 and p.labels["space_group"] == 11
    assert p.wavelength.lines == ((1.540598, 1.0), (1.54439, 0.38))
