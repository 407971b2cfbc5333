"""The classification tasks (crystal system, extinction group, space group) on the test split, and the test-split
predictions that they, the lattice task and the robustness task share (one pass over the split per rendering)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pxrdbench.tasks.base import Block, EvalContext, PerturbableTask, TaskSpec, declares

if TYPE_CHECKING:
    import numpy as np

    from pxrdbench.tasks.predict import Predictions

_CLASSIFY_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "top1_accuracy",
    "top3_accuracy",
    "top5_accuracy",
    "per_class/*/accuracy",
)


class ClassificationTask(PerturbableTask):
    """One classification task: accuracy (with CI), balanced, top-k and per-class accuracy of the method's
    class probabilities; subgroup-graph hop statistics for the space group."""

    def __init__(self, spec: TaskSpec, *, hops: bool = False) -> None:
        self.spec = spec
        self.hops = hops

    def num_classes(self) -> int:
        """Number of classes (7 crystal systems, 230 space groups, the extinction groups of the tables)."""
        if self.name == "extinction_group":
            from pxrdbench.symmetry.extinction import n_extinction_groups

            return int(n_extinction_groups())
        return {"crystal_system": 7, "space_group": 230}[self.name]

    def serves(self, method: Any) -> bool:
        """The method declares the task."""
        return declares(method, self.name)

    def block(
        self, labels: np.ndarray, proba: np.ndarray, n_boot: int, groups: np.ndarray | None = None
    ) -> Block:
        """The task's metric block from labels (−1 = unknown) and class probabilities [N, K]; ``groups``: the
        items' resampling groups (None: each item its own). Space-group classes are named by their 1-based
        number (``per_class/225/accuracy``)."""
        from pxrdbench.symmetry.subgroups import hop_distance_matrix
        from pxrdbench.tasks.blocks import classification_block

        return classification_block(
            labels,
            proba,
            self.num_classes(),
            n_boot=n_boot,
            class_names=self.class_names(),
            hop_matrix=hop_distance_matrix() if self.hops else None,
            groups=groups,
        )

    def class_names(self) -> tuple[str, ...] | None:
        """Per-class key names: crystal-system names, space-group numbers 1–230, extinction-group indices."""
        from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS

        if self.name == "crystal_system":
            return tuple(CRYSTAL_SYSTEMS)
        if self.name == "space_group":
            return tuple(str(number) for number in range(1, 231))
        return None

    def _from(self, ctx: EvalContext, preds: Predictions) -> Block:
        if self.name not in preds.proba or self.name not in preds.labels:
            return {}
        groups = ctx.groups(preds.labels["index"]) if "index" in preds.labels else None
        return self.block(preds.labels[self.name], preds.proba[self.name], ctx.n_boot, groups)

    def run(self, ctx: EvalContext) -> Block:
        """Metrics on the test split."""
        return self._from(ctx, shared_predictions(ctx))

    def perturbed(self, ctx: EvalContext, perturbation: str) -> Block:
        """Metrics on the test split rendered with ``perturbation``."""
        return self._from(ctx, shared_predictions(ctx, perturbation))


CRYSTAL_SYSTEM = ClassificationTask(
    TaskSpec(
        "crystal_system",
        "crystal-system classification (7 classes)",
        ("patterns", "crystal_system_labels"),
        _CLASSIFY_METRICS,
        ("accuracy",),
    )
)
EXTINCTION_GROUP = ClassificationTask(
    TaskSpec(
        "extinction_group",
        "extinction-group classification (systematic-absence classes)",
        ("patterns", "extinction_group_labels"),
        _CLASSIFY_METRICS,
        ("accuracy",),
    )
)
SPACE_GROUP = ClassificationTask(
    TaskSpec(
        "space_group",
        "space-group classification (230 classes) and subgroup-graph distance of errors",
        ("patterns", "space_group_labels", "hop_matrix"),
        (*_CLASSIFY_METRICS, "within_1_edge", "mean_hop", "hop_share_*"),
        ("accuracy", "within_1_edge"),
    ),
    hops=True,
)
CLASSIFICATION_TASKS: tuple[ClassificationTask, ...] = (CRYSTAL_SYSTEM, EXTINCTION_GROUP, SPACE_GROUP)


def shared_predictions(ctx: EvalContext, perturbation: str | None = None) -> Predictions:
    """Class probabilities (for the classification tasks the method serves) and lattices (if it serves the
    lattice task) over the test split, rendered plainly or with ``perturbation``; computed once per context."""

    def build() -> Predictions:
        from pxrdbench.tasks.predict import Predictions, collect_predictions
        from pxrdbench.tasks.render import rendered_batches

        method, dm = ctx.method, ctx.datamodule
        want_proba = any(task.serves(method) for task in CLASSIFICATION_TASKS)
        want_lattice = declares(method, "lattice")
        if not (want_proba or want_lattice):
            return Predictions()
        batches = rendered_batches(dm, "test", perturbation=perturbation, device=ctx.device)
        return collect_predictions(
            method, batches, want_proba=want_proba, want_lattice=want_lattice, device=ctx.device
        )

    return ctx.remember(f"predictions/{perturbation or ''}", build)
