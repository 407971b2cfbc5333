"""Structure reading: CIF text, files, directories and CSV tables; every failure names its input and cause."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from pymatgen.core import Lattice, Structure

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.data.structure_io import iter_structure_inputs, read_cif_text, validate_structure
from pxrdbench.errors import InputError, StructureError

BAD_CIFS = {
    "empty.cif": "empty file",
    "no_atoms.cif": "no _atom_site loop",
    "not_a_cif.cif": "not a CIF",
    "unknown_element.cif": "unknown element 'Xx'",
    "zero_volume.cif": "zero volume",
}


def test_read_valid_cif(fixtures_dir):
    structure = read_cif_text((fixtures_dir / "nacl.cif").read_text(), "nacl.cif")
    assert structure.composition.reduced_formula == "NaCl"
    assert len(structure) == 8  # conventional cell kept (no primitive reduction)
    assert structure.lattice.a == pytest.approx(5.6402)


def test_partial_occupancy_is_kept(fixtures_dir):
    structure = read_cif_text((fixtures_dir / "fe_co_disordered.cif").read_text(), "fe_co.cif")
    assert not structure.is_ordered
    mixed = [site.species.get_el_amt_dict() for site in structure if len(site.species) == 2]
    assert mixed == [pytest.approx({"Fe": 0.5, "Co": 0.5})]


@pytest.mark.parametrize(("name", "cause"), sorted(BAD_CIFS.items()))
def test_malformed_cifs_raise_with_source_and_cause(fixtures_dir, name, cause):
    with pytest.raises(StructureError) as info:
        read_cif_text((fixtures_dir / name).read_text(), f"fixtures/{name}")
    assert info.value.source == f"fixtures/{name}"
    assert cause in info.value.reason


def test_validate_structure():
    good = Structure(Lattice.cubic(3.0), ["Fe"], [[0, 0, 0]])
    assert validate_structure(good, "x") is good
    with pytest.raises(StructureError, match="no sites"):
        validate_structure(Structure(Lattice.cubic(3.0), [], []), "empty")


def test_directory_yields_records_and_failures_sorted(fixtures_dir, tmp_path):
    nested = tmp_path / "set" / "sub"
    nested.mkdir(parents=True)
    for name in ["nacl.cif", "empty.cif", "unknown_element.cif"]:
        shutil.copy(fixtures_dir / name, nested / name)
    shutil.copy(fixtures_dir / "fe_co_disordered.cif", tmp_path / "set" / "a.CIF")
    (tmp_path / "set" / "notes.txt").write_text("not a structure")
    items = list(iter_structure_inputs(tmp_path / "set"))
    assert [item.id for item in items] == ["a", "sub/empty", "sub/nacl", "sub/unknown_element"]
    records = [i for i in items if isinstance(i, StructureRecord)]
    failures = [i for i in items if isinstance(i, SourceFailure)]
    assert {r.source for r in records} == {"cif"} and len(records) == 2
    assert all(f.source == "cif" and str(tmp_path) in f.reason for f in failures)
    assert "empty file" in failures[0].reason and "'Xx'" in failures[1].reason


def test_single_cif_file(fixtures_dir):
    (record,) = list(iter_structure_inputs(fixtures_dir / "nacl.cif"))
    assert isinstance(record, StructureRecord) and record.id == "nacl"


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_with_cif_column(fixtures_dir, tmp_path, suffix):
    good = (fixtures_dir / "nacl.cif").read_text()
    bad = (fixtures_dir / "unknown_element.cif").read_text()
    path = tmp_path / f"table{suffix}"
    pd.DataFrame({"material_id": ["mp-1", "mp-2", "mp-3"], "cif": [good, bad, ""]}).to_csv(path, index=False)
    items = list(iter_structure_inputs(path))
    assert [i.id for i in items] == ["mp-1", "mp-2", "mp-3"]
    assert isinstance(items[0], StructureRecord) and items[0].source == "csv"
    assert isinstance(items[1], SourceFailure) and "row 1" in items[1].reason and "'Xx'" in items[1].reason
    assert isinstance(items[2], SourceFailure) and "empty file" in items[2].reason


def test_csv_ids_fall_back_to_row_numbers(fixtures_dir, tmp_path):
    path = tmp_path / "plain.csv"
    pd.DataFrame({"cif": [(fixtures_dir / "nacl.cif").read_text()] * 2}).to_csv(path, index=False)
    assert [i.id for i in iter_structure_inputs(path)] == ["0", "1"]


def test_csv_without_cif_column(tmp_path):
    path = tmp_path / "wrong.csv"
    pd.DataFrame({"structure": ["x"]}).to_csv(path, index=False)
    with pytest.raises(InputError, match="no 'cif' column"):
        list(iter_structure_inputs(path))


def test_missing_path_and_empty_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        list(iter_structure_inputs(tmp_path / "nowhere"))
    with pytest.raises(InputError, match="no \\*.cif files"):
        list(iter_structure_inputs(tmp_path))
    other = tmp_path / "data.json"
    other.write_text("{}")
    with pytest.raises(InputError, match="unsupported input"):
        list(iter_structure_inputs(other))
