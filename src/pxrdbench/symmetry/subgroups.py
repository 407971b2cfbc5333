"""The maximal-subgroup graph of the 230 space-group types and its hop-distance matrix.

Nodes are space-group numbers 1..230. There is an edge G–H when H is a maximal subgroup of G (pyxtal's copy of
the Bilbao tables): ``"t"`` translationengleiche subgroups (same lattice, lower point group), ``"k"``
klassengleiche subgroups (same point group, lost translations, e.g. Fm-3m → Pm-3m), or ``"tk"`` both (the
default). Edges are undirected and isomorphic subgroups (H of the same type as G) are dropped, so the graph
has no loops. With t- and k-edges the graph is connected with diameter 6; with t-edges only the diameter is 7.

The hop distance D[i, j] (BFS on the undirected graph, index = space-group number − 1) is what AlphaDiffract's
GEMD loss weighs predictions by: GEMD = Σ_k p_k · D[k, y].

Building the graph from pyxtal takes seconds, so the directed (group, maximal subgroup) pairs are shipped in
resources/maximal_subgroups.json (regenerate with scripts/build_symmetry_tables.py; a test checks it against
pyxtal).
"""

from __future__ import annotations

import json
from collections import deque
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.errors import ConfigError

SUBGROUP_TABLE_FILE = "maximal_subgroups.json"
RESOURCES_DIR = Path(__file__).resolve().parents[1] / "resources"
SUBGROUP_KINDS: tuple[str, ...] = ("t", "k", "tk")
N_SPACE_GROUPS = 230


def _check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of SUBGROUP_KINDS, else raise ConfigError."""
    if kind not in SUBGROUP_KINDS:
        raise ConfigError(f"unknown maximal-subgroup kind {kind!r}; known: {', '.join(SUBGROUP_KINDS)}")
    return kind


def compute_maximal_subgroup_pairs(
    sg_numbers: range | list[int] = range(1, 231),
) -> dict[str, list[list[int]]]:
    """Directed (group, maximal subgroup) pairs from pyxtal per kind ``"t"``/``"k"``, sorted, no self-pairs.

    Uses ``pyxtal.symmetry.Group(n).get_max_t_subgroup()["subgroup"]`` and
    ``get_max_k_subgroup()["subgroup"]``
    (lists of space-group numbers, one entry per conjugacy class, so duplicates are merged here).
    """
    from pyxtal.symmetry import Group

    pairs: dict[str, set[tuple[int, int]]] = {"t": set(), "k": set()}
    for n in sg_numbers:
        group = Group(int(n))
        for kind, subgroups in (("t", group.get_max_t_subgroup()), ("k", group.get_max_k_subgroup())):
            pairs[kind].update((int(n), int(h)) for h in subgroups["subgroup"] if int(h) != int(n))
    return {kind: [list(p) for p in sorted(v)] for kind, v in pairs.items()}


@lru_cache(maxsize=1)
def load_subgroup_table() -> dict[str, Any]:
    """The shipped table: ``{"source": ..., "t": [[g, h], ...], "k": [[g, h], ...]}`` (directed pairs)."""
    return json.loads((RESOURCES_DIR / SUBGROUP_TABLE_FILE).read_text(encoding="utf-8"))


def maximal_subgroup_pairs(kind: str = "tk") -> set[tuple[int, int]]:
    """Directed (group, maximal subgroup) pairs of ``kind`` (``"t"``, ``"k"``, ``"tk"``), shipped table."""
    table = load_subgroup_table()
    kinds = ("t", "k") if _check_kind(kind) == "tk" else (kind,)
    return {(int(g), int(h)) for k in kinds for g, h in table[k]}


def maximal_subgroup_edges(kind: str = "tk") -> set[tuple[int, int]]:
    """Undirected edges (i < j, space-group numbers) of the maximal-subgroup graph.

    ``kind="tk"`` (default) uses both t- and k-subgroups: connected, diameter 6, 1,235 edges. ``kind="t"``
    (translationengleiche only) gives diameter 7; ``kind="k"`` alone is not connected.
    """
    return {(min(g, h), max(g, h)) for g, h in maximal_subgroup_pairs(kind)}


def _bfs_distances(adjacency: list[list[int]], start: int) -> np.ndarray:
    """Hop counts from node ``start`` to every node (−1 where unreachable)."""
    dist = np.full(len(adjacency), -1, dtype=np.int64)
    dist[start] = 0
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in adjacency[node]:
            if dist[nxt] < 0:
                dist[nxt] = dist[node] + 1
                queue.append(nxt)
    return dist


@cache
def _hop_matrix(kind: str) -> np.ndarray:
    """All-pairs BFS hop counts (read-only array; −1 for unreachable pairs)."""
    adjacency: list[list[int]] = [[] for _ in range(N_SPACE_GROUPS)]
    for i, j in sorted(maximal_subgroup_edges(kind)):
        adjacency[i - 1].append(j - 1)
        adjacency[j - 1].append(i - 1)
    matrix = np.stack([_bfs_distances(adjacency, s) for s in range(N_SPACE_GROUPS)])
    matrix.setflags(write=False)
    return matrix


def hop_distance_matrix(kind: str = "tk") -> np.ndarray:
    """(230, 230) int64 hop distances on the undirected maximal-subgroup graph; index = SG number − 1.

    D[i, j] is the least number of maximal-subgroup steps (up or down) between groups i + 1 and j + 1;
    symmetric, zero diagonal. For ``kind="k"`` (not connected) unreachable pairs hold −1. Cached; returns a
    writable copy.
    """
    return _hop_matrix(_check_kind(kind)).copy()


def hop_distance(sg_a: int, sg_b: int, kind: str = "tk") -> int:
    """Hop distance between space groups ``sg_a`` and ``sg_b`` (numbers 1..230)."""
    for n in (sg_a, sg_b):
        if not 1 <= int(n) <= N_SPACE_GROUPS:
            raise ConfigError(f"space group number must be in 1..230, got {n!r}")
    return int(_hop_matrix(_check_kind(kind))[int(sg_a) - 1, int(sg_b) - 1])
