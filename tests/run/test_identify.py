"""Phase identification: a dataset's structures ranked as candidates for a measured pattern."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pymatgen.core import Lattice, Structure
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.errors import InputError
from pxrdbench.methods.registry import create_method
from pxrdbench.run.evaluate import evaluate_checkpoint
from pxrdbench.run.identify import element_filter, parse_elements, rank_candidates
from pxrdbench.tasks.render import select_rows
from pxrdbench.views.render import render_batch

STRUCTURES = [
    ("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fm-3m", Lattice.cubic(6.29), ["K", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Pm-3m", Lattice.cubic(4.11), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
    ("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]),
    ("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    ("P6_3mc", Lattice.hexagonal(3.82, 6.26), ["Zn", "S"], [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.375]]),
]


@pytest.fixture(scope="module")
def cif_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("identify-cifs")
    for i, (group, lattice, species, coords) in enumerate(STRUCTURES):
        Structure.from_spacegroup(group, lattice, species, coords).to(filename=str(folder / f"s{i}.cif"))
    return folder


@pytest.fixture(scope="module")
def dm(cif_folder: Path, tmp_path_factory) -> SimulatedDataModule:
    cache = DatasetCache.build_or_open(f"cif_dir:{cif_folder}", root=tmp_path_factory.mktemp("cache"))
    return SimulatedDataModule(cache, "xccp_dual", batch_size=4, with_graphs="cgcnn", seed=0)


class RawPattern:
    """Pattern-only method: the unit pattern is the embedding."""

    def serves(self, task: str) -> bool:
        return task == "retrieval"

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return F.normalize(batch["pattern"].float(), dim=1)


def test_parse_elements_accepts_commas_or_spaces_and_rejects_unknown_symbols() -> None:
    assert parse_elements("Zn,S") == ["Zn", "S"] and parse_elements("Zn S Zn") == ["Zn", "S"]
    assert parse_elements(None) is None
    with pytest.raises(InputError, match="Xx"):
        parse_elements("Zn,Xx")
    with pytest.raises(InputError, match="at least one"):
        parse_elements(" , ")


def test_element_filter_keeps_exactly_the_given_element_set(dm) -> None:
    dm.setup()
    rows = dm.cache.split_indices("all")
    kept = set(dm.cache.entries["formula"].to_numpy()[rows[element_filter(dm.cache, rows, ["Zn", "S"])]])
    assert kept == {"ZnS"}
    assert element_filter(dm.cache, rows, None).all()


def test_a_pattern_is_identified_as_the_structure_it_was_simulated_from(dm) -> None:
    dm.setup()
    rows = np.arange(len(dm.cache))
    batch = collate_structures(list(ReflectionDataset(dm.cache, rows, dm.view.d_min, dm.view.max_peaks)))
    rendered = render_batch(dm.view, batch, train=False, seed=0)
    answers = rank_candidates(RawPattern(), dm, rendered, top_k=3)
    ids = dm.cache.entries["id"].tolist()
    for row, ranked in enumerate(answers):
        assert ranked[0]["id"] == ids[row] and ranked[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
        assert ranked[0]["confidence"] > 0.99 and not ranked[0]["low_confidence"]
        assert [a["rank"] for a in ranked] == [1, 2, 3]
        assert [a["similarity"] for a in ranked] == sorted((a["similarity"] for a in ranked), reverse=True)
    first = select_rows(rendered, [0])
    zns = rank_candidates(RawPattern(), dm, first, elements=["Zn", "S"], top_k=10)[0]
    assert {a["formula"] for a in zns} == {"ZnS"} and len(zns) == 2  # sphalerite and wurtzite only
    assert rank_candidates(RawPattern(), dm, first, elements=["Au"])[0] == []


def test_evaluate_a_checkpoint_on_a_measured_file_lists_candidate_phases(
    cif_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = create_method("den_kan_tiny")
    info = {"model": "den_kan_tiny", "dataset": f"cif_dir:{cif_folder}", "max_structures": None, "seed": 0,
            "view": "xccp_dual", "batch_size": 4}  # fmt: skip
    monkeypatch.setattr("pxrdbench.run.checkpoints.load_checkpoint", lambda path: (model, info))
    checkpoint = tmp_path / "tiny.ckpt"
    two_theta = np.linspace(10.0, 80.0, 3501)
    intensity = 10.0 + 1000.0 * np.exp(-0.5 * ((two_theta - 28.44) / 0.05) ** 2)  # a Si (111)-like line
    scan = tmp_path / "scan.xy"
    np.savetxt(scan, np.column_stack([two_theta, intensity]))
    out = evaluate_checkpoint(
        model="den_kan_tiny", checkpoint=str(checkpoint), path=str(scan), wavelength="CuKa", top_k=4
    )  # the candidate pool: the checkpoint's dataset
    (entry,) = out["patterns"]
    assert "crystal_system" not in entry  # a retrieval method does not classify
    assert [a["rank"] for a in entry["candidates"]] == [1, 2, 3, 4]
    assert {"id", "formula", "space_group", "similarity", "confidence", "low_confidence"} <= set(
        entry["candidates"][0]
    )
    assert entry["candidate_pool"]["pool"] == "all" and entry["candidate_pool"]["elements"] is None
