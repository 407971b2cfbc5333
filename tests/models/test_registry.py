"""Model registry: listing, building with YAML defaults and overrides, tiny twins, info and did-you-mean."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from torch import nn

from pxrdbench.errors import ConfigError
from pxrdbench.methods.baselines import MajorityBaseline, PatternNNBaseline
from pxrdbench.methods.supervised import AlphaDiffract
from pxrdbench.models.registry import (
    config_dir,
    create_model,
    list_models,
    load_config_file,
    model_config,
    model_info,
    register_model,
)

pytestmark = pytest.mark.filterwarnings("ignore:model registry. could not import")

REPO_ROOT = Path(__file__).resolve().parents[2]
MY_CONFIGS = ("alphadiffract", "alphadiffract_tiny", "majority", "pattern_nn")
RING_D = np.minimum(
    np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
    230 - np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
)


def _hop_matrix_available() -> bool:
    try:
        from pxrdbench.symmetry.subgroups import hop_distance_matrix

        hop_distance_matrix()
    except Exception:
        return False
    return True


@register_model(
    "test_probe", tasks=("crystal_system",), description="linear probe for registry tests", tiny={"width": 2}
)
def build_test_probe(width: int = 8, classes: int = 7) -> nn.Module:
    """A linear layer whose size the tests can read back."""
    return nn.Linear(width, classes)


def test_the_builtin_models_and_their_tiny_twins_are_listed() -> None:
    names = list_models()
    for name in (
        "alphadiffract",
        "alphadiffract_tiny",
        "majority",
        "majority_tiny",
        "pattern_nn",
        "pattern_nn_tiny",
    ):
        assert name in names
    assert names == sorted(names)
    assert list_models("pattern") == ["pattern_nn", "pattern_nn_tiny"]


def test_config_dir_is_the_repository_configs() -> None:
    assert config_dir() == REPO_ROOT / "configs" / "models"


def test_tiny_twin_merges_parent_yaml_tiny_yaml_and_overrides() -> None:
    config = model_config("alphadiffract_tiny", channels=4)
    assert config["channels"] == 4  # override wins
    assert config["input_length"] == 512 and config["kernel_sizes"] == [9, 5, 3]  # tiny yaml
    assert config["optimizer"]["lr"] == pytest.approx(2e-4) and config["drop_path"] == 0.3  # parent yaml
    model = create_model("alphadiffract_tiny", space_group_distance=RING_D)
    assert isinstance(model, AlphaDiffract) and model.encoder.output_dim == 56
    assert model.hparams["ensemble"] == 1


def test_tiny_dict_overrides_and_create_with_keyword_overrides() -> None:
    assert create_model("test_probe").in_features == 8
    assert create_model("test_probe_tiny").in_features == 2
    assert create_model("test_probe_tiny", classes=3).out_features == 3
    assert create_model("pattern_nn_tiny").pool_length == 64
    assert isinstance(create_model("majority_tiny"), MajorityBaseline)


def test_unknown_names_and_options_raise_with_suggestions() -> None:
    with pytest.raises(ConfigError, match="Did you mean 'alphadiffract'"):
        create_model("alphadifract")
    with pytest.raises(ConfigError, match="'channels'"):
        create_model("alphadiffract_tiny", chanels=4)
    with pytest.raises(ConfigError, match="registered twice"):
        register_model("test_probe", tasks=(), description="x")(lambda: None)


def test_tiny_twin_file_required_when_declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register_model("test_filetiny", tasks=(), description="needs a tiny yaml", tiny=True)(build_test_probe)
    monkeypatch.setenv("PXRDBENCH_MODEL_CONFIGS", str(tmp_path))
    with pytest.raises(ConfigError, match="test_filetiny_tiny.yaml"):
        create_model("test_filetiny_tiny")
    (tmp_path / "test_filetiny.yaml").write_text("width: 5\n")
    (tmp_path / "test_filetiny_tiny.yaml").write_text("classes: 2  # tiny\n")
    tiny = create_model("test_filetiny_tiny")
    assert (tiny.in_features, tiny.out_features) == (5, 2)
    (tmp_path / "test_filetiny.yaml").write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        create_model("test_filetiny")


def test_model_info() -> None:
    info = model_info("test_probe_tiny")
    assert info["parameters"] == 2 * 7 + 7 and info["tasks"] == ["crystal_system"]
    assert set(info) >= {"name", "tasks", "parameters", "description", "paper"}
    majority = model_info("majority")
    assert majority["parameters"] == 0 and "AlphaDiffract" in majority["paper"]


@pytest.mark.parametrize("name", MY_CONFIGS)
def test_every_config_file_instantiates(name: str) -> None:
    path = REPO_ROOT / "configs" / "models" / f"{name}.yaml"
    assert path.is_file() and isinstance(load_config_file(path), dict)
    overrides = {}
    if name.startswith("alphadiffract") and not _hop_matrix_available():
        overrides["space_group_distance"] = (
            RING_D  # the subgroup table is another module's; keep this test local
        )
    model = create_model(name, **overrides)
    expected = {"alphadiffract": AlphaDiffract, "majority": MajorityBaseline, "pattern_nn": PatternNNBaseline}
    assert isinstance(model, expected[name.removesuffix("_tiny")])
    if name == "alphadiffract":
        assert model.encoder.output_dim == 560 and model.hparams["ensemble"] == 10
        assert model.hparams["scheduler"]["name"] == "cyclic_triangular2"


def test_alphadiffract_uses_the_subgroup_hop_matrix() -> None:
    if not _hop_matrix_available():
        pytest.skip("pxrdbench.symmetry.subgroups.hop_distance_matrix() is not available")
    model = create_model("alphadiffract_tiny")
    distance = model.gemd.distance
    assert distance.shape == (230, 230) and distance.max().item() == 6  # diameter of the t+k graph
    info = model_info("alphadiffract_tiny")
    assert info["parameters"] == model.num_parameters > 0
