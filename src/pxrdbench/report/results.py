"""The results-file schema: one JSON file per run, validated on write and on read.

File name: ``<model>__<data>__<preset>__seed<S>.json`` (:func:`results_filename`). Content (all required
unless marked optional)::

    schema_version  int (== SCHEMA_VERSION)
    method          {name, config: {...}, config_hash, tasks: [task, ...]}   tasks = every task it can serve
    dataset         {name, cache_hash, split_hash, n_train, n_val, n_test}
    preset          {name, budget: {"train_patterns" or "epochs", "safety_max_time", "max_structures", ...}}
                    (older files: "max_epochs", "max_time": wall-clock budgets, shown as legacy runs)
    seeds           [int, ...]
    metrics         {task: {metric_key: {"value": float, "ci95": [lo, hi] | null, "n": int,
                                          "std": float | null}}}
    efficiency      {parameters, train_time_s, train_patterns_per_s, inference_latency_ms,
                     inference_throughput_per_s}                 (timings may be null: not measured)
    hardware        {accelerator, device_names: [str], device_count, cpu, num_threads}
    software        {python, torch, lightning, pxrdbench, ...: str}
    git_commit      hex commit, or "unknown" together with git_reason (str)
    git_dirty       bool (optional)        git_reason  str (optional)        notes  str (optional)
    training        (optional; files without it, or without training.budget, predate pattern budgets)
                    {stages: [{stage, seed, steps, epochs, patterns, truncated, lr}], patterns_seen,
                     steps, epochs (patterns seen / n_train per member), wall_time_s (lr sweep included),
                     truncated (bool: the wall-clock safety stop ended a fit before its budget: never ranked),
                     budget {kind: train_patterns | epochs | baseline, train_patterns, max_steps, epochs,
                             val_every_steps, global_batch, safety_max_time, family, schedule},
                     lr {source: sweep | config, peak_lr, factor, config_lr, procedure, sweep: [...]} | null,
                     curve [{stage, step, patterns, epoch, train_loss, val_loss, val: {metric: value}}]}
    date            ISO 8601
    evaluation      {version, interval, resampling_unit, balanced_accuracy, ties, paired_baselines, n_boot}
                    (optional: how the metrics were computed; files without it predate evaluation version 2 —
                    item bootstrap, ties counted as hits, 0-based space-group per-class keys)

A task the method cannot serve is absent from ``metrics`` and from ``method.tasks``. Metric keys and their
directions come from :mod:`pxrdbench.tasks.specs`. Files are written deterministically (sorted keys,
indent 2, trailing newline).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.tasks.specs import METRICS, TASKS, base_metric, task_has_metric

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*(?:_[A-Za-z0-9.+-]+)*$")
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_TOP_LEVEL = {
    "schema_version",
    "method",
    "dataset",
    "preset",
    "seeds",
    "metrics",
    "efficiency",
    "hardware",
    "software",
    "git_commit",
    "date",
}
_OPTIONAL = {"git_dirty", "git_reason", "notes", "training", "evaluation"}
_EFFICIENCY_TIMINGS = (
    "train_time_s",
    "train_patterns_per_s",
    "inference_latency_ms",
    "inference_throughput_per_s",
)
_ENTRY_KEYS = {"value", "ci95", "n", "std"}


class _Checker:
    """Field-by-field checks that raise InputError naming the file and the dotted field."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field: str, reason: str) -> InputError:
        return InputError(f"{self.where}: field {field!r}", reason)

    def get(self, obj: dict[str, Any], key: str, field: str) -> Any:
        if key not in obj:
            raise self.fail(f"{field}.{key}" if field else key, "is missing")
        return obj[key]

    def mapping(self, value: Any, field: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(field, f"must be an object, got {type(value).__name__}")
        return value

    def string(self, value: Any, field: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value):
            raise self.fail(field, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, value: Any, field: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(field, f"must be an integer >= {minimum}, got {value!r}")
        return value

    def number(self, value: Any, field: str, *, nullable: bool = False, minimum: float | None = None) -> None:
        if value is None and nullable:
            return
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(field, f"must be a finite number{' or null' if nullable else ''}, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.fail(field, f"must be >= {minimum}, got {value!r}")


def validate_results(obj: Any, where: str = "<results>") -> None:
    """Check a results object against the schema; raise InputError naming ``where`` and the field."""
    ck = _Checker(where)
    root = ck.mapping(obj, "<root>")
    for key in sorted(_TOP_LEVEL - set(root)):
        raise ck.fail(key, "is missing")
    for key in sorted(set(root) - _TOP_LEVEL - _OPTIONAL):
        raise ck.fail(key, "is not a known field (typo?)")
    if root["schema_version"] != SCHEMA_VERSION or isinstance(root["schema_version"], bool):
        raise ck.fail("schema_version", f"must be {SCHEMA_VERSION}, got {root['schema_version']!r}")

    method = ck.mapping(root["method"], "method")
    ck.string(ck.get(method, "name", "method"), "method.name")
    ck.mapping(ck.get(method, "config", "method"), "method.config")
    ck.string(ck.get(method, "config_hash", "method"), "method.config_hash")
    tasks = ck.get(method, "tasks", "method")
    if not isinstance(tasks, list) or len(set(map(str, tasks))) != len(tasks):
        raise ck.fail("method.tasks", f"must be a list of distinct task names, got {tasks!r}")
    for i, task in enumerate(tasks):
        if task not in TASKS:
            raise ck.fail(f"method.tasks[{i}]", f"unknown task {task!r}; known: {', '.join(sorted(TASKS))}")

    dataset = ck.mapping(root["dataset"], "dataset")
    for key in ("name", "cache_hash", "split_hash"):
        ck.string(ck.get(dataset, key, "dataset"), f"dataset.{key}")
    for key in ("n_train", "n_val", "n_test"):
        ck.integer(ck.get(dataset, key, "dataset"), f"dataset.{key}")

    preset = ck.mapping(root["preset"], "preset")
    ck.string(ck.get(preset, "name", "preset"), "preset.name")
    ck.mapping(ck.get(preset, "budget", "preset"), "preset.budget")

    seeds = root["seeds"]
    if not isinstance(seeds, list) or not seeds:
        raise ck.fail("seeds", f"must be a non-empty list of integers, got {seeds!r}")
    for i, seed in enumerate(seeds):
        ck.integer(seed, f"seeds[{i}]")

    _validate_metrics(ck, ck.mapping(root["metrics"], "metrics"), tasks)
    if "training" in root:
        _validate_training(ck, ck.mapping(root["training"], "training"))

    eff = ck.mapping(root["efficiency"], "efficiency")
    ck.integer(ck.get(eff, "parameters", "efficiency"), "efficiency.parameters")
    for key in _EFFICIENCY_TIMINGS:
        ck.number(ck.get(eff, key, "efficiency"), f"efficiency.{key}", nullable=True, minimum=0.0)

    hw = ck.mapping(root["hardware"], "hardware")
    ck.string(ck.get(hw, "accelerator", "hardware"), "hardware.accelerator")
    names = ck.get(hw, "device_names", "hardware")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ck.fail("hardware.device_names", f"must be a list of strings, got {names!r}")
    ck.integer(ck.get(hw, "device_count", "hardware"), "hardware.device_count")
    ck.string(ck.get(hw, "cpu", "hardware"), "hardware.cpu", empty=True)
    ck.integer(ck.get(hw, "num_threads", "hardware"), "hardware.num_threads", minimum=1)

    sw = ck.mapping(root["software"], "software")
    for key in ("python", "torch", "lightning", "pxrdbench"):
        ck.get(sw, key, "software")
    for key, value in sw.items():
        ck.string(value, f"software.{key}")

    commit = ck.string(root["git_commit"], "git_commit")
    if commit == "unknown":
        if not isinstance(root.get("git_reason"), str) or not root["git_reason"]:
            raise ck.fail("git_reason", 'is required (non-empty string) when git_commit is "unknown"')
    elif not _COMMIT.match(commit):
        raise ck.fail("git_commit", f'must be a 7-40 digit lowercase hex commit or "unknown", got {commit!r}')
    if "git_dirty" in root and not isinstance(root["git_dirty"], bool):
        raise ck.fail("git_dirty", f"must be true or false, got {root['git_dirty']!r}")
    try:
        datetime.fromisoformat(ck.string(root["date"], "date"))
    except ValueError:
        raise ck.fail("date", f"must be an ISO 8601 date-time, got {root['date']!r}") from None


EVALUATION_VERSION = 2
"""The evaluation code's version: 2 = tie-aware ranks and accuracies, cluster bootstrap over split groups, truth
sets of within-source duplicates, paired differences against baselines, 1-based space-group per-class keys."""


def _validate_training(ck: _Checker, training: dict[str, Any]) -> None:
    """The training block: always the stages and patterns seen; the pattern-budget fields when ``budget`` is
    there (files written since budgets are counted in patterns)."""
    ck.integer(ck.get(training, "patterns_seen", "training"), "training.patterns_seen")
    if not isinstance(ck.get(training, "stages", "training"), list):
        raise ck.fail("training.stages", "must be a list")
    if "budget" not in training:
        return
    ck.mapping(training["budget"], "training.budget")
    kind = training["budget"].get("kind")
    if kind not in ("train_patterns", "epochs", "baseline"):
        raise ck.fail("training.budget.kind", f"must be train_patterns, epochs or baseline, got {kind!r}")
    ck.integer(ck.get(training, "steps", "training"), "training.steps")
    ck.number(ck.get(training, "epochs", "training"), "training.epochs", minimum=0.0)
    ck.number(ck.get(training, "wall_time_s", "training"), "training.wall_time_s", minimum=0.0)
    if not isinstance(ck.get(training, "truncated", "training"), bool):
        raise ck.fail("training.truncated", "must be true or false")
    curve = ck.get(training, "curve", "training")
    if not isinstance(curve, list):
        raise ck.fail("training.curve", "must be a list of points")
    for i, point in enumerate(curve):
        point = ck.mapping(point, f"training.curve[{i}]")
        ck.integer(ck.get(point, "patterns", f"training.curve[{i}]"), f"training.curve[{i}].patterns")
        ck.mapping(ck.get(point, "val", f"training.curve[{i}]"), f"training.curve[{i}].val")


def evaluation_version(obj: dict[str, Any]) -> int:
    """The evaluation version a results object was computed with (1 when it has no ``evaluation`` field)."""
    return int(obj.get("evaluation", {}).get("version", 1))


def _validate_metrics(ck: _Checker, metrics: dict[str, Any], tasks: list[str]) -> None:
    for task, per_task in metrics.items():
        field = f"metrics.{task}"
        if task not in TASKS:
            raise ck.fail(field, f"unknown task {task!r}; known: {', '.join(sorted(TASKS))}")
        if task not in tasks:
            raise ck.fail(field, f"task {task!r} has metrics but is not in method.tasks")
        for key, entry in ck.mapping(per_task, field).items():
            mfield = f"{field}.{key}"
            if base_metric(key) not in METRICS:
                raise ck.fail(
                    mfield, f"unknown metric {base_metric(key)!r} (declare it in pxrdbench/tasks/specs.py)"
                )
            if not task_has_metric(task, key):
                raise ck.fail(mfield, f"is not a metric of task {task!r}")
            entry = ck.mapping(entry, mfield)
            if set(entry) != _ENTRY_KEYS:
                raise ck.fail(
                    mfield, f"must have exactly the keys {sorted(_ENTRY_KEYS)}, got {sorted(entry)}"
                )
            ck.number(entry["value"], f"{mfield}.value")
            ck.integer(entry["n"], f"{mfield}.n")
            ck.number(entry["std"], f"{mfield}.std", nullable=True, minimum=0.0)
            ci = entry["ci95"]
            if ci is not None:
                if not isinstance(ci, list) or len(ci) != 2:
                    raise ck.fail(f"{mfield}.ci95", f"must be [low, high] or null, got {ci!r}")
                ck.number(ci[0], f"{mfield}.ci95[0]")
                ck.number(ci[1], f"{mfield}.ci95[1]")
                if ci[0] > ci[1]:
                    raise ck.fail(f"{mfield}.ci95", f"low {ci[0]} exceeds high {ci[1]}")


def results_filename(model: str, data: str, preset: str, seed: int | Sequence[int]) -> str:
    """``<model>__<data>__<preset>__seed<S>.json``; several seeds in one file are joined with ``-``."""
    for arg, name in (("model", model), ("data", data), ("preset", preset)):
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(
                f"{arg} name {name!r} cannot be used in a results file name (letters, digits, . + - _)"
            )
    seeds = [seed] if isinstance(seed, int) else list(seed)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seed must be a non-negative integer or a list of them, got {seed!r}")
    return f"{model}__{data}__{preset}__seed{'-'.join(str(s) for s in seeds)}.json"


def filename_for(obj: dict[str, Any]) -> str:
    """The file name a (valid) results object is stored under."""
    return results_filename(
        obj["method"]["name"], obj["dataset"]["name"], obj["preset"]["name"], obj["seeds"]
    )


def dumps_results(obj: dict[str, Any]) -> str:
    """Deterministic JSON text: sorted keys, indent 2, UTF-8 kept, trailing newline; NaN refused."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_results(obj: dict[str, Any], directory: str | os.PathLike[str]) -> Path:
    """Validate ``obj`` and write it to ``directory/<results_filename>`` atomically; return the path."""
    method = obj.get("method") if isinstance(obj, dict) else None
    where = f"<results for {method.get('name', '?')}>" if isinstance(method, dict) else "<results>"
    validate_results(obj, where)
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / filename_for(obj)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(dumps_results(obj), encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one results file; errors name the file and the field."""
    path = Path(path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), "results file not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"is not valid JSON: {exc}") from None
    validate_results(obj, str(path))
    expected = filename_for(obj)
    if path.name != expected:
        raise InputError(str(path), f"file name does not match its content; expected {expected!r}")
    return obj


def load_all(directory: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read and validate every ``*.json`` results file in ``directory``, in sorted file-name order."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(str(root), "results directory does not exist")
    return [read_results(p) for p in sorted(root.glob("*.json"))]
