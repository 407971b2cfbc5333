"""The task protocol: what a benchmark task declares (:class:`TaskSpec`), which methods it serves and how it runs
on an evaluation context (:class:`EvalContext`) to give its results-file metric block.

A task decides whether it serves a method from what the method declares (``method.serves(task)``, i.e. its
``tasks``): a method that embeds patterns declares ``retrieval``, a classifier its classification tasks. Missing data (an experimental set that is not on this
machine) is a note in :attr:`EvalContext.notes`, never a faked block.

This module and the task modules import nothing heavy at import time (the leaderboard reads the declarations).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T")
Block = dict[str, dict[str, Any]]
"""A results-file metric block: ``{metric_key: {"value", "ci95", "n", "std"}}``."""


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task's declaration.

    Attributes:
        name: the registry key and the key under ``metrics`` in a results file.
        description: one line for the leaderboard.
        inputs: what an evaluation of this task needs (``patterns``, ``crystal_system_labels``, …).
        metrics: glob patterns (``fnmatch``) of the metric keys this task produces.
        headline: glob patterns of the metric keys shown in the leaderboard overview, in order.
    """

    name: str
    description: str
    inputs: tuple[str, ...]
    metrics: tuple[str, ...]
    headline: tuple[str, ...]


@dataclass
class EvalContext:
    """Everything a task needs to evaluate one trained method.

    Attributes:
        method: the trained method (batch-in prediction API, see :mod:`pxrdbench.methods.base`).
        datamodule: a set-up data module (``view``, ``cache``, ``seed``, ``batch_size``, ``with_graphs``,
            ``split_dataset(split)``); its test split is what the simulated tasks score.
        n_boot: bootstrap replicates of the 95 % intervals (cluster bootstrap over split groups).
        perturbations: names of the perturbation sets of the robustness task (empty: no robustness block).
        pools: retrieval candidate pools, any of ``"test"`` and ``"all"``.
        rruff_max_patterns: cap on the RRUFF-908 patterns scored (None: all).
        device: where the method runs (``"cpu"``, ``"cuda"``).
        notes: what the tasks report about themselves (datasets missing, files skipped); appended to.
        rietveld_folder: the Rietveld CIF folder (None: ``experimental/pdcif15`` under the data roots).
        paired_baselines: baselines each headline metric is compared with on the same items
            (``<metric>/vs_<baseline>``, :mod:`pxrdbench.tasks.paired`); empty: none.
        memo: results shared between tasks within one evaluation (predictions, candidate embeddings).
    """

    method: Any
    datamodule: Any
    n_boot: int = 1000
    perturbations: list[str] = field(default_factory=list)
    pools: tuple[str, ...] = ("test", "all")
    rruff_max_patterns: int | None = None
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)
    rietveld_folder: str | Path | None = None
    paired_baselines: tuple[str, ...] = ("chance", "majority", "pattern_nn", "element_random")
    memo: dict[str, Any] = field(default_factory=dict, repr=False)

    def remember(self, key: str, build: Callable[[], T]) -> T:
        """``memo[key]``, built by ``build()`` the first time it is asked for."""
        if key not in self.memo:
            self.memo[key] = build()
        return self.memo[key]

    def groups(self, rows: Any) -> Any:
        """The split group (str) of each cache row in ``rows``: what the cluster bootstrap resamples (an AMCSD
        mineral's series, one compound's polymorphs; :mod:`pxrdbench.data.grouping`)."""
        import numpy as np

        dm = self.datamodule
        if dm.cache is None:
            dm.setup()
        return dm.cache.entries["group"].astype(str).to_numpy()[np.asarray(rows, dtype=np.int64)]

    def forget(self, *, prefix: str = "", suffix: str = "") -> None:
        """Drop the memoised results whose key starts with ``prefix`` and ends with ``suffix`` (default: all).

        Keys read ``<what>/<perturbation>`` (empty perturbation: the plain test split)."""
        for key in [k for k in self.memo if k.startswith(prefix) and k.endswith(suffix)]:
            del self.memo[key]


class Task(ABC):
    """A benchmark task: its declaration, which methods it serves, and its evaluation.

    ``in_metrics``: whether :meth:`run` gives a block under ``metrics`` in the results file (the efficiency
    task's numbers live in the file's ``efficiency`` section instead). ``source``: the data it scores
    (``simulated`` test split, ``rruff908``, ``rietveld``, or ``training`` for efficiency).
    """

    spec: TaskSpec
    source: ClassVar[str] = "simulated"
    in_metrics: ClassVar[bool] = True

    @property
    def name(self) -> str:
        """The task's registry key (the key under ``metrics``)."""
        return self.spec.name

    @property
    def description(self) -> str:
        """One line for the leaderboard."""
        return self.spec.description

    @abstractmethod
    def serves(self, method: Any) -> bool:
        """Whether the method takes part in this task (from what it declares, never by running it)."""

    @abstractmethod
    def run(self, ctx: EvalContext) -> Block:
        """The task's metric block for ``ctx.method`` (empty when there is nothing to score)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class PerturbableTask(Task):
    """A task that can also be scored on a named perturbation set of the test split (robustness)."""

    @abstractmethod
    def perturbed(self, ctx: EvalContext, perturbation: str) -> Block:
        """The task's metric block on the test split rendered with ``perturbation``."""


def declares(method: Any, task: str) -> bool:
    """``method.serves(task)``; False for objects without ``serves``."""
    serves = getattr(method, "serves", None)
    return bool(serves(task)) if callable(serves) else False


def classifies(method: Any) -> bool:
    """Whether the method serves crystal-system or space-group classification."""
    return declares(method, "crystal_system") or declares(method, "space_group")
