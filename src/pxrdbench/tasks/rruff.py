"""The RRUFF-908 task: crystal-system and space-group classification of measured RRUFF patterns, converted into
the method's view (Bragg re-mapping, resampling, masking, the view's normalisation).

What is evaluated. RRUFF-908 (Salgado et al., npj Comput Mater 2023) has 908 patterns; the file on hand
(``rruff908/rruff908_dev.npz``) is its space-group-stratified **development half, 454 patterns** (the other 454
are kept as a hidden test set and are never read). The task scores the first ``ctx.rruff_max_patterns`` of the
454 (None: all 454; the ``ci`` preset scores 64); every metric entry's ``n`` records how many were scored.

RRUFF ↔ AMCSD overlap: most RRUFF minerals have a structure in the AMCSD training split; the overlap is measured
method-independently (:mod:`pxrdbench.tasks.rruff_overlap`) and the metrics are repeated on the low-overlap
patterns.

Metric keys (task ``experimental_rruff908``):

- ``crystal_system/…``, ``space_group/…``: the classification blocks on all scored patterns;
- ``low_overlap/crystal_system/…``, ``low_overlap/space_group/…``: the same blocks on the low-overlap patterns
  only (their ``n`` = how many);
- ``overlap/max_train_similarity/median`` (with an item-bootstrap CI), ``…/share_above_threshold`` (% of
  patterns at or above the threshold, with CI), ``…/threshold`` (the threshold used), and the histogram
  ``…/histogram/bin_XX/count`` for XX = 00 … 19: bin k counts the patterns with similarity in
  [k/20, (k+1)/20) (the last bin includes 1.0); every entry's ``n`` is the number of patterns measured;
- ``overlap/reference_test/max_train_similarity/…``: the same entries (median, share, histogram; no intervals,
  its items come in correlated series) for the held-out simulated test split.

The ``overlap/`` and ``low_overlap/`` entries are absent, with a note, when the data module has no training
split (``pxrdbench evaluate --data rruff908`` evaluates on the measured set alone).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pxrdbench.tasks.base import Block, EvalContext, Task, TaskSpec, classifies
from pxrdbench.tasks.classification import CRYSTAL_SYSTEM, SPACE_GROUP
from pxrdbench.tasks.rruff_overlap import (
    BATCH,
    LOW_OVERLAP_PREFIX,
    OVERLAP_THRESHOLD,
    overlap_block,
    training_overlap,
)

if TYPE_CHECKING:
    import numpy as np

DEV_PATTERNS = 454
"""Patterns in ``rruff908_dev.npz``: the space-group-stratified development half of the 908 (the other 454 are a
hidden test set)."""


def evaluate_rruff908(
    method: Any,
    view: Any,
    *,
    n_boot: int,
    max_patterns: int | None = None,
    device: str = "cpu",
    peak_tokens: bool = False,
    arrays: Any = None,
    max_train_similarity: np.ndarray | None = None,
    threshold: float = OVERLAP_THRESHOLD,
) -> Block:
    """``crystal_system/…`` and ``space_group/…`` blocks on the first ``max_patterns`` (None: all) patterns; with
    ``max_train_similarity`` (one per scored pattern), the same blocks under ``low_overlap/`` on the patterns
    whose similarity is below ``threshold``.

    ``arrays``: the set (default: read with :func:`~pxrdbench.data.experimental.rruff908.rruff908_arrays`).
    Raises DatasetError when the RRUFF-908 file is not on this machine.
    """
    import numpy as np
    import torch

    from pxrdbench.data.experimental.rruff908 import rruff908_arrays
    from pxrdbench.errors import InputError
    from pxrdbench.tasks.blocks import prefixed
    from pxrdbench.tasks.predict import collect_predictions
    from pxrdbench.tasks.render import measured_batch

    arrays = rruff908_arrays() if arrays is None else arrays
    n = len(arrays.intensity) if max_patterns is None else min(max_patterns, len(arrays.intensity))
    if max_train_similarity is not None and len(max_train_similarity) != n:
        raise InputError(
            "max_train_similarity",
            f"need one value per scored pattern ({n}), got {len(max_train_similarity)}",
        )

    def batches() -> Iterator[dict[str, Any]]:
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            batch = measured_batch(
                view,
                arrays.two_theta,
                arrays.intensity[start:stop],
                arrays.wavelength,
                peak_tokens=peak_tokens,
            )
            batch["crystal_system"] = torch.as_tensor(arrays.crystal_system[start:stop], dtype=torch.long)
            batch["space_group"] = torch.as_tensor(arrays.space_group[start:stop], dtype=torch.long) - 1
            yield batch

    preds = collect_predictions(method, batches(), want_lattice=False, device=device)
    low = None if max_train_similarity is None else np.asarray(max_train_similarity) < threshold
    out: Block = {}
    for task in (CRYSTAL_SYSTEM, SPACE_GROUP):
        if task.name in preds.proba:
            labels, proba = preds.labels[task.name], preds.proba[task.name]
            out.update(prefixed(task.name, task.block(labels, proba, n_boot)))
            if low is not None and low.any():
                block = task.block(labels[low], proba[low], n_boot)
                out.update(prefixed(f"{LOW_OVERLAP_PREFIX}{task.name}", block))
    return out


class Rruff908Task(Task):
    """Transfer to measured patterns, for methods that classify crystal systems or space groups."""

    spec = TaskSpec(
        "experimental_rruff908",
        f"transfer to measured RRUFF patterns ({DEV_PATTERNS}-pattern dev half of RRUFF-908; "
        "low_overlap/: those least similar to training patterns)",
        ("experimental_patterns", "labels", "candidates"),
        ("*/*",),
        ("crystal_system/accuracy", "space_group/accuracy", "retrieval/prescreen/top1"),
    )
    source = "rruff908"

    def serves(self, method: Any) -> bool:
        """The method serves crystal-system or space-group classification."""
        return classifies(method)

    def run(self, ctx: EvalContext) -> Block:
        """The block, or {} with a note when the RRUFF-908 set is absent (never faked); the ``overlap/`` and
        ``low_overlap/`` entries are left out, with a note, when the data module has no training split."""
        from pxrdbench.data.experimental.rruff908 import rruff908_arrays
        from pxrdbench.errors import DatasetError
        from pxrdbench.tasks.render import needs_peak_tokens

        try:
            arrays = rruff908_arrays()
        except DatasetError as exc:
            ctx.notes.append(f"{self.name} not evaluated: {exc}")
            return {}
        total = len(arrays.intensity)
        n = total if ctx.rruff_max_patterns is None else min(ctx.rruff_max_patterns, total)
        if n < total:
            ctx.notes.append(f"{self.name}: scored the first {n} of the {total} RRUFF-908 dev patterns")
        overlap = ctx.remember(
            f"rruff908/overlap/{n}", lambda: training_overlap(ctx.datamodule, arrays, n, device=ctx.device)
        )
        if overlap is None:
            ctx.notes.append(
                f"{self.name}: overlap with the training split not measured (the data module has no training "
                "split), so no overlap/ or low_overlap/ entries"
            )
        block = evaluate_rruff908(
            ctx.method,
            ctx.datamodule.view,
            n_boot=ctx.n_boot,
            max_patterns=n,
            device=ctx.device,
            peak_tokens=needs_peak_tokens(ctx.method),
            arrays=arrays,
            max_train_similarity=None if overlap is None else overlap.rruff,
        )
        if block and overlap is not None:
            block.update(overlap_block(overlap, n_boot=ctx.n_boot))
        return block


RRUFF908 = Rruff908Task()
