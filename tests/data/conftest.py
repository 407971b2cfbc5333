"""The data spine's shared fixture: a tiny synthetic dataset cache, built once per session."""

from __future__ import annotations

import pytest

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.store import build_cache

SPINE_DATASET = "synthetic:1-3/225"  # 8 pyxtal crystals in P1, P-1, P2 and Fm-3m
SPINE_SIZE = 8


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> DatasetCache:
    """The tiny synthetic dataset (its own root under the session's temp folder, so one build serves all)."""
    root = tmp_path_factory.getbasetemp() / "data-spine-cache"
    return DatasetCache.open(
        build_cache(SPINE_DATASET, max_structures=SPINE_SIZE, root=root, log=lambda m: None)
    )
