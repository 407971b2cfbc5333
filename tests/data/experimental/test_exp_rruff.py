"""RRUFF-908 npz (real, when present) and the raw RRUFF XY / DIF formats (hand-written fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pxrdbench.data.experimental import load_rruff908, load_rruff_dif, load_rruff_xy, rruff908_arrays, to_grid
from pxrdbench.data.experimental import rruff908 as rruff908_module
from pxrdbench.errors import DatasetError, PatternError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "experimental"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
NPZ = SHARED / "rruff908" / "rruff908_dev.npz"
XY = FIXTURES / "R040031_Quartz__Powder__Xray_Data_XY_Processed.txt"
DIF = FIXTURES / "R040031_Quartz__DIF_File.txt"


def test_npz_with_wrong_keys_names_file_and_missing_keys(tmp_path):
    path = tmp_path / "wrong.npz"
    np.savez(path, two_theta=np.arange(3.0), patterns=np.zeros((2, 3)))
    with pytest.raises(PatternError) as info:
        rruff908_arrays(path)
    text = str(info.value)
    assert "wrong.npz" in text and "'intensity'" in text and "'space_group'" in text


def test_npz_with_bad_shapes_and_not_an_npz(tmp_path):
    path = tmp_path / "shape.npz"
    np.savez(
        path,
        two_theta=np.arange(3.0),
        intensity=np.zeros((2, 4)),
        crystal_system=np.zeros(2, int),
        space_group=np.ones(2, int),
        source_index=np.arange(2),
    )
    with pytest.raises(PatternError, match="shape.npz"):
        rruff908_arrays(path)
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(PatternError, match="junk.npz"):
        rruff908_arrays(junk)


def test_missing_default_file_says_where_to_put_it(monkeypatch, tmp_path):
    monkeypatch.setattr(
        rruff908_module, "candidate_paths", lambda: [tmp_path / "rruff908" / "rruff908_dev.npz"]
    )
    with pytest.raises(DatasetError, match="AGI-init/XRDs.*") as info:
        load_rruff908()
    assert "PXRDBENCH_DATA" in str(info.value) and str(tmp_path) in str(info.value)


@pytest.mark.skipif(not NPZ.is_file(), reason=f"shared RRUFF-908 npz not found at {NPZ}")
def test_real_rruff908_arrays_and_patterns():
    arrays = rruff908_arrays(NPZ)
    assert arrays.intensity.shape == (454, 8500) and arrays.two_theta[0] == pytest.approx(5.0)
    assert arrays.wavelength.name == "CuKa"
    assert np.bincount(arrays.crystal_system, minlength=7)[4] == 0  # the README: no trigonal entries
    patterns = load_rruff908(NPZ)
    assert len(patterns) == 454 and len({p.id for p in patterns}) == 454
    consistent = [p for p in patterns if len(p.provenance["notes"]) == 1]
    assert len(consistent) == 454  # every stored crystal system matches its space group
    p = patterns[0]
    y, mask = to_grid(p, arrays.two_theta, "CuKa", normalise="none")
    assert mask.all()
    np.testing.assert_allclose(y, arrays.intensity[0], atol=1e-6)


def test_dif_cell_space_group_wavelength_and_bragg_consistent_peaks():
    dif = load_rruff_dif(DIF)
    assert dif["cell"] == (4.916, 4.916, 5.4054, 90.0, 90.0, 120.0)
    assert dif["space_group_symbol"] == "P3_221" and dif["space_group"] == 154 and dif["crystal_system"] == 4
    assert dif["wavelength"].angstrom == pytest.approx(1.541838)
    peaks = dif["peaks"]
    assert peaks["two_theta"].size == 8 and peaks["hkl"][1].tolist() == [1, 0, 1]
    assert peaks["multiplicity"].tolist() == [6] * 8
    bragg = np.degrees(2 * np.arcsin(1.541838 / (2 * peaks["d_spacing"])))
    np.testing.assert_allclose(bragg, peaks["two_theta"], atol=0.01)


def test_xy_alone_has_no_wavelength_and_with_dif_has_labels():
    (alone,) = load_rruff_xy(XY)
    assert alone.id == "rruff:R040031" and alone.wavelength is None
    assert alone.labels == {"mineral": "Quartz", "formula": "SiO2", "elements": ["O", "Si"]}
    assert alone.provenance["header"]["LOCALITY"].startswith("Hot Springs")
    (full,) = load_rruff_xy(XY, dif=DIF, wavelength="MoKa")
    assert full.wavelength.angstrom == pytest.approx(1.541838)
    assert any("ignored" in n for n in full.provenance["notes"])
    assert full.labels["space_group"] == 154 and full.labels["lattice"][2] == pytest.approx(5.4054)
    # the strongest measured point is the (101) reflection listed in the DIF
    assert abs(full.two_theta[np.argmax(full.intensity)] - 26.64) < 0.11


def test_xy_bad_data_row_names_line(tmp_path):
    path = tmp_path / "R1__Powder__Xray_Data_XY_RAW.txt"
    path.write_text("##RRUFFID=R1\n10.0, 5\n10.1; x\n##END=\n")
    with pytest.raises(PatternError, match="line 3"):
        load_rruff_xy(path)
