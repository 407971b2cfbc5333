"""CI regression: every registered tiny model trains the ``ci`` preset on a fixed tiny subset (the first 64 AMCSD
entries, CPU) and its tracked metrics must stay inside reference bands committed in the repository
(``tests/regression/reference_bands.json``). The bands change only through ``scripts/update_reference_bands.py``,
so any change of a result shows in review.

Tracked metrics: the test metrics of :data:`TRACKED` and ``training/loss_ratio`` = the last learning-curve point's
``train_loss`` / the first point's (``training.curve`` of the results file, of its last stage when there are
several, e.g. ``finetune`` after ``pretrain``); its ``n`` is the number of curve points with a training loss, not
a count of items, and it is absent when the curve has fewer than two such points (baselines). A model that stops
learning has a ratio near 1.

Bands: measured over at least three seeds (``REFERENCE_SEEDS``, each a whole ci run with its own seed). A band is
mean ± max(3σ, floor), σ the sample standard deviation over the seeds; floor = one item (100/n points) for a
percentage over n items, max(2 % of |mean|, 1e-3) for any other metric. A value is inside when
lo − 1e-6 ≤ value ≤ hi + 1e-6. The check runs seed 0 (``REGRESSION_SEED``).

Band rules (:func:`band_problems`, enforced on the committed file by the fast test
``test_committed_bands_obey_the_rules``). The baseline values of a key are the band means of ``chance_tiny`` and of
``majority_tiny`` for that key (each is a baseline of its own, both are checked), and 1.0 (the *no-learning* value)
for ``training/loss_ratio``. A band of a learned model (any model but ``chance_tiny``, ``majority_tiny`` and
``pattern_nn_tiny``) *separates* from a baseline value b when |mean − b| ≥ 3·se, with se = the larger of the
band's seed σ and, for a percentage over n items, 100·sqrt(q(1 − q)/n) (q = b/100 clipped to
[1/(2n), 1 − 1/(2n)]: the binomial error of a model that scores b on n items); for any other metric se = the
seed σ floored as above. The seed σ counts because a mean that three seeds scatter widely around is not told
apart from b by n alone (measured: alphadiffract_tiny's 6-item retrieval top-1 over seeds 0–2).
  1. A band that separates from a baseline value must not contain it: a band so wide that the baseline's value
     passes the check cannot tell the model from that baseline although the ci run could.
  2. Every learned model needs at least one band that *tells it from a model that does not learn*: a band that
     separates from every baseline value of its key (chance's and majority's both, where both exist: a classifier
     that collapses to the majority class must fail too), with the mean on the better side of each (by the
     metric's direction; ``training/loss_ratio`` is better below 1). Separation on the worse side does not count:
     an untrained network is often worse than chance too (e.g. a lattice MAE far above the mean predictor's), so
     a band far on the worse side does not catch a model that stopped learning.
A band in the old list format (``[lo, hi]`` without mean, σ, n and seeds) is rejected: re-run the update script.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REGRESSION_DATA = "amcsd"
REGRESSION_PRESET = "ci"
REGRESSION_SEED = 0
REFERENCE_SEEDS: tuple[int, ...] = (0, 1, 2)
MIN_SEEDS = 3
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
LOSS_RATIO = "training/loss_ratio"
#: Models whose bands give the baseline values of the band rules, and the models that are not expected to learn.
BASELINE_MODELS: tuple[str, ...] = ("chance_tiny", "majority_tiny")
NOT_LEARNED: frozenset[str] = frozenset({*BASELINE_MODELS, "pattern_nn_tiny"})
NO_LEARNING_RATIO = 1.0
SLACK = 1e-6
OLD_FORMAT = (
    "band in the old [lo, hi] list format: re-run scripts/update_reference_bands.py (bands from >= 3 seeds)"
)


def regression_models() -> list[str]:
    """The tiny twin of every registered method (``configs/methods/<name>_tiny.yaml``)."""
    from pxrdbench.methods.registry import list_methods

    names = set(list_methods())
    return [n for n in sorted(names) if n.endswith("_tiny") and n.removesuffix("_tiny") in names]


def run_ci(model: str, workdir: Path, **overrides: Any) -> dict[str, Any]:
    """Train + evaluate ``model`` with the ci preset; return the results dict (files under ``workdir``).
    ``overrides`` replace :class:`~pxrdbench.run.bench.BenchRequest` fields (``seed``, ``batch_size``, ...)."""
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


def final_stage_curve(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The ``training.curve`` points of the run's last stage (the stage of the last point), in order."""
    training = result.get("training")
    curve = training.get("curve") if isinstance(training, Mapping) else None
    points = [p for p in curve or [] if isinstance(p, Mapping)]
    if not points:
        return []
    last = str(points[-1].get("stage", "fit"))
    return [dict(p) for p in points if str(p.get("stage", "fit")) == last]


