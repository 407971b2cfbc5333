"""Results files: deterministic round trip, and validation errors that name the file and the field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.report.results import (
    dumps_results,
    load_all,
    read_results,
    results_filename,
    validate_results,
    write_results,
)
from pxrdbench.run.provenance import command_line

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bench"
ONE = FIXTURES / "majority_class__toy_a__ci__seed0.json"


def _load(path: Path = ONE) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_fixtures_load_and_round_trip_byte_identically(tmp_path: Path) -> None:
    results = load_all(FIXTURES)
    assert len(results) == len(list(FIXTURES.glob("*.json"))) >= 6
    for path in sorted(FIXTURES.glob("*.json")):
        written = write_results(read_results(path), tmp_path)
        assert written.name == path.name
        assert written.read_bytes() == path.read_bytes()
    assert dumps_results(_load()).endswith("}\n")


def test_results_filename() -> None:
    assert results_filename("den_kan", "mp_cgcnn", "quick", 3) == "den_kan__mp_cgcnn__quick__seed3.json"
    assert results_filename("a", "b", "c", [0, 1]) == "a__b__c__seed0-1.json"
    for bad in ("a__b", "a/b", "", "x y"):
        with pytest.raises(ConfigError):
            results_filename(bad, "b", "c", 0)
    with pytest.raises(ConfigError):
        results_filename("a", "b", "c", -1)


def _mutated(tmp_path: Path, mutate: Any) -> Path:
    obj = _load()
    mutate(obj)
    path = tmp_path / ONE.name
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _drop_split_hash(o: dict) -> None:
    del o["dataset"]["split_hash"]


def _drop_seeds(o: dict) -> None:
    del o["seeds"]


CASES = [
    (_drop_split_hash, "dataset.split_hash", "missing"),
    (_drop_seeds, "seeds", "missing"),
    (
        lambda o: o["metrics"]["crystal_system"]["accuracy"].update(value="30"),
        "accuracy.value",
        "finite number",
    ),
    (lambda o: o["metrics"]["crystal_system"]["accuracy"].update(n=-1), "accuracy.n", "integer"),
    (lambda o: o["metrics"]["crystal_system"]["accuracy"].update(ci95=[40, 20]), "ci95", "exceeds"),
    (lambda o: o["metrics"]["crystal_system"]["accuracy"].pop("std"), "accuracy", "exactly the keys"),
    (
        lambda o: o["metrics"]["crystal_system"].update(acuracy=o["metrics"]["crystal_system"]["accuracy"]),
        "acuracy",
        "unknown metric",
    ),
    (lambda o: o["metrics"].update(retrieval={}), "metrics.retrieval", "not in method.tasks"),
    (lambda o: o["method"].update(tasks=["crystal_system", "spacegroup"]), "method.tasks[1]", "unknown task"),
    (lambda o: o.update(seeds=[]), "seeds", "non-empty"),
    (lambda o: o.update(seeds=[True]), "seeds[0]", "integer"),
    (lambda o: o.update(git_commit="unknown"), "git_reason", "required"),
    (lambda o: o.update(git_commit="HEAD"), "git_commit", "hex"),
    (lambda o: o.update(date="yesterday"), "date", "ISO 8601"),
    (lambda o: o.update(extra=1), "extra", "not a known field"),
    (lambda o: o["efficiency"].update(inference_latency_ms=-2.0), "inference_latency_ms", ">= 0"),
    (lambda o: o["hardware"].update(num_threads=0), "hardware.num_threads", "integer"),
    (lambda o: o["software"].pop("torch"), "software.torch", "missing"),
    (lambda o: o.update(schema_version=2), "schema_version", "must be 1"),
    (lambda o: o["dataset"].update(name="toy_b"), ONE.name, "does not match"),
]


@pytest.mark.parametrize(("mutate", "field", "reason"), CASES)
def test_validation_names_file_and_field(tmp_path: Path, mutate: Any, field: str, reason: str) -> None:
    path = _mutated(tmp_path, mutate)
    with pytest.raises(InputError) as info:
        read_results(path)
    message = str(info.value)
    assert str(path) in message and field in message and reason in message


def test_write_refuses_invalid_and_non_finite(tmp_path: Path) -> None:
    obj = _load()
    obj["metrics"]["crystal_system"]["accuracy"]["value"] = float("nan")
    with pytest.raises(InputError, match="finite"):
        write_results(obj, tmp_path)
    assert not list(tmp_path.iterdir())
    good = copy.deepcopy(_load())
    good.update(git_commit="unknown", git_reason="not a git checkout", git_dirty=True)
    validate_results(good)


def test_read_errors_for_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_results(tmp_path / "nope.json")
    broken = tmp_path / "x__y__z__seed0.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError, match="not valid JSON") as info:
        load_all(tmp_path)
    assert broken.name in str(info.value)
    with pytest.raises(InputError, match="does not exist"):
        load_all(tmp_path / "missing")


def test_command_line_names_the_cli_as_users_type_it() -> None:
    module_run = ["/x/src/pxrdbench/cli.py", "bench", "--model", "den_kan"]
    assert command_line(module_run) == "pxrdbench bench --model den_kan"
    assert command_line(["/venv/bin/pxrdbench", "data", "info"]) == "pxrdbench data info"
    assert command_line(["/tmp/other/cli.py", "x"]) == "cli.py x"  # someone else's cli.py stays as it is
