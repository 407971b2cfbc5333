"""Paired differences against the baselines: how the leaderboard says a method beats a baseline.

Two overlapping intervals say little; the interval of the difference on the same items says it directly. For
each headline metric (the tasks' ``headline`` declarations) whose entry carries per-item values, the method's
per-item values minus a baseline's on the same test items are resampled with the same cluster bootstrap as the
metric itself, and stored as ``<metric>/vs_<baseline>`` (``value`` = the difference of the means, ``ci95`` its
interval): a method beats the baseline when the interval lies above 0 (below 0 for lower-is-better metrics).

Baselines (:data:`~pxrdbench.tasks.specs.PAIRED_BASELINES`):

- ``chance``, ``majority``, ``pattern_nn``: the registered baseline methods, fitted here on the same data
  module's training split (chance and majority from the labels alone; pattern NN on the evaluation renderings
  of the training split) and scored by the same tasks;
- ``element_random``: the exact expectation of a random pick among the same-element-set candidates, which the
  retrieval task computes per query for every method (``prescreen/top1`` is compared with it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

from pxrdbench.tasks.base import Block, EvalContext, Task

ANALYTIC = {"element_random": {"prescreen/top1": "element_random/top1"}}
"""Per-query random baselines each method's own retrieval block carries: metric → the block's baseline key.
(``top1`` against ``uniform_random`` is exactly the comparison against ``chance``, stored as ``vs_chance``.)"""


METHOD_INDEPENDENT_MEMO = ("rruff908/overlap/",)
"""Memo keys (prefixes) whose values do not depend on the method: shared with the baselines' evaluations."""


def label_batches(dm: Any, split: str, batch_size: int = 4096) -> Iterator[dict[str, Any]]:
    """Batches of a split's labels only (``pattern`` is a [B, 1] placeholder): what the chance and majority
    baselines fit on, without rendering a pattern."""
    import torch

    rows = dm.cache.split_indices(split)
    labels = dm.cache.labels
    for start in range(0, len(rows), batch_size):
        part = rows[start : start + batch_size]
        batch: dict[str, Any] = {key: torch.as_tensor(labels[key][part]) for key in labels}
        batch["pattern"] = torch.zeros(len(part), 1)
        yield batch


def fitted_baseline(name: str, dm: Any) -> Any:
    """The registered baseline ``name`` fitted on ``dm``'s training split."""
    from importlib import import_module

    from pxrdbench.methods.registry import parse_method
    from pxrdbench.symmetry.extinction import n_extinction_groups
    from pxrdbench.tasks.render import rendered_batches

    model = parse_method(name).config.model  # the config's model section only: no data module is built
    module, _, cls = str(model.class_path).rpartition(".")
    init_args = model.init_args.as_dict() if model.init_args is not None else {}
    init_args["num_extinction_groups"] = int(n_extinction_groups())
    method = getattr(import_module(module), cls)(**init_args)
    batches = rendered_batches(dm, "train") if name == "pattern_nn" else label_batches(dm, "train")
    return method.fit(batches)


def _same_kind(method: Any, name: str) -> bool:
    """Whether ``method`` is itself the baseline ``name`` (no difference to itself)."""
    from pxrdbench.methods import baselines

    kind = {
        "chance": baselines.ChanceBaseline,
        "majority": baselines.MajorityBaseline,
        "pattern_nn": baselines.PatternNNBaseline,
    }.get(name)
    return kind is not None and type(method) is kind


def add_paired_differences(ctx: EvalContext, metrics: dict[str, Block], tasks: list[Task]) -> None:
    """Add ``<metric>/vs_<baseline>`` entries to ``metrics`` (in place) for the headline metrics of ``tasks``
    (those the method produced) against every baseline in ``ctx.paired_baselines``."""
    from pxrdbench.tasks.metrics.bootstrap import paired_difference

    wanted = {
        task.name: [
            key
            for key in sorted(metrics[task.name])
            if any(fnmatchcase(key, pattern) for pattern in task.spec.headline)
        ]
        for task in tasks
        if task.name in metrics and task.name != "robustness"
    }
    for name in ctx.paired_baselines:
        if name in ANALYTIC:
            for task_name, keys in wanted.items():
                block = metrics[task_name]
                for key in keys:
                    source = ANALYTIC[name].get(key)
                    if source in block and "_items" in block[source]:
                        entry = paired_difference(block[key], block[source]["_items"], n_boot=ctx.n_boot)
                        if entry is not None:
                            block[f"{key}/vs_{name}"] = entry
            continue
        if _same_kind(ctx.method, name):
            continue
        cache = getattr(ctx.datamodule, "cache", None)
        if cache is None or len(cache.split_indices("train")) == 0:
            note = f"paired differences vs {name} not computed: the data module has no training split"
            if note not in ctx.notes:
                ctx.notes.append(note)
            continue
        baseline = fitted_baseline(name, ctx.datamodule)
        shared = {k: v for k, v in ctx.memo.items() if k.startswith(METHOD_INDEPENDENT_MEMO)}
        sub = replace(
            ctx,
            method=baseline,
            memo=shared,
            notes=[],
            paired_baselines=(),
            perturbations=[],
            pools=("test",),
        )
        for task in tasks:
            keys = wanted.get(task.name)
            if not keys or not task.serves(baseline):
                continue
            baseline_block = task.run(sub)
            for key in keys:
                other = baseline_block.get(key)
                if other is None or "_items" not in other:
                    continue
                entry = paired_difference(metrics[task.name][key], other["_items"], n_boot=ctx.n_boot)
                if entry is not None:
                    metrics[task.name][f"{key}/vs_{name}"] = entry
        sub.forget()
        ctx.notes.extend(note for note in sub.notes if note not in ctx.notes)


def strip_private(metrics: dict[str, Block]) -> dict[str, Block]:
    """Drop the per-item arrays every entry may carry (in place; returned for chaining)."""
    from pxrdbench.tasks.metrics.bootstrap import strip_items

    for block in metrics.values():
        for entry in block.values():
            strip_items(entry)
    return metrics
