"""Maximal-subgroup graph and hop distances: graph properties, known distances, shipped table vs pyxtal."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import ConfigError
from pxrdbench.symmetry import subgroups as sub


@pytest.fixture(scope="module")
def hops() -> np.ndarray:
    return sub.hop_distance_matrix("tk")


def test_edge_counts() -> None:
    assert len(sub.maximal_subgroup_edges("tk")) == 1235
    assert len(sub.maximal_subgroup_edges("t")) == 789
    assert sub.maximal_subgroup_edges("tk") == sub.maximal_subgroup_edges("t") | sub.maximal_subgroup_edges(
        "k"
    )
    assert all(i < j for i, j in sub.maximal_subgroup_edges("tk"))


def test_matrix_properties(hops: np.ndarray) -> None:
    assert hops.shape == (230, 230) and np.issubdtype(hops.dtype, np.integer)
    np.testing.assert_array_equal(hops, hops.T)
    assert np.all(np.diag(hops) == 0)
    off = hops[~np.eye(230, dtype=bool)]
    assert off.min() == 1  # connected: every pair reachable
    assert hops.max() == 6
    assert off.mean() == pytest.approx(3.0665, abs=1e-3)
    assert int((hops == 1).sum()) == 2 * 1235


def test_t_only_and_k_only() -> None:
    assert sub.hop_distance_matrix("t").max() == 7
    assert (sub.hop_distance_matrix("k") < 0).any()  # k-subgroups alone do not connect the graph


def test_known_distances(hops: np.ndarray) -> None:
    assert sub.hop_distance(1, 2) == 1  # P1 < P-1 (t)
    assert sub.hop_distance(225, 221) == 1  # Pm-3m is a maximal k-subgroup of Fm-3m
    assert sub.hop_distance(62, 14) == 1  # P2_1/c is a maximal t-subgroup of Pnma
    assert sub.hop_distance(225, 1) == 4
    assert hops[224, 0] == sub.hop_distance(1, 225)
    assert (225, 221) in sub.maximal_subgroup_pairs("k")
    assert (221, 225) in sub.maximal_subgroup_pairs("k")  # and Fm-3m (2a) is a maximal k-subgroup of Pm-3m
    assert all(g != h for g, h in sub.maximal_subgroup_pairs("tk"))


def test_cached_matrix_is_not_mutated_by_callers() -> None:
    first = sub.hop_distance_matrix()
    first[0, 1] = 99
    assert sub.hop_distance_matrix()[0, 1] == 1


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown maximal-subgroup kind 'tx'"):
        sub.hop_distance_matrix("tx")
    with pytest.raises(ConfigError, match="1..230"):
        sub.hop_distance(0, 5)


def test_shipped_pairs_match_pyxtal_spot_check() -> None:
    pytest.importorskip("pyxtal")
    groups = [2, 62, 225]
    fresh = sub.compute_maximal_subgroup_pairs(groups)
    table = sub.load_subgroup_table()
    for kind in ("t", "k"):
        shipped = [p for p in table[kind] if p[0] in groups]
        assert fresh[kind] == shipped


@pytest.mark.slow
def test_shipped_pairs_equal_fresh_pyxtal_computation() -> None:
    pytest.importorskip("pyxtal")
    fresh = sub.compute_maximal_subgroup_pairs()
    table = sub.load_subgroup_table()
    assert fresh["t"] == table["t"] and fresh["k"] == table["k"]
