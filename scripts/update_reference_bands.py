"""Re-measure the CI regression runs and rewrite tests/regression/reference_bands.json.

    .venv/bin/python scripts/update_reference_bands.py [MODEL ...] [--seeds 0 1 2]

Each model trains the ci preset once per seed (at least three); its bands are mean ± max(3σ, floor) over the
seeds (see pxrdbench.report.regression). Afterwards the whole file is checked against the band rules
(``band_problems``); the exit status is 1 when a rule is broken. Run it only when a change of results is
intended; the diff of the bands file shows the change in review.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from pxrdbench.report.regression import (
    MIN_SEEDS,
    REFERENCE_SEEDS,
    band_problems,
    load_bands,
    make_bands,
    regression_models,
    run_ci,
    save_bands,
    tracked_values,
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="tiny models to re-measure (default: all registered)")
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=list(REFERENCE_SEEDS),
        help=f"seeds of the ci runs (at least {MIN_SEEDS}; default: {' '.join(map(str, REFERENCE_SEEDS))})",
    )
    args = parser.parse_args(argv)
    if len(set(args.seeds)) < MIN_SEEDS:
        parser.error(f"--seeds: need at least {MIN_SEEDS} distinct seeds, got {args.seeds}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    models = args.models or regression_models()
    bands = load_bands()
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            per_seed = {}
            for seed in sorted(set(args.seeds)):
                result = run_ci(model, Path(tmp) / f"{model}-seed{seed}", seed=seed)
                if result.get("training", {}).get("truncated"):
                    raise SystemExit(
                        f"{model} seed {seed}: the ci preset's wall-clock safety stop ended training before its "
                        "budget (a paused or overloaded machine); bands must come from whole runs: re-run"
                    )
                values = tracked_values(result)
                per_seed[seed] = values
                print(model, f"seed {seed}", {k: round(v["value"], 4) for k, v in values.items()}, flush=True)
            bands[model] = make_bands(per_seed)
    save_bands(bands)
    problems = band_problems(bands)
    for problem in problems:
        print("band rule:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
