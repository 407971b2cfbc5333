"""PANalytical XRDML: the hand-written fixture and the 60 real dara scans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pxrdbench.data.experimental import load_xrdml, to_grid
from pxrdbench.errors import PatternError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "experimental"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
DARA = SHARED / "experimental" / "dara-xrdml"


def test_fixture_positions_counts_and_doublet():
    (p,) = load_xrdml(FIXTURES / "nacl_cuka.xrdml")
    assert p.id == "xrdml:nacl_cuka" and p.two_theta.size == 61
    np.testing.assert_allclose(p.two_theta, np.linspace(30.0, 33.0, 61))
    assert p.wavelength.lines == ((1.540598, 1.0), (1.544426, 0.5))
    assert p.provenance["sample_id"] == "nacl_test" and p.provenance["counting_time_s"] == 1.0
    assert p.provenance["namespace"] == "http://www.xrdml.com/XRDMeasurement/2.3"
    bragg = np.degrees(2 * np.arcsin(1.540598 / (2 * 2.8201)))
    assert abs(p.two_theta[np.argmax(p.intensity)] - bragg) < 0.03


def test_list_positions_and_attenuation(tmp_path):
    text = (FIXTURES / "nacl_cuka.xrdml").read_text(encoding="utf-8")
    start = text.index("<startPosition>30")
    end = text.index("</endPosition>", start) + len("</endPosition>")
    listed = "<listPositions>" + " ".join(f"{30 + 0.05 * i:.2f}" for i in range(61)) + "</listPositions>"
    text = text[:start] + listed + text[end:]
    text = text.replace(
        "<counts", "<beamAttenuationFactors>" + " 2" * 61 + "</beamAttenuationFactors><counts"
    )
    path = tmp_path / "listed.xrdml"
    path.write_text(text, encoding="utf-8")
    (p,) = load_xrdml(path)
    (ref,) = load_xrdml(FIXTURES / "nacl_cuka.xrdml")
    np.testing.assert_allclose(p.two_theta, ref.two_theta, atol=1e-9)
    np.testing.assert_allclose(p.intensity, 2 * ref.intensity)


def test_malformed_xml_names_the_file(tmp_path):
    path = tmp_path / "broken.xrdml"
    path.write_text("<xrdMeasurements><xrdMeasurement>", encoding="utf-8")
    with pytest.raises(PatternError, match="broken.xrdml.*XML"):
        load_xrdml(path)


@pytest.mark.skipif(not DARA.is_dir(), reason=f"shared dara-xrdml data not found at {DARA}")
def test_all_60_dara_scans_parse_and_grid():
    files = sorted(DARA.glob("*/*.xrdml"))
    assert len(files) == 60
    sizes = set()
    for f in files:
        (p,) = load_xrdml(f)
        assert p.wavelength.primary.angstrom == pytest.approx(1.540598)
        assert 9.5 < p.two_theta[0] < 10.5 and 99.5 < p.two_theta[-1] < 100.5
        sizes.add(p.two_theta.size)
    assert sizes == {2071, 8282, 8301}
    y, mask = to_grid(p, np.arange(5.0, 90.0, 0.02), "CuKa")
    assert not mask[0] and mask[-1] and y.max() == pytest.approx(1.0)
