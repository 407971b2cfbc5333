"""opXRD JSON: nested JSON strings, wavelength and phase labels, archive walk with failure records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pxrdbench.data.experimental import iter_opxrd_archive, load_opxrd
from pxrdbench.data.records import SourceFailure
from pxrdbench.errors import InputError, PatternError

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "experimental"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
AIMAT = SHARED / "experimental" / "opxrd-format" / "aimat.json"


def test_fixture_with_one_phase_gives_structure_and_labels():
    (p,) = load_opxrd(FIXTURES / "nacl_opxrd.json")
    assert p.wavelength.lines == ((1.5406, 1.0), (1.54439, 0.5))
    assert p.structure is not None and p.structure.composition.reduced_formula == "NaCl"
    assert p.labels["space_group"] == 225 and p.labels["crystal_system"] == 6
    assert p.labels["elements"] == ["Cl", "Na"] and p.labels["formula"] == "NaCl"
    assert p.provenance["institution"] == "TEST" and p.provenance["original_file"] == "nacl.raw"


@pytest.mark.skipif(not AIMAT.is_file(), reason=f"shared opXRD example not found at {AIMAT}")
def test_real_aimat_file():
    (p,) = load_opxrd(AIMAT)
    assert p.two_theta.size == 4059 and p.two_theta[0] == pytest.approx(37.0001)
    assert p.wavelength.primary.angstrom == pytest.approx(1.5406)
    assert p.labels == {} and p.structure is None
    assert p.provenance["original_format"] == "bruker_raw (.raw)"


def test_missing_keys_and_bad_nested_json(tmp_path):
    path = tmp_path / "nokeys.json"
    path.write_text(json.dumps({"intensities": [1, 2]}))
    with pytest.raises(PatternError, match=r"nokeys.json.*two_theta_values"):
        load_opxrd(path)
    doc = json.loads((FIXTURES / "nacl_opxrd.json").read_text())
    doc["label"] = "{not json"
    bad = tmp_path / "badlabel.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(PatternError, match=r"badlabel.json: label is not valid JSON"):
        load_opxrd(bad)


def test_archive_walk_keeps_going_past_bad_files(tmp_path):
    (tmp_path / "INST_A" / "sub").mkdir(parents=True)
    (tmp_path / "INST_B").mkdir()
    shutil.copy(FIXTURES / "nacl_opxrd.json", tmp_path / "INST_A" / "sub" / "one.json")
    shutil.copy(FIXTURES / "nacl_opxrd.json", tmp_path / "INST_B" / "two.json")
    (tmp_path / "INST_B" / "broken.json").write_text("{")
    items = list(iter_opxrd_archive(tmp_path))
    patterns = [i for i in items if not isinstance(i, SourceFailure)]
    failures = [i for i in items if isinstance(i, SourceFailure)]
    assert [p.id for p in patterns] == ["opxrd:INST_A/one", "opxrd:INST_B/two"]
    assert [p.provenance["institution"] for p in patterns] == ["INST_A", "INST_B"]
    assert (
        len(failures) == 1
        and failures[0].id.endswith("broken.json")
        and "not valid JSON" in failures[0].reason
    )
    with pytest.raises(InputError, match="not a directory"):
        list(iter_opxrd_archive(tmp_path / "missing"))
