"""A dataset cache shared by the regression tests of one session (the first 64 AMCSD entries)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def regression_cache(tmp_path_factory) -> str:
    """PXRDBENCH_CACHE directory holding the ci-preset AMCSD cache, built once per session."""
    root = tmp_path_factory.mktemp("regression-cache")
    from pxrdbench.data.store import build_cache
    from pxrdbench.run.settings import load_preset

    build_cache("amcsd", max_structures=load_preset("ci").budget["max_structures"], root=root, workers=1)
    return str(root)


@pytest.fixture
def use_regression_cache(regression_cache, monkeypatch) -> str:
    monkeypatch.setenv("PXRDBENCH_CACHE", regression_cache)
    return regression_cache
