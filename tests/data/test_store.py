"""The dataset cache: atomic writes, verification on load, rebuild of corrupt or partial caches, failures
listed, content-hash directory names, worker-count independence, clear errors for missing source files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.entry import BuildParams
from pxrdbench.data.sources import base
from pxrdbench.data.store import (
    DATA_FILES,
    build_cache,
    cache_dir_for,
    cache_hash,
    cache_key,
    sha256_file,
    verify_cache,
)
from pxrdbench.errors import CacheError, DatasetError

CIFS = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "cifs"
DATASET = f"cif_dir:{CIFS}"
NACL_A = 5.6402  # Å, conventional cubic cell of tests/fixtures/sources/cifs/nacl.cif


def quiet(msg: str) -> None:
    """A build log that swallows messages."""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The fixture CIF folder (NaCl, a disordered olivine, one broken CIF) built once for this module."""
    return build_cache(DATASET, root=tmp_path_factory.mktemp("store-cache"), log=quiet)


@pytest.fixture
def fresh_copy(built, tmp_path) -> Path:
    """A private copy of the built cache (same directory name) that a test may damage."""
    target = tmp_path / built.name
    shutil.copytree(built, target)
    return target


def test_build_writes_every_file_and_verifies(built) -> None:
    assert sorted(p.name for p in built.iterdir()) == sorted((*DATA_FILES, "manifest.json"))
    manifest = verify_cache(built)
    for name in DATA_FILES:
        assert manifest["files"][name] == sha256_file(built / name)
    assert not [p for p in built.parent.iterdir() if ".tmp-" in p.name], (
        "temporary build directory left behind"
    )
    assert ":" not in built.name and "/" not in built.name


def test_broken_entry_is_listed_not_fatal(built) -> None:
    failures = pd.read_csv(built / "failures.csv", keep_default_na=False)
    assert list(failures.columns) == ["id", "source", "stage", "reason"]
    assert failures["id"].tolist() == ["minerals/broken"]
    assert failures["stage"].tolist() == ["parse"]
    assert "broken.cif" in failures["reason"].iloc[0]
    cache = DatasetCache.open(built)
    assert sorted(cache.entries["id"]) == ["minerals/olivine_disordered", "nacl"]
    counts = cache.manifest["counts"]
    assert (counts["entries_seen"], counts["kept"], counts["failed"], counts["failed_parse"]) == (3, 2, 1, 1)


def test_info_counts_match_the_files(built) -> None:
    cache = DatasetCache.open(built)
    info = cache.info()
    failures = pd.read_csv(built / "failures.csv")
    assert info["structures"] == len(cache) == len(pd.read_csv(built / "entries.csv"))
    assert info["failed"] == len(failures) == info["failed_parse"] + info["failed_process"]
    assert info["entries_read"] == info["structures"] + info["failed"] + info["duplicates_dropped"]
    assert sum(info["splits"].values()) == info["structures"]
    assert sum(sum(per.values()) for per in info["crystal_systems"].values()) == info["structures"]
    assert info["distinct_space_groups"] == 2 and info["disordered"] == 1
    assert info["cache_hash"] in built.name and info["size_bytes"] > 0


def test_cached_nacl_reflections_follow_the_fcc_rule(built) -> None:
    """Cached d-spacings of rock salt: only h, k, l all even or all odd, d = a / sqrt(h² + k² + l²)."""
    cache = DatasetCache.open(built)
    row = int(np.flatnonzero(cache.entries["id"].to_numpy() == "nacl")[0])
    d, mf2 = cache.reflections(row, d_min=1.2)
    assert np.all(np.diff(d) < 0) and d.min() >= 1.2
    strong = d[mf2 > 1e-6 * mf2.max()]
    expected = NACL_A / np.sqrt([3, 4, 8, 11, 12, 16, 19, 20])
    np.testing.assert_allclose(strong, expected[expected >= 1.2], rtol=1e-5)
    labels = cache.labels
    assert labels["space_group"][row] == 225 - 1 and labels["crystal_system"][row] == 6
    assert set(np.flatnonzero(cache.element_multi_hot[row]) + 1) == {11, 17}
    graph = cache.graph_arrays(row, "radius")
    assert graph["edge_index"].shape[0] == 2 and graph["edge_vec"].shape == (graph["edge_index"].shape[1], 3)
    assert graph["edge_index"].max() < len(graph["z"]) and set(graph["z"].tolist()) == {11, 17}
    with pytest.raises(DatasetError, match="unknown split 'tst'"):
        cache.split_indices("tst")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda p: (p / "arrays.npz").write_bytes((p / "arrays.npz").read_bytes()[:-7] + b"garbage"),
            "checksum",
        ),
        (lambda p: (p / "manifest.json").unlink(), "no manifest"),
        (lambda p: (p / "failures.csv").unlink(), "missing"),
        (lambda p: (p / "manifest.json").write_text("{not json"), "unreadable manifest"),
    ],
    ids=["modified-arrays", "missing-manifest", "missing-file", "garbled-manifest"],
)
def test_corrupt_or_partial_cache_is_detected_and_rebuilt(fresh_copy, built, damage, message) -> None:
    damage(fresh_copy)
    with pytest.raises(CacheError, match=message):
        verify_cache(fresh_copy)
    with pytest.raises(CacheError):
        DatasetCache.open(fresh_copy)
    logged: list[str] = []
    rebuilt = build_cache(DATASET, root=fresh_copy.parent, log=logged.append)
    assert rebuilt == fresh_copy
    assert any("corrupt" in m and "rebuilding" in m for m in logged)
    verify_cache(rebuilt)
    for name in ("entries.csv", "failures.csv"):
        assert (rebuilt / name).read_bytes() == (built / name).read_bytes()


