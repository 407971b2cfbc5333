"""``pxrdbench evaluate``: a checkpoint is scored through the task registry on the test split of the data its run
record names (flags override the record), or on RRUFF-908; the checkpoint loader is replaced by a fake here."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch import Tensor

from pxrdbench.commands import evaluate as command
from pxrdbench.errors import ConfigError
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.registry import create_method
from pxrdbench.run.evaluate import evaluate_checkpoint, resolve_data

STRUCTURES = [
    ("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(4.11), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    ("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("Im-3m", Lattice.cubic(2.866), ["Fe"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
]


class CubicGuesser:
    """Classifies every pattern as cubic Fm-3m."""

    tasks = ("crystal_system", "space_group")

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def data_requirements(self) -> DataRequirements:
        return DataRequirements()

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        n = len(batch["pattern"])
        cs, sg = torch.zeros(n, 7), torch.zeros(n, 230)
        cs[:, 6], sg[:, 224] = 1.0, 1.0
        return {"crystal_system": cs, "space_group": sg}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("evaluate-cifs")
    for i, (group, lattice, species, coords) in enumerate(STRUCTURES):
        Structure.from_spacegroup(group, lattice, species, coords).to(filename=str(folder / f"s{i}.cif"))
    return f"cif_dir:{folder}"


@pytest.fixture
def checkpoint(dataset: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A fake ``load_checkpoint`` returning an untrained den_kan_tiny and a run record; returns the record."""
    torch.manual_seed(0)
    method = create_method("den_kan_tiny")
    info = {"model": "den_kan_tiny", "dataset": dataset, "max_structures": 6, "seed": 2, "view": "xccp_dual",
            "batch_size": 4}  # fmt: skip
    monkeypatch.setattr("pxrdbench.run.checkpoints.load_checkpoint", lambda path: (method, info))
    return info


def test_the_record_decides_the_data_and_flags_override_it() -> None:
    info = {
        "model": "m",
        "dataset": "amcsd",
        "max_structures": 64,
        "seed": 3,
        "view": "xccp_dual",
        "batch_size": 8,
    }
    assert resolve_data(info, data=None, max_structures=None, seed=None) == {
        "dataset": "amcsd", "max_structures": 64, "seed": 3, "view": "xccp_dual", "batch_size": 8,
    }  # fmt: skip
    flags = resolve_data(info, data="mp_cgcnn", max_structures=10, seed=0)
    assert (flags["dataset"], flags["max_structures"], flags["seed"]) == ("mp_cgcnn", 10, 0)
    with pytest.raises(ConfigError, match="--data"):
        resolve_data({**info, "dataset": None}, data=None, max_structures=None, seed=None)


def test_a_retrieval_method_gets_its_retrieval_metrics_on_the_recorded_test_split(
    checkpoint: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pxrdbench.data.datamodule as datamodule

    built: list[Any] = []

    class Spy(datamodule.SimulatedDataModule):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(datamodule, "SimulatedDataModule", Spy)
    metrics = evaluate_checkpoint(checkpoint="best.ckpt", n_boot=10)
    assert list(metrics) == ["retrieval"]  # the simulated tasks only, no robustness without perturbation sets
    assert {"top1", "mean_rank", "prescreen/top1", "fullpool/top1"} <= set(metrics["retrieval"])
    (dm,) = built
    assert (dm.seed, dm.batch_size, dm.max_structures, dm.with_graphs) == (2, 4, 6, "cgcnn")
    assert len(dm.cache) == 6 and metrics["retrieval"]["top1"]["n"] == len(dm.cache.split_indices("test"))


def test_the_model_name_must_match_the_record(checkpoint: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="den_kan_tiny"):
        evaluate_checkpoint(checkpoint="best.ckpt", model="alphadiffract")


def test_rruff908_runs_the_experimental_task_or_notes_its_absence(
    checkpoint: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "pxrdbench.run.checkpoints.load_checkpoint", lambda path: (CubicGuesser(), checkpoint)
    )
    monkeypatch.setattr("pxrdbench.data.experimental.rruff908.default_path", lambda: Path("/nonexistent.npz"))
    notes: list[str] = []
    assert evaluate_checkpoint(checkpoint="best.ckpt", data="rruff908", n_boot=10, notes=notes) == {}
    assert len(notes) == 1 and notes[0].startswith("experimental_rruff908 not evaluated: ")
    with pytest.raises(ConfigError, match="rruff908"):
        evaluate_checkpoint(checkpoint="best.ckpt", data="opxrd_x")


def test_the_command_prints_the_metrics_and_reports_nothing_evaluated(
    checkpoint: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    out = tmp_path / "metrics.json"
    args = parser.parse_args(["--checkpoint", "best.ckpt", "--n-boot", "5", "--json", str(out)])
    assert command.run(args) == 0
    assert '"top1"' in capsys.readouterr().out and '"retrieval"' in out.read_text()
    monkeypatch.setattr(
        "pxrdbench.run.checkpoints.load_checkpoint", lambda path: (CubicGuesser(), checkpoint)
    )
    monkeypatch.setattr("pxrdbench.data.experimental.rruff908.default_path", lambda: Path("/nonexistent.npz"))
    args = parser.parse_args(["--checkpoint", "best.ckpt", "--data", "rruff908"])
    assert command.run(args) == 1
    assert "note: experimental_rruff908 not evaluated" in capsys.readouterr().err
