"""Group-aware, space-group-stratified, seeded train/val/test splits.

Every entry belongs to a group (an AMCSD mineral, or a (reduced formula, space group) pair; see
:mod:`pxrdbench.data.grouping`); whole groups are assigned, so no group falls on two sides. Groups are
stratified by space group: a group's stratum is the majority space group of its members (ties: the smaller
number). Strata with fewer groups than ``min_groups_per_stratum`` (default ceil(1 / smallest fraction), i.e.
10 for 80/10/10) are pooled into one "rare" stratum, since they cannot reach every split anyway.

Within a stratum the groups are shuffled with a Generator seeded by (seed, stratum) and assigned one by one to
the split whose squared relative shortfall drops most, i.e. the split k maximising s·(2·(t_k − a_k) − s) / t_k
for a group of s entries, with t_k = f_k·n the stratum's target and a_k what it holds so far. Small groups go
where the relative deficit is largest; a large group is not pushed into a small split it would overfill.
The result depends only on (ids, groups, strata, fractions, seed), not on the input order.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pxrdbench.errors import ConfigError, InputError

RARE_STRATUM = 0  # pooled stratum key; real strata are space-group numbers 1..230
DEFAULT_NAMES = {2: ("train", "test"), 3: ("train", "val", "test")}


def _check_fractions(
    fractions: Sequence[float], names: Sequence[str] | None
) -> tuple[np.ndarray, tuple[str, ...]]:
    frac = np.asarray([float(f) for f in fractions], dtype=float)
    if frac.ndim != 1 or len(frac) < 2 or np.any(frac < 0) or not np.isfinite(frac).all():
        raise ConfigError(f"fractions must be two or more non-negative numbers, got {tuple(fractions)}")
    if abs(frac.sum() - 1.0) > 1e-6:
        raise ConfigError(f"fractions must sum to 1, got {tuple(fractions)} (sum {frac.sum():.6g})")
    if names is None:
        if len(frac) not in DEFAULT_NAMES:
            raise ConfigError(f"give split names for {len(frac)} fractions")
        names = DEFAULT_NAMES[len(frac)]
    if len(names) != len(frac) or len(set(names)) != len(names):
        raise ConfigError(f"need {len(frac)} distinct split names, got {tuple(names)}")
    return frac, tuple(str(n) for n in names)


def group_strata(groups: Sequence[str], strata: Sequence[int]) -> dict[str, int]:
    """Stratum of each group: the most common stratum of its members (ties: the smallest)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for group, stratum in zip(groups, strata, strict=True):
        counts[group][int(stratum)] += 1
    return {g: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for g, c in counts.items()}


def assign_groups(
    group_sizes: Sequence[tuple[str, int]], fractions: np.ndarray, rng: np.random.Generator
) -> dict[str, int]:
    """Split index of each group of one stratum (groups given sorted; shuffled here with ``rng``)."""
    targets = fractions * sum(size for _, size in group_sizes)
    held = np.zeros(len(fractions))
    usable = fractions > 0
    out: dict[str, int] = {}
    for index in rng.permutation(len(group_sizes)):
        group, size = group_sizes[index]
        gain = np.full(len(fractions), -np.inf)
        gain[usable] = size * (2.0 * (targets[usable] - held[usable]) - size) / targets[usable]
        split = int(np.argmax(gain))
        held[split] += size
        out[group] = split
    return out


