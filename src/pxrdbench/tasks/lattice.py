"""The lattice task: Niggli lattice-parameter regression on the test split.

Metrics (:func:`pxrdbench.tasks.blocks.lattice_block`): ``length_mae`` (Å) and ``angle_mae`` (°) with 95 %
cluster-bootstrap intervals over the test split's groups (each item's error is the mean of its three absolute errors), the pooled
``length_mape`` / ``angle_mape`` (%) and ``length_r2`` / ``angle_r2``, and ``{a,b,c,alpha,beta,gamma}_mae``.
Items whose true cell is unknown (NaN) are left out; R² is left out when it is undefined (constant truth).
The predictions are the ones the classification tasks share (one pass over the split per rendering).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pxrdbench.tasks.base import Block, EvalContext, PerturbableTask, TaskSpec, declares
from pxrdbench.tasks.classification import shared_predictions

if TYPE_CHECKING:
    from pxrdbench.tasks.predict import Predictions


class LatticeTask(PerturbableTask):
    """Lattice-parameter regression, for methods that declare the ``lattice`` task."""

    spec = TaskSpec(
        "lattice",
        "lattice-parameter regression on Niggli-reduced cells",
        ("patterns", "lattice_labels"),
        ("length_*", "angle_*", *(f"{p}_mae" for p in ("a", "b", "c", "alpha", "beta", "gamma"))),
        ("length_mae", "angle_mae"),
    )

    def serves(self, method: Any) -> bool:
        """The method declares the task."""
        return declares(method, "lattice")

    @staticmethod
    def _from(ctx: EvalContext, preds: Predictions) -> Block:
        import numpy as np

        from pxrdbench.tasks.blocks import lattice_block

        if preds.lattice is None or "lattice" not in preds.labels:
            return {}
        known = np.isfinite(np.asarray(preds.labels["lattice"], dtype=np.float64)).all(axis=1)
        if not known.any():
            return {}
        groups = ctx.groups(preds.labels["index"][known]) if "index" in preds.labels else None
        return lattice_block(
            preds.labels["lattice"][known], preds.lattice[known], n_boot=ctx.n_boot, groups=groups
        )

    def run(self, ctx: EvalContext) -> Block:
        """Metrics on the test split."""
        return self._from(ctx, shared_predictions(ctx))

    def perturbed(self, ctx: EvalContext, perturbation: str) -> Block:
        """Metrics on the test split rendered with ``perturbation``."""
        return self._from(ctx, shared_predictions(ctx, perturbation))


LATTICE = LatticeTask()
