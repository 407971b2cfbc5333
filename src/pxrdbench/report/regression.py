"""CI regression: every registered tiny model trains the ``ci`` preset on a fixed tiny subset (the first 64 AMCSD
entries, seed 0, CPU) and its tracked metrics must stay inside reference bands committed in the repository
(``tests/regression/reference_bands.json``). The bands change only through ``scripts/update_reference_bands.py``,
so any change of a result shows in review.

Band rule: a percentage metric may move by one test item (100/n %) plus 1e-6; any other metric by 5 % of its value
(at least 1e-3). On the same kind of machine a run is deterministic, so a value outside its band means the code's
behaviour changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REGRESSION_DATA = "amcsd"
REGRESSION_PRESET = "ci"
REGRESSION_SEED = 0
BANDS_FILE = Path(__file__).resolve().parents[3] / "tests" / "regression" / "reference_bands.json"

#: (task, metric key) tracked per task when present in a results file.
TRACKED: tuple[tuple[str, str], ...] = (
    ("crystal_system", "accuracy"),
    ("space_group", "accuracy"),
    ("space_group", "mean_hop"),
    ("lattice", "length_mae"),
    ("lattice", "angle_mae"),
    ("retrieval", "top1"),
    ("retrieval", "mean_rank"),
    ("experimental_rruff908", "crystal_system/accuracy"),
    ("experimental_rruff908", "space_group/accuracy"),
)


def regression_models() -> list[str]:
    """The tiny twin of every registered method (``configs/methods/<name>_tiny.yaml``)."""
    from pxrdbench.methods.registry import list_methods

    names = set(list_methods())
    return [n for n in sorted(names) if n.endswith("_tiny") and n.removesuffix("_tiny") in names]


def run_ci(model: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """Train + evaluate ``model`` with the ci preset; return the results dict (files under ``workdir``)."""
    from pxrdbench.report.results import read_results
    from pxrdbench.run.bench import BenchRequest, run_bench

    options: dict[str, Any] = {
        "data": REGRESSION_DATA,
        "preset": REGRESSION_PRESET,
        "gpus": 1,
        "accelerator": "cpu",
        "seed": REGRESSION_SEED,
        "workers": 1,
        "results_dir": str(workdir / "results"),
        "runs_dir": str(workdir / "runs"),
        "leaderboard": False,
    }
    request = BenchRequest(model=model, **{**options, **overrides})
    path = run_bench(request)
    assert path is not None
    return read_results(path)


def tracked_values(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{"task/metric": {"value", "n", "percent"}} of the tracked metrics present in a results dict."""
    from pxrdbench.tasks.specs import metric_spec

    out: dict[str, dict[str, float]] = {}
    for task, key in TRACKED:
        entry = result["metrics"].get(task, {}).get(key)
        if entry is None:
            continue
        unit = metric_spec(key.split("/")[-1]).unit
        out[f"{task}/{key}"] = {"value": entry["value"], "n": entry["n"], "percent": unit == "%"}
    return out


def band(value: float, n: int, percent: bool) -> list[float]:
    """The allowed interval of one tracked value (see the module docstring)."""
    tol = (100.0 / max(n, 1) + 1e-6) if percent else max(0.05 * abs(value), 1e-3)
    return [value - tol, value + tol]


def make_bands(values: dict[str, dict[str, float]]) -> dict[str, list[float]]:
    return {k: band(v["value"], int(v["n"]), bool(v["percent"])) for k, v in sorted(values.items())}


def not_evaluated(result: dict[str, Any]) -> set[str]:
    """Tasks the run's notes say were not evaluated because their data is not on this machine (experimental
    sets); their banded metrics are then absent for a stated reason, not lost."""
    notes = str(result.get("notes", ""))
    return {task for task, _ in TRACKED if f"{task} not evaluated:" in notes}


def check_bands(
    values: dict[str, dict[str, float]], bands: dict[str, list[float]], skipped: set[str] | None = None
) -> list[str]:
    """Human-readable violations: values outside their band, and banded metrics that disappeared (except those
    of the ``skipped`` tasks, see :func:`not_evaluated`)."""
    problems = []
    for key, (lo, hi) in sorted(bands.items()):
        if key not in values and key.split("/", 1)[0] in (skipped or set()):
            continue
        if key not in values:
            problems.append(f"{key}: missing from the results (band [{lo:.4g}, {hi:.4g}])")
        elif not lo <= values[key]["value"] <= hi:
            problems.append(f"{key}: {values[key]['value']:.6g} outside [{lo:.6g}, {hi:.6g}]")
    return problems


def load_bands(path: Path = BANDS_FILE) -> dict[str, dict[str, list[float]]]:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_bands(bands: dict[str, dict[str, list[float]]], path: Path = BANDS_FILE) -> None:
    path.write_text(json.dumps(bands, indent=2, sort_keys=True) + "\n")