def make_splits(
    ids: Sequence[str],
    groups: Sequence[str],
    strata: Sequence[int],
    *,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    names: Sequence[str] | None = None,
    min_groups_per_stratum: int | None = None,
) -> dict[str, np.ndarray]:
    """Assign every id to one split, whole groups at a time, stratified by space group.

    Args:
        ids: unique entry ids.
        groups: split group of each id (entries of one group always share a split).
        strata: stratum of each id (the space-group number).
        fractions: target share of entries per split (default 80/10/10), summing to 1.
        seed: non-negative integer; the same inputs and seed always give the same splits.
        names: split names (default train/val/test, or train/test for two fractions).
        min_groups_per_stratum: strata with fewer groups are pooled (default ceil(1 / smallest fraction)).

    Returns:
        split name -> sorted array of ids.
    """
    frac, split_names = _check_fractions(fractions, names)
    ids = [str(i) for i in ids]
    groups = [str(g) for g in groups]
    if not len(ids) == len(groups) == len(strata):
        raise InputError(
            "make_splits",
            f"ids, groups and strata differ in length: {len(ids)}, {len(groups)}, {len(strata)}",
        )
    if len(set(ids)) != len(ids):
        repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
        raise InputError("ids", f"must be unique, repeated: {repeated[:5]}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"split seed must be a non-negative integer, got {seed!r}")
    if min_groups_per_stratum is None:
        min_groups_per_stratum = math.ceil(1.0 / frac[frac > 0].min() - 1e-9)

    sizes = Counter(groups)
    stratum_of = group_strata(groups, strata)
    by_stratum: dict[int, list[str]] = defaultdict(list)
    for group, stratum in stratum_of.items():
        by_stratum[stratum].append(group)
    pooled: dict[int, list[str]] = defaultdict(list)
    for stratum, members in by_stratum.items():
        pooled[stratum if len(members) >= min_groups_per_stratum else RARE_STRATUM].extend(members)

    split_of_group: dict[str, int] = {}
    for stratum in sorted(pooled):
        members = sorted(pooled[stratum])
        rng = np.random.default_rng([int(seed), stratum])
        split_of_group.update(assign_groups([(g, sizes[g]) for g in members], frac, rng))

    buckets: list[list[str]] = [[] for _ in split_names]
    for record_id, group in zip(ids, groups, strict=True):
        buckets[split_of_group[group]].append(record_id)
    return {
        name: np.array(sorted(bucket), dtype=str) for name, bucket in zip(split_names, buckets, strict=True)
    }


def split_hash(splits: Mapping[str, Sequence[str]]) -> str:
    """SHA-256 over the split names and their sorted ids; changes when any id changes side."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(f"[{name}]\n".encode())
        for record_id in sorted(str(i) for i in splits[name]):
            digest.update(record_id.encode() + b"\n")
    return digest.hexdigest()


def group_leaks(
    splits: Mapping[str, Sequence[str]], ids: Sequence[str], groups: Sequence[str]
) -> dict[str, list[str]]:
    """Groups found in more than one split (empty when the splits are group-disjoint), with their splits."""
    group_of = dict(zip(map(str, ids), map(str, groups), strict=True))
    seen: dict[str, set[str]] = defaultdict(set)
    for name, members in splits.items():
        for record_id in members:
            seen[group_of[str(record_id)]].add(name)
    return {g: sorted(s) for g, s in seen.items() if len(s) > 1}


def splits_to_frame(
    splits: Mapping[str, Sequence[str]],
    ids: Sequence[str],
    groups: Sequence[str],
    space_groups: Sequence[int],
    formulas: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Export table with columns id, group, split, space_group, formula (rows by split order, then id)."""
    frame = pd.DataFrame(
        {
            "id": [str(i) for i in ids],
            "group": [str(g) for g in groups],
            "space_group": [int(s) for s in space_groups],
            "formula": [str(f) for f in formulas] if formulas is not None else [""] * len(ids),
        }
    )
    split_of = {str(i): name for name, members in splits.items() for i in members}
    missing = [i for i in frame["id"] if i not in split_of]
    if missing:
        raise InputError("splits_to_frame", f"{len(missing)} ids are in no split, e.g. {missing[:3]}")
    frame["split"] = frame["id"].map(split_of)
    order = {name: k for k, name in enumerate(splits)}
    frame = frame.sort_values(["split", "id"], key=lambda c: c.map(order) if c.name == "split" else c)
    return frame[["id", "group", "split", "space_group", "formula"]].reset_index(drop=True)


def frame_to_splits(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Inverse of :func:`splits_to_frame`: split name -> sorted ids (splits in order of appearance)."""
    if not {"id", "split"} <= set(frame.columns):
        raise InputError("frame", f"needs columns 'id' and 'split', has {list(frame.columns)}")
    names = list(dict.fromkeys(frame["split"].astype(str)))
    return {
        n: np.array(sorted(frame.loc[frame["split"].astype(str) == n, "id"].astype(str)), dtype=str)
        for n in names
    }