def loss_ratio(result: Mapping[str, Any]) -> tuple[float, int] | None:
    """(last / first ``train_loss`` of the last stage's curve, number of points with a train loss), or None
    when there are fewer than two such points or the first loss is not positive."""
    losses = [
        float(p["train_loss"])
        for p in final_stage_curve(result)
        if isinstance(p.get("train_loss"), int | float) and math.isfinite(p["train_loss"])
    ]
    if len(losses) < 2 or losses[0] <= 0:
        return None
    return losses[-1] / losses[0], len(losses)


def final_train_loss(result: Mapping[str, Any]) -> float | None:
    """The last stage's last ``train_loss`` (None without one)."""
    losses = [
        p["train_loss"] for p in final_stage_curve(result) if isinstance(p.get("train_loss"), int | float)
    ]
    return float(losses[-1]) if losses else None


def tracked_values(result: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{"task/metric": {"value", "n", "percent"}} of the tracked metrics present in a results dict, with
    ``training/loss_ratio`` (n = curve points, not a percentage) when the run has a learning curve."""
    from pxrdbench.tasks.specs import metric_spec

    out: dict[str, dict[str, Any]] = {}
    for task, key in TRACKED:
        entry = result["metrics"].get(task, {}).get(key)
        if entry is None:
            continue
        unit = metric_spec(key.split("/")[-1]).unit
        out[f"{task}/{key}"] = {"value": entry["value"], "n": entry["n"], "percent": unit == "%"}
    ratio = loss_ratio(result)
    if ratio is not None:
        out[LOSS_RATIO] = {"value": ratio[0], "n": ratio[1], "percent": False}
    return out


def band_floor(mean: float, n: int, percent: bool) -> float:
    """The least half-width of a band: one item (100/n points) for a percentage, else max(2 % |mean|, 1e-3)."""
    return 100.0 / max(n, 1) if percent else max(0.02 * abs(mean), 1e-3)


def make_bands(per_seed: Mapping[int, Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Bands of one model from the tracked values of several seeds ({seed: tracked_values(...)}, >= 3 seeds):
    mean ± max(3σ, floor) per key (see the module docstring). A key present in some seeds only is an error."""
    seeds = sorted(per_seed)
    if len(seeds) < MIN_SEEDS:
        raise ValueError(f"bands need at least {MIN_SEEDS} seeds, got {len(seeds)} ({seeds})")
    keys = sorted({k for values in per_seed.values() for k in values})
    bands: dict[str, dict[str, Any]] = {}
    for key in keys:
        lacking = [s for s in seeds if key not in per_seed[s]]
        if lacking:
            raise ValueError(f"{key}: present in some seeds but missing in seeds {lacking}")
        entries = [per_seed[s][key] for s in seeds]
        values = [float(e["value"]) for e in entries]
        n = min(int(e["n"]) for e in entries)
        percent = bool(entries[0]["percent"])
        mean = statistics.fmean(values)
        std = statistics.stdev(values)
        half = max(3.0 * std, band_floor(mean, n, percent))
        bands[key] = {
            "band": [mean - half, mean + half],
            "mean": mean,
            "std": std,
            "n": n,
            "seeds": seeds,
            "percent": percent,
        }
    return bands


def band_entry(key: str, entry: Any) -> dict[str, Any]:
    """One key's band in the current format; ValueError (telling to re-run the update script) otherwise."""
    if isinstance(entry, list | tuple):
        raise ValueError(f"{key}: {OLD_FORMAT}")
    needed = {"band", "mean", "std", "n", "seeds", "percent"}
    if not isinstance(entry, Mapping) or not needed <= entry.keys():
        raise ValueError(
            f"{key}: malformed band {entry!r} (needs {sorted(needed)}); re-run the update script"
        )
    return dict(entry)


def not_evaluated(result: Mapping[str, Any]) -> set[str]:
    """Tasks the run's notes say were not evaluated because their data is not on this machine (experimental
    sets); their banded metrics are then absent for a stated reason, not lost."""
    notes = str(result.get("notes", ""))
    return {task for task, _ in TRACKED if f"{task} not evaluated:" in notes}


def check_bands(
    values: Mapping[str, Mapping[str, Any]], bands: Mapping[str, Any], skipped: set[str] | None = None
) -> list[str]:
    """Human-readable violations: values outside their band, and banded metrics that disappeared (except those
    of the ``skipped`` tasks, see :func:`not_evaluated`). Old-format bands raise ValueError."""
    problems = []
    for key, raw in sorted(bands.items()):
        lo, hi = band_entry(key, raw)["band"]
        if key not in values and key.split("/", 1)[0] in (skipped or set()):
            continue
        if key not in values:
            problems.append(f"{key}: missing from the results (band [{lo:.4g}, {hi:.4g}])")
        elif not lo - SLACK <= values[key]["value"] <= hi + SLACK:
            problems.append(f"{key}: {values[key]['value']:.6g} outside [{lo:.6g}, {hi:.6g}]")
    return problems


def _direction(key: str) -> str | None:
    if key == LOSS_RATIO:
        return "lower"
    from pxrdbench.tasks.specs import metric_spec

    try:
        return metric_spec(key.split("/")[-1]).direction
    except Exception:  # an unknown metric name: no direction, so its band never counts for rule 2
        return None


def standard_error(entry: Mapping[str, Any], baseline: float) -> float:
    """se of the separation test (module docstring): for a percentage the larger of the binomial error at the
    baseline value and the seed σ, else the band's seed σ floored."""
    n = max(int(entry["n"]), 1)
    if entry["percent"]:
        q = min(max(baseline / 100.0, 1.0 / (2 * n)), 1.0 - 1.0 / (2 * n))
        return max(100.0 * math.sqrt(q * (1.0 - q) / n), float(entry["std"]))
    return max(float(entry["std"]), band_floor(float(entry["mean"]), n, False))


def baseline_values(bands_file: Mapping[str, Any], key: str) -> list[tuple[str, float]]:
    """(name, value) of the baselines of ``key``: ``no-learning`` 1.0 for the loss ratio, else the band means
    of :data:`BASELINE_MODELS` that have the key."""
    if key == LOSS_RATIO:
        return [("no-learning", NO_LEARNING_RATIO)]
    out = []
    for model in BASELINE_MODELS:
        entry = bands_file.get(model, {}).get(key)
        if entry is not None:
            out.append((model.removesuffix("_tiny"), float(band_entry(f"{model} {key}", entry)["mean"])))
    return out


def band_problems(bands_file: Mapping[str, Any]) -> list[str]:
    """Violations of the band rules (module docstring) in a whole bands file {model: {key: band}}."""
    problems = [
        f"{model}: missing from the bands file; the band rules need its values"
        for model in BASELINE_MODELS
        if model not in bands_file
    ]
    for model in sorted(bands_file):
        for key, entry in sorted(bands_file[model].items()):
            try:
                band_entry(key, entry)
            except ValueError as err:
                problems.append(f"{model} {err}")  # one per model is enough to say what to do
                break
    if problems:
        return problems
    for model in sorted(set(bands_file) - NOT_LEARNED):
        telling = 0
        for key, entry in sorted(bands_file[model].items()):
            lo, hi = entry["band"]
            mean, n = float(entry["mean"]), int(entry["n"])
            direction = _direction(key)
            refs = baseline_values(bands_file, key)
            tells = bool(refs)
            for name, b in refs:
                se = standard_error(entry, b)
                separates = abs(mean - b) >= 3.0 * se
                if separates and lo <= b <= hi:
                    problems.append(
                        f"{model} {key}: band [{lo:.4g}, {hi:.4g}] contains {name} value {b:.4g} although n={n} "
                        f"separates them (|mean−b| = {abs(mean - b):.4g} ≥ 3·se = {3.0 * se:.4g})"
                    )
                better = (
                    (mean < b) if direction == "lower" else (mean > b) if direction == "higher" else False
                )
                tells = tells and separates and better and not lo <= b <= hi
            telling += tells
        if telling == 0:
            problems.append(
                f"{model}: no band separates it from chance/majority — the ci run cannot tell a model "
                "that does not learn"
            )
    return problems


def load_bands(path: Path = BANDS_FILE) -> dict[str, dict[str, Any]]:
    return json.loads(path.read_text()) if path.is_file() else {}


def save_bands(bands: Mapping[str, Mapping[str, Any]], path: Path = BANDS_FILE) -> None:
    path.write_text(json.dumps(bands, indent=2, sort_keys=True) + "\n")
