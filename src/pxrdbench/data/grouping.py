"""Split groups: entries that must stay on one side of every split.

Two entries share a group when they share a source group key (e.g. an AMCSD mineral name, so a pressure or
temperature series stays together) OR the same (reduced formula, space group) pair (so polymorph duplicates
and the same compound from two sources cannot leak across splits). Groups are the connected components of
that relation (union–find).
"""

from __future__ import annotations

from collections.abc import Sequence


def union_groups(source_groups: Sequence[tuple[str, str]], compound_keys: Sequence[str]) -> list[str]:
    """Group label per entry: the connected component over shared source groups and shared compound keys.

    Args:
        source_groups: (source name, group key) per entry; an empty key means "no source grouping".
        compound_keys: "<reduced formula>|<space group number>" per entry.

    Returns:
        One label per entry, the smallest compound key of its component (stable and human-readable).
    """
    n = len(compound_keys)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first: dict[tuple[str, str], int] = {}
    for i, (src, key) in enumerate(source_groups):
        if key:
            union(i, first.setdefault((src, key), i))
    first_compound: dict[str, int] = {}
    for i, key in enumerate(compound_keys):
        union(i, first_compound.setdefault(key, i))
    label: dict[int, str] = {}
    for i in range(n):
        root = find(i)
        label[root] = min(label.get(root, compound_keys[i]), compound_keys[i])
    return [label[find(i)] for i in range(n)]
