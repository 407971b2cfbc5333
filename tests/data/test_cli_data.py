"""``pxrdbench data build|info|export-splits`` in-process on a tiny CIF folder: counts agree everywhere,
splits keep groups together, and asking for a cache that was never built says how to build it."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pxrdbench.cli import main

CIFS = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "cifs"


@pytest.fixture
def cif_folder(tmp_path, monkeypatch) -> str:
    """Four CIFs (NaCl twice, i.e. one split group; a disordered olivine; a broken file), private cache."""
    folder = tmp_path / "cifs"
    folder.mkdir()
    shutil.copy(CIFS / "nacl.cif", folder / "nacl_a.cif")
    shutil.copy(CIFS / "nacl.cif", folder / "nacl_b.cif")
    shutil.copy(CIFS / "minerals" / "olivine_disordered.cif", folder)
    shutil.copy(CIFS / "minerals" / "broken.cif", folder)
    monkeypatch.setenv("PXRDBENCH_CACHE", str(tmp_path / "cache"))
    return f"cif_dir:{folder}"


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text, flags=re.S)
    assert match, f"{pattern!r} not in output:\n{text}"
    return int(match.group(1))


def test_build_info_and_export_agree(cif_folder, tmp_path, capsys) -> None:
    assert main(["data", "build", cif_folder]) == 0
    built = capsys.readouterr()
    assert main(["data", "info", cif_folder, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    # the build log (stderr) and the summary (stdout) print the same counts as `info --json`
    assert number(r"(\d+) entries read", built.err) == info["entries_read"] == 4
    assert number(r"(\d+) kept", built.err) == info["structures"] == 3
    assert number(r"(\d+) failed \(", built.err) == info["failed"] == 1
    assert number(r"\((\d+) parse", built.err) == info["failed_parse"] == 1
    assert number(r"structures\s+(\d+)", built.out) == info["structures"]
    assert number(r"read\s+(\d+)", built.out) == info["entries_read"]
    assert number(r"failed\s+(\d+):", built.out) == info["failed"]
    assert info["cache_hash"] in built.out.replace("\n", "")
    assert sum(info["splits"].values()) == 3 and info["groups"] == 2
    # the two NaCl copies are one within-source duplicate set; the build log and summary say so too
    assert (info["duplicate_sets"], info["in_duplicate_sets"]) == (1, 2)
    assert number(r"(\d+) duplicate sets \((\d+) entries\)", built.err) == info["duplicate_sets"]
    assert number(r"duplicate sets\s+(\d+)", built.out) == info["duplicate_sets"]
    assert number(r"\((\d+)\s+entries in them\)", built.out) == info["in_duplicate_sets"]

    out = tmp_path / "splits.csv"
    assert main(["data", "export-splits", cif_folder, str(out)]) == 0
    assert info["split_hash"] in capsys.readouterr().err
    table = pd.read_csv(out)
    assert list(table.columns) == ["id", "group", "split", "space_group", "formula"]
    assert sorted(table["id"]) == ["nacl_a", "nacl_b", "olivine_disordered"]
    assert table.groupby("group")["split"].nunique().max() == 1  # no group on two sides
    nacl = table[table["formula"] == "NaCl"]
    assert nacl["group"].nunique() == 1 and set(nacl["space_group"]) == {225}


def test_info_on_an_unbuilt_cache_says_how_to_build_it(cif_folder, capsys) -> None:
    assert main(["data", "info", cif_folder, "--max-structures", "2"]) == 2
    err = capsys.readouterr().err
    assert "no cache for" in err and f"pxrdbench data build {cif_folder} --max-structures 2" in err


def test_build_with_a_limit_and_a_seed_is_its_own_cache(cif_folder, capsys) -> None:
    assert main(["data", "build", cif_folder, "--max-structures", "2", "--seed", "3"]) == 0
    capsys.readouterr()
    assert main(["data", "info", cif_folder, "--max-structures", "2", "--seed", "3", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["entries_read"] == 2
    assert main(["data", "info", cif_folder, "--json"]) == 2  # the unlimited cache was never built


def test_unknown_dataset_source_is_a_clear_error(capsys) -> None:
    assert main(["data", "build", "cif_dri:/nowhere"]) == 2
    assert "Did you mean 'cif_dir'" in capsys.readouterr().err
