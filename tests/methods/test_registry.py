"""The method registry: names are config files, method modules are imported explicitly, failures are loud."""

from __future__ import annotations

from pathlib import Path

import pytest

from pxrdbench.cli import main
from pxrdbench.errors import ConfigError
from pxrdbench.methods import registry

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

PAPER_METHODS = ("alphadiffract", "den_kan", "wa_kan", "den_mlp")


def test_every_method_and_baseline_has_a_tiny_twin() -> None:
    names = set(registry.list_methods())
    assert {*PAPER_METHODS, "majority", "pattern_nn"} <= names
    for name in names - {n for n in names if n.endswith("_tiny")}:
        assert f"{name}_tiny" in names, name


def test_unknown_name_says_did_you_mean() -> None:
    with pytest.raises(ConfigError, match="den_kan"):
        registry.config_path("den_kann")


def test_models_command_lists_names_tasks_and_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "wa_kan*", "--tiny", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"wa_kan"' in out and '"wa_kan_tiny"' in out and '"retrieval"' in out
    assert "2630560" in out.replace(",", "")


def test_models_fails_loudly_when_a_method_module_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        registry, "METHOD_MODULES", (*registry.METHOD_MODULES, "pxrdbench.methods.missing_method")
    )
    assert main(["models"]) != 0
    assert "pxrdbench.methods.missing_method" in capsys.readouterr().err


def test_a_config_naming_an_unimportable_class_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken.yaml").write_text(
        "model:\n  class_path: pxrdbench.methods.nowhere.Method\ndata:\n  view: alphadiffract\n"
    )
    monkeypatch.setenv("PXRDBENCH_METHOD_CONFIGS", str(tmp_path))
    assert main(["models"]) != 0
    assert "pxrdbench.methods.nowhere" in capsys.readouterr().err
