"""Experimental retrieval with measured Rietveld patterns (real pdCIFs from shared/data) as queries."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from pymatgen.core import Lattice, Structure
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.errors import DatasetError
from pxrdbench.methods.registry import create_method
from pxrdbench.tasks.base import EvalContext
from pxrdbench.tasks.registry import run_tasks
from pxrdbench.tasks.rietveld import RIETVELD, evaluate_rietveld
from pxrdbench.tasks.rietveld_queries import find_folder, load_rietveld_queries
from pxrdbench.tasks.specs import metric_spec, task_has_metric

# AlPO4 (one phase, Cu Kα1), Mg2Si (one phase, synchrotron 0.499 Å), C4Br4S (two polymorphs in one file)
FILES = (
    "br1322Isup2.rtv.combined.cif",
    "gw5052Mg2Si_100K_LTsup2.rtv.combined.cif",
    "av5088sup4.rtv.combined.cif",
)
DISTRACTORS = [
    ("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(4.21), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]),
    ("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    ("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("Im-3m", Lattice.cubic(2.866), ["Fe"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]]),
    ("Fm-3m", Lattice.cubic(5.46), ["Ca", "F"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    from tests.conftest import SHARED_DATA

    source = SHARED_DATA / "experimental" / "pdcif15"
    if not source.is_dir():
        pytest.skip(f"shared data not found at {source} (set PXRDBENCH_DATA)")
    out = tmp_path_factory.mktemp("pdcif")
    for name in FILES:
        shutil.copy(source / name, out / name)
    return out


@pytest.fixture(scope="module")
def dm(tmp_path_factory) -> SimulatedDataModule:
    cifs = tmp_path_factory.mktemp("distractor-cifs")
    for i, (group, lattice, species, coords) in enumerate(DISTRACTORS):
        Structure.from_spacegroup(group, lattice, species, coords).to(filename=str(cifs / f"d{i}.cif"))
    cache = DatasetCache.build_or_open(
        f"cif_dir:{cifs}", fractions=(0.25, 0.0, 0.75), root=tmp_path_factory.mktemp("cache")
    )
    return SimulatedDataModule(cache, "xccp_dual", batch_size=4, with_graphs="cgcnn", seed=0)


class RawPattern:
    """Pattern-only method: the unit pattern is the embedding (raw-pattern cosine matching)."""

    tasks = ("retrieval",)

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return F.normalize(batch["pattern"].float(), dim=1)


class CubicGuesser(RawPattern):
    """Classifies everything as cubic Fm-3m and has no embedding (like the majority baseline)."""

    tasks = ("crystal_system", "space_group")

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        raise NotImplementedError

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        n = len(batch["pattern"])
        cs, sg = torch.zeros(n, 7), torch.zeros(n, 230)
        cs[:, 6], sg[:, 224] = 1.0, 1.0
        return {"crystal_system": cs, "space_group": sg}


def test_queries_keep_every_phase_and_bad_files_are_reported(folder: Path, tmp_path: Path) -> None:
    for name in FILES:
        shutil.copy(folder / name, tmp_path / name)
    (tmp_path / "empty.cif").write_text("")
    (tmp_path / "no_pattern.cif").write_text("data_x\n_cell_length_a 5.0\n")
    queries, skipped = load_rietveld_queries(tmp_path)
    assert [q.id for q in queries] == [
        "pdcif:av5088sup4",
        "pdcif:br1322Isup2",
        "pdcif:gw5052Mg2Si_100K_LTsup2",
    ]
    assert [len(q.phases) for q in queries] == [2, 1, 1]
    assert {name for name, _ in skipped} == {"empty.cif", "no_pattern.cif"}
    assert all(reason for _, reason in skipped)


def test_missing_folder_says_where_to_put_the_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="pdcif15"):
        find_folder(tmp_path / "nowhere")


def test_raw_pattern_matching_finds_the_refined_structures_of_measured_scans(dm, folder: Path) -> None:
    dm.setup()
    block, notes = evaluate_rietveld(RawPattern(), dm, n_boot=20, folder=folder)
    assert notes == []
    n_pool = (
        len(dm.cache.split_indices("test")) + 4
    )  # test split + four hidden phases (AlPO4, Mg2Si, 2 × C4Br4S)
    assert block["top1"]["n"] == 3
    for key in block:
        assert task_has_metric("experimental_rietveld", key), key
        metric_spec(key)
    ranks = {k: v["value"] for k, v in block.items() if k.startswith("per_query/") and k.endswith("/rank")}
    assert set(ranks) >= {"per_query/br1322Isup2/rank", "per_query/av5088sup4/prescreen/rank"}
    assert all(1 <= r <= n_pool for r in ranks.values())
    # a clean measured scan is closest to the pattern simulated from its own refined structure
    assert ranks["per_query/br1322Isup2/rank"] == 1
    assert ranks["per_query/gw5052Mg2Si_100K_LTsup2/rank"] == 1
    # the two C4Br4S polymorphs share their element set, so the pre-screen leaves both: a random order always hits
    assert block["prescreen/top1"]["value"] == 100.0
    assert block["element_random/top1"]["value"] == pytest.approx(100.0)
    assert 0.0 < block["mean_top1_similarity"]["value"] <= 1.0


def test_contrastive_method_embeds_hidden_structures_through_its_crystal_encoder(dm, folder: Path) -> None:
    torch.manual_seed(0)
    model = create_method("den_kan_tiny")
    block, _ = evaluate_rietveld(model, dm, n_boot=20, folder=folder)
    assert block["top10"]["n"] == 3 and "crystal_system/accuracy" not in block
    assert 1.0 <= block["mean_rank"]["value"] <= len(dm.cache.split_indices("test")) + 4


def test_classifier_without_embedding_gets_classification_on_single_phase_queries(dm, folder: Path) -> None:
    block, _ = evaluate_rietveld(CubicGuesser(), dm, n_boot=20, folder=folder)
    assert set(block) == {"crystal_system/accuracy", "space_group/accuracy"}
    # AlPO4 is hexagonal P6_3mc, Mg2Si cubic Fm-3m (anti-fluorite): one of two right
    assert block["crystal_system/accuracy"]["value"] == 50.0 and block["crystal_system/accuracy"]["n"] == 2
    assert block["space_group/accuracy"]["value"] == 50.0


def test_the_task_serves_classifiers_and_embedders_and_notes_a_missing_folder(dm, tmp_path: Path) -> None:
    assert RIETVELD.serves(RawPattern()) and RIETVELD.serves(CubicGuesser())
    assert not RIETVELD.serves(object())
    ctx = EvalContext(method=RawPattern(), datamodule=dm, n_boot=10, rietveld_folder=tmp_path / "nowhere")
    assert run_tasks(ctx, only=["experimental_rietveld"]) == {}
    assert len(ctx.notes) == 1 and ctx.notes[0].startswith("experimental_rietveld not evaluated: ")


def test_the_task_through_the_registry_gives_the_evaluation_block(dm, folder: Path) -> None:
    dm.setup()
    from pxrdbench.tasks.paired import strip_private

    ctx = EvalContext(
        method=CubicGuesser(), datamodule=dm, n_boot=20, rietveld_folder=folder, paired_baselines=()
    )
    metrics = run_tasks(ctx, only=["experimental_rietveld"])
    direct = {"experimental_rietveld": evaluate_rietveld(CubicGuesser(), dm, n_boot=20, folder=folder)[0]}
    assert metrics == strip_private(direct)
