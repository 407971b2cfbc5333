"""Lattice-parameter regression metrics (MAE, MAPE, R²) on (a, b, c, α, β, γ).

Lengths a, b, c are in Å and angles α, β, γ in degrees; both arrays are (N, 6) in that column order
(Niggli-reduced cells in the benchmark). Rows whose true parameters contain NaN (unknown cell) are ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pxrdbench.errors import InputError
from pxrdbench.tasks.metrics.classification import as_numpy

LATTICE_PARAMETERS: tuple[str, ...] = ("a", "b", "c", "alpha", "beta", "gamma")
"""Column order of lattice arrays: three lengths (Å) then three angles (degrees)."""


def mean_absolute_error(true: np.ndarray, pred: np.ndarray) -> float:
    """MAE = mean |ŷ − y| in the units of the inputs."""
    return float(np.mean(np.abs(pred - true)))


def mean_absolute_percentage_error(true: np.ndarray, pred: np.ndarray) -> float:
    """MAPE = 100 · mean(|ŷ − y| / |y|) in percent; entries with y = 0 are skipped."""
    nonzero = true != 0
    return float(100.0 * np.mean(np.abs(pred[nonzero] - true[nonzero]) / np.abs(true[nonzero])))


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (dimensionless; NaN when y is constant)."""
    ss_res = float(np.sum((true - pred) ** 2))
    ss_tot = float(np.sum((true - true.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _lattice_pair(true: Any, pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = as_numpy(true).astype(np.float64)
    p = as_numpy(pred).astype(np.float64)
    for name, arr in (("true", t), ("pred", p)):
        if arr.ndim != 2 or arr.shape[1] != 6:
            raise InputError(name, f"expected lattice parameters of shape (N, 6), got {arr.shape}")
    if t.shape != p.shape:
        raise InputError("pred", f"has shape {p.shape} but true has {t.shape}")
    keep = np.all(np.isfinite(t), axis=1)
    t, p = t[keep], p[keep]
    if not np.all(np.isfinite(p)):
        raise InputError("pred", "contains NaN or infinite values for items with known lattices")
    if t.shape[0] == 0:
        raise InputError("true", "no item has a known lattice (all rows NaN or the array is empty)")
    return t, p


def lattice_abs_errors(true: Any, pred: Any) -> np.ndarray:
    """Per-item absolute errors |ŷ − y|, shape (N, 6) (rows with unknown truth dropped), for bootstrapping."""
    t, p = _lattice_pair(true, pred)
    return np.abs(p - t)


def lattice_metrics(true: Any, pred: Any) -> dict[str, float | int]:
    """MAE, MAPE and R² for lengths (a, b, c pooled, Å) and angles (α, β, γ pooled, °), and per-parameter MAE.

    Pooled means all three columns are flattened into one sample before the metric is taken (R² uses the
    pooled mean of the true values). Returns ``length_mae`` (Å), ``length_mape`` (%), ``length_r2``,
    ``angle_mae`` (°), ``angle_mape`` (%), ``angle_r2``, ``{a,b,c,alpha,beta,gamma}_mae`` and ``n``.
    """
    t, p = _lattice_pair(true, pred)
    out: dict[str, float | int] = {}
    for group, cols in (("length", slice(0, 3)), ("angle", slice(3, 6))):
        gt, gp = t[:, cols].ravel(), p[:, cols].ravel()
        out[f"{group}_mae"] = mean_absolute_error(gt, gp)
        out[f"{group}_mape"] = mean_absolute_percentage_error(gt, gp)
        out[f"{group}_r2"] = r2_score(gt, gp)
    for i, name in enumerate(LATTICE_PARAMETERS):
        out[f"{name}_mae"] = mean_absolute_error(t[:, i], p[:, i])
    out["n"] = int(t.shape[0])
    return out
