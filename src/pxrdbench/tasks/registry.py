"""The task registry: every benchmark task, in results-file order, and the one entry point that evaluates a
trained method on all the tasks it serves.

``run_tasks(ctx)`` gives the ``metrics`` mapping of a results file: ``{task: {metric_key: entry}}`` for the
tasks that produced metrics (``crystal_system``, ``extinction_group``, ``space_group``, ``lattice``,
``retrieval``, ``robustness`` with ``<perturbation>/<task>/<metric>`` keys, ``experimental_rruff908``,
``experimental_rietveld``). The efficiency task's timings go to the file's ``efficiency`` section
(:func:`inference_timings`). Task names and declarations are written once, in the task modules; the
leaderboard reads them through :mod:`pxrdbench.tasks.specs`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pxrdbench.errors import did_you_mean
from pxrdbench.tasks.base import Block, EvalContext, PerturbableTask, Task
from pxrdbench.tasks.classification import CRYSTAL_SYSTEM, EXTINCTION_GROUP, SPACE_GROUP
from pxrdbench.tasks.efficiency import EFFICIENCY
from pxrdbench.tasks.efficiency import inference_timings as _inference_timings
from pxrdbench.tasks.lattice import LATTICE
from pxrdbench.tasks.retrieval import RETRIEVAL
from pxrdbench.tasks.rietveld import RIETVELD
from pxrdbench.tasks.robustness import RobustnessTask
from pxrdbench.tasks.rruff import RRUFF908

_TEST_SPLIT: tuple[Task, ...] = (CRYSTAL_SYSTEM, EXTINCTION_GROUP, SPACE_GROUP, LATTICE, RETRIEVAL)
ROBUSTNESS = RobustnessTask([t for t in _TEST_SPLIT if isinstance(t, PerturbableTask)])

TASKS: tuple[Task, ...] = (*_TEST_SPLIT, ROBUSTNESS, RRUFF908, RIETVELD, EFFICIENCY)
"""Every task, in the order they run and are listed."""
_BY_NAME: dict[str, Task] = {task.name: task for task in TASKS}


def task_names() -> list[str]:
    """The registered task names, in order."""
    return list(_BY_NAME)


def get(name: str) -> Task:
    """The task called ``name``; unknown names raise ConfigError with close matches."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise did_you_mean(name, list(_BY_NAME), "task") from None


def tasks_for_source(source: str) -> list[str]:
    """Names of the tasks that score data ``source`` (``simulated``, ``rruff908``, ``rietveld``, ``training``)."""
    return [task.name for task in TASKS if task.source == source]


def served_tasks(method: Any) -> list[str]:
    """Names of the tasks that serve ``method`` (from what it declares), in registry order.

    Derived tasks are included when they apply: ``robustness`` (any perturbable task served),
    ``experimental_rruff908`` (classifiers), ``experimental_rietveld`` (classifiers and retrieval methods) and
    ``efficiency`` (every method); whether they give metrics depends on the run (perturbation sets asked
    for, experimental data present).
    """
    return [task.name for task in TASKS if task.serves(method)]


def run_tasks(ctx: EvalContext, only: Iterable[str] | None = None) -> dict[str, Block]:
    """Evaluate ``ctx.method`` on every task it serves (or only the named ones): the results file's
    ``metrics`` mapping, tasks without metrics left out, with the paired differences of the headline metrics
    against ``ctx.paired_baselines`` (:mod:`pxrdbench.tasks.paired`). Notes (missing data, skipped files) go to
    ``ctx.notes``; shared intermediate results are dropped from ``ctx.memo`` at the end."""
    from pxrdbench.tasks.paired import add_paired_differences, strip_private

    selected = None if only is None else {get(name).name for name in only}
    metrics: dict[str, Block] = {}
    ran: list[Task] = []
    try:
        for task in TASKS:
            if not task.in_metrics or (selected is not None and task.name not in selected):
                continue
            if task.serves(ctx.method):
                block = task.run(ctx)
                if block:
                    metrics[task.name] = block
                    ran.append(task)
        if ctx.paired_baselines:
            add_paired_differences(ctx, metrics, ran)
    finally:
        ctx.forget()
    return strip_private(metrics)


def inference_timings(ctx: EvalContext) -> dict[str, float]:
    """``inference_latency_ms`` and ``inference_throughput_per_s`` of ``ctx.method`` on rendered test batches
    (the efficiency task; see :mod:`pxrdbench.tasks.efficiency`)."""
    return _inference_timings(ctx)
