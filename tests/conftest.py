"""Suite-wide test settings: one torch thread (deterministic and fast on small tensors under load), and the path
to the shared real data that some tests read in place (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.store import build_cache

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PXRDBENCH_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True, scope="session")
def _single_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a private dataset cache unless it sets PXRDBENCH_CACHE itself."""
    monkeypatch.setenv("PXRDBENCH_CACHE", str(tmp_path_factory.getbasetemp() / "pxrdbench-cache"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set PXRDBENCH_DATA)")
    return SHARED_DATA


SPINE_DATASET = "synthetic:1-3/225"  # 8 pyxtal crystals in P1, P-1, P2 and Fm-3m
SPINE_SIZE = 8


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> DatasetCache:
    """The tiny synthetic dataset (its own root under the session's temp folder, so one build serves all)."""
    root = tmp_path_factory.getbasetemp() / "data-spine-cache"
    return DatasetCache.open(
        build_cache(SPINE_DATASET, max_structures=SPINE_SIZE, root=root, log=lambda m: None)
    )
