"""The RRUFF-908 task: crystal-system and space-group classification of the 908 measured RRUFF dev patterns,
converted into the method's view (Bragg re-mapping, resampling, masking, the view's normalisation)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pxrdbench.tasks.base import Block, EvalContext, Task, TaskSpec, classifies
from pxrdbench.tasks.classification import CRYSTAL_SYSTEM, SPACE_GROUP

BATCH = 64
"""Measured patterns per batch."""


def evaluate_rruff908(
    method: Any,
    view: Any,
    *,
    n_boot: int,
    max_patterns: int | None = None,
    device: str = "cpu",
    peak_tokens: bool = False,
) -> Block:
    """``crystal_system/…`` and ``space_group/…`` blocks on the first ``max_patterns`` (None: all) patterns.

    Raises DatasetError when the RRUFF-908 file is not on this machine.
    """
    import torch

    from pxrdbench.data.experimental.rruff908 import rruff908_arrays
    from pxrdbench.tasks.blocks import prefixed
    from pxrdbench.tasks.predict import collect_predictions
    from pxrdbench.tasks.render import measured_batch

    arrays = rruff908_arrays()
    n = len(arrays.intensity) if max_patterns is None else min(max_patterns, len(arrays.intensity))

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
    out: Block = {}
    for task in (CRYSTAL_SYSTEM, SPACE_GROUP):
        if task.name in preds.proba:
            block = task.block(preds.labels[task.name], preds.proba[task.name], n_boot)
            out.update(prefixed(task.name, block))
    return out


class Rruff908Task(Task):
    """Transfer to measured patterns, for methods that classify crystal systems or space groups."""

    spec = TaskSpec(
        "experimental_rruff908",
        "transfer to measured RRUFF patterns (908-pattern set)",
        ("experimental_patterns", "labels", "candidates"),
        ("*/*",),
        ("crystal_system/accuracy", "space_group/accuracy", "retrieval/prescreen/top1"),
    )
    source = "rruff908"

    def serves(self, method: Any) -> bool:
        """The method serves crystal-system or space-group classification."""
        return classifies(method)

    def run(self, ctx: EvalContext) -> Block:
        """The block, or {} with a note when the RRUFF-908 set is absent (never faked)."""
        from pxrdbench.errors import DatasetError
        from pxrdbench.tasks.render import needs_peak_tokens

        try:
            return evaluate_rruff908(
                ctx.method,
                ctx.datamodule.view,
                n_boot=ctx.n_boot,
                max_patterns=ctx.rruff_max_patterns,
                device=ctx.device,
                peak_tokens=needs_peak_tokens(ctx.method),
            )
        except DatasetError as exc:
            ctx.notes.append(f"{self.name} not evaluated: {exc}")
            return {}


RRUFF908 = Rruff908Task()
