"""The robustness task: the metrics of the test-split tasks again, on named perturbed renderings of the test split
(broadening, shift, noise, impurity peaks, texture; :data:`~pxrdbench.views.perturbations.PERTURBATION_SETS`,
each defined in stated units: XCCP's at Cu Kα and converted through d to the view's wavelength).

Keys: ``<perturbation>/<task>/<metric>`` for every perturbable task the method serves (classification and
lattice: the full block; retrieval: ranks of perturbed queries against the unperturbed test pool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pxrdbench.tasks.base import Block, EvalContext, PerturbableTask, Task, TaskSpec


class RobustnessTask(Task):
    """Runs each member task on every perturbation set of the context."""

    spec = TaskSpec(
        "robustness",
        "the same metrics on named perturbed test sets (broadening, shift, noise, impurities, texture)",
        ("patterns", "perturbation_sets", "labels", "candidates"),
        ("*/*",),
        ("*/crystal_system/accuracy", "*/space_group/accuracy", "*/retrieval/prescreen/top1"),
    )

    def __init__(self, members: Sequence[PerturbableTask]) -> None:
        self.members = tuple(members)

    def serves(self, method: Any) -> bool:
        """Any member task serves the method."""
        return any(task.serves(method) for task in self.members)

    def run(self, ctx: EvalContext) -> Block:
        """``{"<perturbation>/<task>/<metric>": entry}`` (empty without perturbations in the context)."""
        check_perturbations(ctx.perturbations)
        out: Block = {}
        served = [task for task in self.members if task.serves(ctx.method)]
        for perturbation in ctx.perturbations:
            for task in served:
                block = task.perturbed(ctx, perturbation)
                out.update({f"{perturbation}/{task.name}/{key}": v for key, v in block.items()})
            ctx.forget(suffix=f"/{perturbation}")  # shared by the member tasks of this set only
        return out


def check_perturbations(names: Sequence[str]) -> None:
    """Fail before any work on a name that is not a perturbation set (ConfigError with close matches)."""
    if not names:
        return
    from pxrdbench.errors import did_you_mean
    from pxrdbench.views.perturbations import PERTURBATION_SETS

    for name in names:
        if name not in PERTURBATION_SETS:
            raise did_you_mean(name, list(PERTURBATION_SETS), "perturbation set")
