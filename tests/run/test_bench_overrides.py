"""How ``bench`` turns a preset and a request into config overrides: the global batch is split over devices."""

from __future__ import annotations

import pytest

from pxrdbench.errors import ConfigError
from pxrdbench.methods.registry import parse_method
from pxrdbench.run.bench import BenchRequest, config_overrides
from pxrdbench.run.recipes import Ensemble, FitBaseline, SingleFit, with_members
from pxrdbench.run.settings import load_preset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _value(overrides: list[str], key: str) -> str:
    return overrides[overrides.index(key) + 1]


def test_the_global_batch_is_divided_over_devices() -> None:
    cli = parse_method("den_kan_tiny")
    quick, ci = load_preset("quick"), load_preset("ci")
    overrides, global_batch = config_overrides(BenchRequest("den_kan_tiny"), quick, cli, world=2)
    assert global_batch == 128 and _value(overrides, "--data.batch_size") == "64"  # the config's batch
    overrides, global_batch = config_overrides(BenchRequest("den_kan_tiny"), ci, cli, world=1)
    assert global_batch == 16 and _value(overrides, "--data.max_structures") == "64"  # the preset's
    request = BenchRequest("den_kan_tiny", batch_size=32, max_structures=20)
    overrides, global_batch = config_overrides(request, ci, cli, world=4)
    assert (global_batch, _value(overrides, "--data.batch_size")) == (32, "8")
    assert _value(overrides, "--data.max_structures") == "20"
    with pytest.raises(ConfigError, match="not divisible by 3 devices"):
        config_overrides(BenchRequest("den_kan_tiny"), ci, cli, world=3)


def test_ensemble_members_override_the_recipe() -> None:
    assert isinstance(with_members(Ensemble(10), 1), SingleFit)
    assert with_members(SingleFit(), 2).members == 2 and isinstance(with_members(SingleFit(), 2), Ensemble)
    assert with_members(Ensemble(10), None).members == 10
    assert isinstance(with_members(FitBaseline(), 3), FitBaseline)
    with pytest.raises(ConfigError):
        Ensemble(0)
