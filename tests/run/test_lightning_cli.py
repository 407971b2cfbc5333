"""Method configs in the LightningCLI format: every config parses through the parser ``pxrdbench fit`` uses and
instantiates its method; variants override a parent; the view fills the grid arguments; ``--print_config``
round-trips; errors are clear."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pxrdbench.errors import ConfigError
from pxrdbench.methods.registry import config_dir, instantiate, list_methods, method_meta, parse_method
from pxrdbench.run.lightning_cli import config_chain, expand_config_args, make_cli
from pxrdbench.views.spec import load_view

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.mark.parametrize("name", list_methods())
def test_every_config_parses_and_instantiates_its_method(name: str) -> None:
    cli = parse_method(name)
    built = instantiate(cli)
    method, data, recipe = built["model"], built["data"], built["recipe"]
    assert method.tasks, name
    assert data.view.name == cli.config.data.view
    assert recipe.members >= 1
    assert method_meta(name)["description"]


def test_variants_are_short_overrides_of_a_parent() -> None:
    chain = [path.name for path, _ in config_chain(config_dir() / "wa_kan_tiny.yaml")]
    assert chain == ["den_kan.yaml", "den_kan_tiny.yaml", "wa_kan_tiny.yaml"]
    for name in list_methods():
        if name.endswith("_tiny") or name in ("wa_kan", "den_mlp"):
            assert len((config_dir() / f"{name}.yaml").read_text().splitlines()) <= 20, name
    wa = parse_method("wa_kan_tiny").config.model.init_args
    assert wa.pattern_encoder.init_args.wide_angle_only is True
    assert wa.pattern_encoder.init_args.widths == [4, 8]  # from den_kan_tiny
    assert wa.temperature == 0.07  # from den_kan


def test_the_view_fills_grid_arguments() -> None:
    view = load_view("xccp_dual")
    encoder = parse_method("den_kan").config.model.init_args.pattern_encoder.init_args
    assert (encoder.input_length, encoder.split_index) == (view.n_points, view.split_index) == (4000, 500)
    assert parse_method("alphadiffract").config.model.init_args.encoder.init_args.input_length == 8192


def test_a_grid_argument_that_disagrees_with_the_view_is_an_error() -> None:
    with pytest.raises(ConfigError, match="input_length = 512, but the view gives 8192"):
        parse_method("alphadiffract_tiny", ["--model.init_args.encoder.init_args.input_length", "512"])


def test_a_typo_in_a_config_fails(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "extends: "
        + str(config_dir() / "den_kan_tiny.yaml")
        + "\nmodel:\n  init_args:\n    temprature: 0.1\n"
    )
    with pytest.raises(Exception, match="temprature"):
        make_cli(["--config", str(bad)], instantiate=False)


def test_extends_loops_are_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        expand_config_args(["--config", str(tmp_path / "a.yaml")])


def test_print_config_round_trips(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pxrdbench.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config_dir() / "den_mlp_tiny.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    config = yaml.safe_load(printed)
    assert config["model"]["init_args"]["pattern_head"]["class_path"].endswith("MatchedMLPHead")
    again = tmp_path / "printed.yaml"
    again.write_text(printed)
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(again), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == config


@pytest.mark.parametrize("trainer", ["cpu", "gpu", "ddp"])
def test_trainer_snippets_load_on_top_of_a_method_config(trainer: str) -> None:
    from pxrdbench.config import config_dir as configs_root

    snippet = configs_root() / "trainer" / f"{trainer}.yaml"
    cli = make_cli(
        ["--config", str(config_dir() / "den_kan_tiny.yaml"), "--config", str(snippet)], instantiate=False
    )
    expected = yaml.safe_load(snippet.read_text())["trainer"]
    assert {key: cli.config.trainer[key] for key in expected} == expected