def test_verified_cache_is_reused_without_rebuilding(built) -> None:
    logged: list[str] = []
    before = (built / "manifest.json").stat().st_mtime_ns
    assert build_cache(DATASET, root=built.parent, log=logged.append) == built
    assert logged == [] and (built / "manifest.json").stat().st_mtime_ns == before


def test_directory_name_is_the_content_hash(built) -> None:
    manifest = json.loads((built / "manifest.json").read_text())
    key = cache_key(DATASET, BuildParams(), None, 0, (0.8, 0.1, 0.1))
    assert manifest["hash"] == cache_hash(key) and built.name.endswith(f"-{cache_hash(key)}")
    variants = {
        cache_hash(key),
        cache_hash(cache_key(DATASET, BuildParams(), 2, 0, (0.8, 0.1, 0.1))),
        cache_hash(cache_key(DATASET, BuildParams(d_min=1.0), None, 0, (0.8, 0.1, 0.1))),
        cache_hash(cache_key(DATASET, BuildParams(), None, 1, (0.8, 0.1, 0.1))),
    }
    assert len(variants) == 4
    limited = build_cache(DATASET, max_structures=2, root=built.parent, log=quiet)
    assert limited != built and DatasetCache.open(limited).manifest["counts"]["entries_seen"] == 2


def test_dataset_names_become_safe_directory_names(tmp_path) -> None:
    path = cache_dir_for("cif_dir:/data/my cifs+synthetic:1-3/225", "abc123", tmp_path)
    assert path.parent == tmp_path and not set(path.name) & set(":/\\+")
    assert path.name.endswith("-abc123")
    assert len(cache_dir_for("cif_dir:" + "x" * 300, "abc123", tmp_path).name) <= 96 + 7


@pytest.mark.slow  # spawning two workers that import pymatgen/spglib takes 6–14 s on 2 cores
def test_two_workers_give_the_same_cache_as_one(built, tmp_path) -> None:
    parallel = build_cache(DATASET, workers=2, root=tmp_path, log=quiet)
    assert parallel.name == built.name
    for name in ("entries.csv", "failures.csv", "duplicates.csv"):
        assert (parallel / name).read_bytes() == (built / name).read_bytes(), name
    with np.load(built / "arrays.npz") as a, np.load(parallel / "arrays.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_all_entries_failing_is_a_clear_error(tmp_path) -> None:
    folder = tmp_path / "only-broken"
    folder.mkdir()
    shutil.copy(CIFS / "minerals" / "broken.cif", folder)
    with pytest.raises(CacheError, match=r"no structure could be processed \(1 failed\)"):
        build_cache(f"cif_dir:{folder}", root=tmp_path / "cache", log=quiet)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_missing_source_files_say_where_to_put_them(tmp_path, monkeypatch) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PXRDBENCH_DATA", str(empty))
    monkeypatch.delenv("PXRDBENCH_MP_CGCNN_URL", raising=False)
    monkeypatch.setattr(base, "repo_shared_data", lambda: tmp_path / "no-shared-data")
    for dataset in ("mp_cgcnn", f"mp_cgcnn:{empty}"):
        with pytest.raises(DatasetError) as info:
            build_cache(dataset, root=tmp_path / "cache", log=quiet)
        text = str(info.value)
        assert "mp-cgcnn/structures.csv.gz not found" in text and str(empty) in text
        assert "Put the file at $PXRDBENCH_DATA/mp-cgcnn/structures.csv.gz" in text
