"""Lattice metrics: MAE, MAPE and R² on hand-computed cells."""

from __future__ import annotations

import numpy as np
import pytest

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.lattice import lattice_abs_errors, lattice_metrics

TRUE = np.array(
    [
        [4.0, 5.0, 10.0, 90.0, 90.0, 90.0],
        [3.0, 3.0, 3.0, 60.0, 60.0, 60.0],
        [5.0, 6.0, 7.0, 80.0, 100.0, 110.0],
    ]
)


def test_perfect_prediction() -> None:
    m = lattice_metrics(TRUE, TRUE.copy())
    assert m["length_mae"] == 0.0 and m["angle_mae"] == 0.0
    assert m["length_mape"] == 0.0 and m["angle_r2"] == 1.0 and m["length_r2"] == 1.0
    assert m["n"] == 3


def test_offsets_give_exact_errors() -> None:
    pred = TRUE.copy()
    pred[:, :3] += 1.0  # every length 1 Å too long
    pred[:, 5] -= 3.0  # gamma 3° too small
    m = lattice_metrics(TRUE, pred)
    lengths = TRUE[:, :3].ravel()
    assert m["length_mae"] == pytest.approx(1.0)
    assert m["length_mape"] == pytest.approx(100 * np.mean(1.0 / lengths))
    assert m["length_r2"] == pytest.approx(1 - 9.0 / np.sum((lengths - lengths.mean()) ** 2))
    assert m["angle_mae"] == pytest.approx(1.0)  # 3° on one of three angles
    assert m["gamma_mae"] == pytest.approx(3.0) and m["alpha_mae"] == 0.0 and m["a_mae"] == pytest.approx(1.0)
    assert lattice_abs_errors(TRUE, pred)[:, 5] == pytest.approx([3.0, 3.0, 3.0])


def test_unknown_rows_are_ignored_and_bad_shapes_rejected() -> None:
    true = np.vstack([TRUE, np.full((1, 6), np.nan)])
    pred = np.vstack([TRUE, np.zeros((1, 6))])
    assert lattice_metrics(true, pred)["n"] == 3
    with pytest.raises(InputError, match=r"\(N, 6\)"):
        lattice_metrics(TRUE[:, :5], TRUE[:, :5])
    with pytest.raises(InputError, match="NaN"):
        lattice_metrics(TRUE, np.full_like(TRUE, np.nan))
