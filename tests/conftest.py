"""Suite-wide test settings: one torch thread (deterministic and fast on small tensors under load), and the path
to the shared real data that some tests read in place (skipped with a reason when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
