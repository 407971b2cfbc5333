"""Group-aware, stratified, seeded splits on a synthetic 5,000-entry dataset."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

from pxrdbench.data.splits import (
    frame_to_splits,
    group_leaks,
    group_strata,
    make_splits,
    split_hash,
    splits_to_frame,
)
from pxrdbench.errors import ConfigError, InputError


def synthetic_dataset(n: int = 5000, seed: int = 7) -> tuple[list[str], list[str], list[int]]:
    """Groups of 1–8 entries; space groups skewed like real data (a few common, a long tail of rare ones).

    One entry in ten takes another space group than its group's (a group spanning strata).
    """
    rng = np.random.default_rng(seed)
    common = [14, 62, 2, 15, 225, 194, 166, 139, 12, 221]
    tail = [int(x) for x in rng.choice(np.arange(1, 231), size=60, replace=False)]
    weights = np.array([30.0] * len(common) + [1.0] * len(tail))
    pool = common + tail
    ids, groups, strata = [], [], []
    g = 0
    while len(ids) < n:
        size = int(rng.integers(1, 9))
        sg = int(rng.choice(pool, p=weights / weights.sum()))
        for _ in range(min(size, n - len(ids))):
            ids.append(f"e{len(ids):05d}")
            groups.append(f"g{g:04d}")
            strata.append(sg if rng.random() > 0.1 else int(rng.choice(pool)))
        g += 1
    return ids, groups, strata


DATA = synthetic_dataset()


def test_default_split_is_deterministic_and_order_independent():
    ids, groups, strata = DATA
    first = make_splits(ids, groups, strata)
    again = make_splits(ids, groups, strata, fractions=(0.8, 0.1, 0.1), seed=0)
    assert list(first) == ["train", "val", "test"]
    assert all(np.array_equal(first[k], again[k]) for k in first)
    order = np.random.default_rng(1).permutation(len(ids))
    shuffled = make_splits([ids[i] for i in order], [groups[i] for i in order], [strata[i] for i in order])
    assert split_hash(shuffled) == split_hash(first)
    assert split_hash(make_splits(ids, groups, strata, seed=1)) != split_hash(first)


def test_every_id_once_and_no_group_straddles():
    ids, groups, strata = DATA
    splits = make_splits(ids, groups, strata, seed=3)
    everything = np.concatenate(list(splits.values()))
    assert len(everything) == len(set(everything)) == len(ids)
    assert group_leaks(splits, ids, groups) == {}
    moved = {k: v.copy() for k, v in splits.items()}
    moved["test"] = np.append(moved["test"], moved["train"][0])  # a leak is detected
    assert group_leaks(moved, ids, groups)


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.7, 0.15, 0.15)])
def test_split_sizes_match_the_fractions(fractions):
    ids, groups, strata = DATA
    splits = make_splits(ids, groups, strata, fractions=fractions, seed=5)
    shares = np.array([len(v) for v in splits.values()]) / len(ids)
    assert np.abs(shares - np.array(fractions)).max() < 0.015


def test_strata_with_ten_or_more_groups_reach_every_split():
    ids, groups, strata = DATA
    splits = make_splits(ids, groups, strata, seed=11)
    stratum_of = group_strata(groups, strata)
    groups_per_stratum = Counter(stratum_of.values())
    split_of = {i: k for k, members in splits.items() for i in members}
    seen: dict[int, set[str]] = defaultdict(set)
    for record_id, group in zip(ids, groups, strict=True):
        seen[stratum_of[group]].add(split_of[record_id])
    big = [s for s, n in groups_per_stratum.items() if n >= 10]
    assert len(big) >= 10
    assert all(seen[s] == {"train", "val", "test"} for s in big)


def test_majority_stratum_of_a_group():
    assert group_strata(["a", "a", "a", "b", "b"], [14, 14, 2, 3, 1]) == {"a": 14, "b": 1}


def test_hash_changes_when_one_id_moves():
    ids, groups, strata = DATA
    splits = make_splits(ids, groups, strata)
    before = split_hash(splits)
    moved = dict(splits)
    moved["val"] = np.append(splits["val"], splits["test"][-1])
    moved["test"] = splits["test"][:-1]
    assert split_hash(moved) != before
    assert (
        split_hash({k: list(v[::-1]) for k, v in splits.items()}) == before
    )  # order inside a split is irrelevant


def test_frame_export_round_trips():
    ids, groups, strata = DATA
    splits = make_splits(ids[:300], groups[:300], strata[:300], seed=2)
    frame = splits_to_frame(splits, ids[:300], groups[:300], strata[:300], [f"F{i}" for i in range(300)])
    assert list(frame.columns) == ["id", "group", "split", "space_group", "formula"]
    assert len(frame) == 300 and frame["split"].iloc[0] == "train"
    back = frame_to_splits(frame)
    assert split_hash(back) == split_hash(splits)
    with pytest.raises(InputError, match="in no split"):
        splits_to_frame({"train": splits["train"]}, ids[:300], groups[:300], strata[:300])


def test_small_and_two_way_splits():
    splits = make_splits(
        ["a", "b", "c", "d"], ["g", "g", "h", "i"], [1, 1, 2, 3], fractions=(0.5, 0.5), seed=0
    )
    assert list(splits) == ["train", "test"] and sum(len(v) for v in splits.values()) == 4
    assert group_leaks(splits, ["a", "b", "c", "d"], ["g", "g", "h", "i"]) == {}


def test_bad_arguments_are_named():
    with pytest.raises(ConfigError, match="sum to 1"):
        make_splits(["a"], ["g"], [1], fractions=(0.8, 0.1))
    with pytest.raises(InputError, match="length"):
        make_splits(["a", "b"], ["g"], [1, 2])
    with pytest.raises(InputError, match="repeated"):
        make_splits(["a", "a"], ["g", "h"], [1, 2])
    with pytest.raises(ConfigError, match="seed"):
        make_splits(["a"], ["g"], [1], seed=-1)
