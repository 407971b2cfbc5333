"""Re-measure the CI regression runs and rewrite tests/regression/reference_bands.json.

    .venv/bin/python scripts/update_reference_bands.py [MODEL ...]

Run it only when a change of results is intended; the diff of the bands file shows the change in review.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pxrdbench.report.regression import (
    load_bands,
    make_bands,
    regression_models,
    run_ci,
    save_bands,
    tracked_values,
)


def main(argv: list[str]) -> int:
    models = argv or regression_models()
    bands = load_bands()
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            values = tracked_values(run_ci(model, Path(tmp)))
            bands[model] = make_bands(values)
            print(model, {k: round(v["value"], 4) for k, v in values.items()})
    save_bands(bands)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
