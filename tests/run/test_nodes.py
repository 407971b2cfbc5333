"""``make bench … NODES=N`` reaches Lightning: the command line → BenchRequest.nodes → Trainer(num_nodes=N),
and the global batch is split over devices × nodes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pxrdbench.cli import main
from pxrdbench.errors import ConfigError
from pxrdbench.run import bench
from pxrdbench.run.bench import BenchRequest, _trainer, config_overrides
from pxrdbench.run.budget import TrainingBudget
from pxrdbench.run.settings import load_preset


def test_the_nodes_argument_reaches_the_request(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[BenchRequest] = []
    monkeypatch.setattr(bench, "run_bench", lambda req: seen.append(req))
    assert (
        main(["bench", "--model", "den_kan_tiny", "--nodes", "3", "--gpus", "2", "--accelerator", "cpu"]) == 0
    )
    assert seen[0].nodes == 3 and seen[0].gpus == "2"


def test_the_trainer_gets_num_nodes_and_ddp(tmp_path) -> None:
    request = BenchRequest(model="den_kan_tiny", preset="ci", nodes=2)
    trainer = _trainer(
        request, load_preset("ci"), SimpleNamespace(gradient_clip_val=None), "cpu", 1, tmp_path,
        TrainingBudget(max_epochs=1, global_batch=16),
    )  # fmt: skip
    assert trainer.num_nodes == 2
    assert trainer.world_size == 2
    assert type(trainer.strategy).__name__ == "DDPStrategy"


def test_the_global_batch_is_split_over_devices_times_nodes() -> None:
    cli = SimpleNamespace(config=SimpleNamespace(data=SimpleNamespace(batch_size=128)))
    request = BenchRequest(model="den_kan_tiny", preset="quick", nodes=2)
    overrides, global_batch = config_overrides(request, load_preset("quick"), cli, world=2 * 4)
    assert global_batch == 128
    assert overrides[overrides.index("--data.batch_size") + 1] == "16"
    with pytest.raises(ConfigError, match="not divisible by 24"):
        config_overrides(request, load_preset("quick"), cli, world=3 * 8)
