"""Column text files, bad inputs and the extension/content registry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pxrdbench.data.experimental import detect_format, list_formats, load_columns, load_pattern
from pxrdbench.errors import ConfigError, InputError, PatternError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "experimental"


def test_xy_with_comments_and_header_row():
    (p,) = load_columns(FIXTURES / "nacl_region.xy", wavelength="CuKa")
    assert p.id == "nacl_region" and p.two_theta.size == 61
    assert p.two_theta[0] == pytest.approx(30.0) and p.two_theta[-1] == pytest.approx(33.0)
    assert p.provenance["header"] == ["2Theta Intensity"]
    assert p.wavelength is not None and p.wavelength.name == "CuKa"
    # NaCl (200) at d = 2.8201 Å: the strongest point sits at the Bragg angle for Cu Kα1
    bragg = np.degrees(2 * np.arcsin(1.540598 / (2 * 2.8201)))
    assert abs(p.two_theta[np.argmax(p.intensity)] - bragg) < 0.03


def test_semicolon_csv_with_decimal_commas_descending_and_esd():
    (p,) = load_columns(FIXTURES / "nacl_region_semicolon.csv")
    (q,) = load_columns(FIXTURES / "nacl_region.xy")
    np.testing.assert_allclose(p.two_theta, q.two_theta)
    np.testing.assert_allclose(p.intensity, q.intensity)
    np.testing.assert_allclose(p.provenance["esd"], np.sqrt(q.intensity), atol=0.06)
    assert p.wavelength is None and "no wavelength" in p.provenance["notes"][0]


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("bad_empty.xy", PatternError, "empty"),
        ("bad_nan.xy", PatternError, "non-finite intensity"),
        ("bad_negative.xy", PatternError, "negative 2θ"),
        ("bad_not_increasing.xy", PatternError, "not strictly increasing"),
    ],
)
def test_bad_files_name_the_file_and_the_cause(name, error, words):
    with pytest.raises(error) as info:
        load_pattern(FIXTURES / name, wavelength="CuKa")
    assert name in str(info.value) and words in str(info.value)


def test_unknown_extension_missing_file_and_bad_format_name(tmp_path):
    odd = tmp_path / "scan.raw"
    odd.write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match=r"scan\.raw.*unknown pattern file extension '\.raw'"):
        load_pattern(odd)
    with pytest.raises(InputError, match="does not exist"):
        load_pattern(tmp_path / "absent.xy")
    with pytest.raises(ConfigError, match="Did you mean 'xrdml'"):
        load_pattern(FIXTURES / "nacl_region.xy", fmt="xrdmll")


def test_detect_format_by_extension_and_content():
    assert detect_format(FIXTURES / "nacl_cuka.xrdml") == "xrdml"
    assert detect_format(FIXTURES / "nacl_opxrd.json") == "opxrd"
    assert detect_format(FIXTURES / "nacl_cuka1_pdcif.cif") == "rietveld_cif"
    assert detect_format(FIXTURES / "R040031_Quartz__Powder__Xray_Data_XY_Processed.txt") == "rruff_xy"
    assert detect_format(FIXTURES / "nacl_region.xy") == "columns"
    with pytest.raises(PatternError, match="DIF peak list"):
        detect_format(FIXTURES / "R040031_Quartz__DIF_File.txt")
    assert set(list_formats()) == {"columns", "opxrd", "rietveld_cif", "rruff908", "rruff_xy", "xrdml"}


def test_load_pattern_dispatches_every_fixture_format():
    ids = {
        "nacl_cuka.xrdml": "xrdml:nacl_cuka",
        "nacl_opxrd.json": "opxrd:nacl_opxrd",
        "nacl_cuka1_pdcif.cif": "pdcif:nacl_cuka1_pdcif",
        "R040031_Quartz__Powder__Xray_Data_XY_Processed.txt": "rruff:R040031",
        "nacl_region.xy": "nacl_region",
    }
    for name, pid in ids.items():
        (p,) = load_pattern(FIXTURES / name, wavelength="CuKa")
        assert p.id == pid and p.wavelength is not None
