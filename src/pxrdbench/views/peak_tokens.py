"""Peak tokens for token models (XtalNet CPCP): each detected peak becomes (grid index, intensity).

The rule is XtalNet's (paper 003; facts from its public code, see METHOD_NOTES): normalise each pattern as
y' = (y − min y) / max y, find peaks with ``scipy.signal.find_peaks(y', height=h, prominence=p)`` (h = 0.01,
p = 0.02 in ``configs/views/xtalnet.yaml``), and make one token per peak: its integer index on the view's grid
(looked up in a learned position table, so every index must be < ``position_table``) and its y' value. We keep
the ``max_tokens`` strongest peaks (the reference has no cap; the batch reports how many the cap left out in
``peak_dropped``, which token methods log), list them by position, and pad to ``max_tokens`` with position 0,
intensity 0 and mask False, so every batch has the same token count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.signal import find_peaks
from torch import Tensor

from pxrdbench.errors import ConfigError, PatternError

RULE_KEYS: tuple[str, ...] = ("height", "prominence", "max_tokens", "position_table")
"""Fields of a view's ``peak_tokens`` rule."""


def check_rule(rule: dict[str, Any] | None) -> tuple[float, float, int, int]:
    """(height, prominence, max_tokens, position_table) of a rule; ConfigError for bad or missing fields."""
    if not rule:
        raise ConfigError("peak_tokens: the view has no peak-picking rule (peak_tokens is empty)")
    missing = [k for k in RULE_KEYS if k not in rule]
    unknown = sorted(set(rule) - set(RULE_KEYS))
    if missing or unknown:
        raise ConfigError(
            f"peak_tokens: missing fields {missing}, unknown fields {unknown}; need {list(RULE_KEYS)}"
        )
    height, prominence = float(rule["height"]), float(rule["prominence"])
    max_tokens, table = int(rule["max_tokens"]), int(rule["position_table"])
    if height < 0 or prominence < 0 or max_tokens < 1 or table < 1:
        raise ConfigError(
            "peak_tokens: need height >= 0, prominence >= 0, max_tokens >= 1, position_table >= 1; "
            f"got {rule}"
        )
    return height, prominence, max_tokens, table


def normalise_for_peaks(y: np.ndarray) -> np.ndarray:
    """XtalNet's normalisation y' = (y − min y) / max y (dimensionless); all zeros when max y <= 0."""
    top = float(y.max())
    if not top > 0:
        return np.zeros_like(y, dtype=np.float64)
    return (y.astype(np.float64) - float(y.min())) / top


def peaks_of_pattern(
    y: np.ndarray, height: float, prominence: float, max_tokens: int
) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices (ascending) and y' values of the ``max_tokens`` strongest peaks of one pattern."""
    index, values, _ = _peaks_and_count(y, height, prominence, max_tokens)
    return index, values


def _peaks_and_count(
    y: np.ndarray, height: float, prominence: float, max_tokens: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`peaks_of_pattern` plus the number of peaks found before the cap."""
    yn = normalise_for_peaks(y)
    index, _ = find_peaks(yn, height=height, prominence=prominence)
    found = len(index)
    if len(index) > max_tokens:
        strongest = np.argsort(-yn[index], kind="stable")[:max_tokens]
        index = np.sort(index[strongest])
    return index.astype(np.int64), yn[index].astype(np.float32), found


def pick_peak_tokens(
    patterns: Tensor, rule: dict[str, Any], *, dropped: list[int] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Peak tokens of a batch of patterns on one grid (``dropped``, when given, receives per pattern the number
    of peaks beyond ``max_tokens`` that the cap left out).

    Args:
        patterns: Float[B, N] patterns on the view's grid (any scale; masked points should be 0).
        rule: the view's ``peak_tokens`` mapping (height, prominence, max_tokens, position_table).

    Returns:
        positions Long[B, T] (grid indices, < position_table), intensities Float[B, T] (y' in [0, 1] for
        non-negative patterns) and mask Bool[B, T] (True for real peaks), T = max_tokens, on the input's
        device; padding has position 0, intensity 0, mask False.
    """
    height, prominence, max_tokens, table = check_rule(rule)
    if patterns.ndim != 2:
        raise PatternError("pick_peak_tokens", f"patterns must be (B, N), got shape {tuple(patterns.shape)}")
    b, n = patterns.shape
    if n > table:
        raise ConfigError(
            f"peak_tokens: the grid has {n} points but the position table only {table} entries; "
            "raise position_table or shorten the grid"
        )
    values = patterns.detach().to("cpu", torch.float64).numpy()
    if not np.isfinite(values).all():
        raise PatternError("pick_peak_tokens", "patterns contain NaN or inf")
    positions = np.zeros((b, max_tokens), dtype=np.int64)
    intensities = np.zeros((b, max_tokens), dtype=np.float32)
    mask = np.zeros((b, max_tokens), dtype=bool)
    for row in range(b):
        index, height_values, found = _peaks_and_count(values[row], height, prominence, max_tokens)
        k = len(index)
        if dropped is not None:
            dropped.append(found - k)
        positions[row, :k], intensities[row, :k], mask[row, :k] = index, height_values, True
    device = patterns.device
    return (
        torch.from_numpy(positions).to(device),
        torch.from_numpy(intensities).to(device),
        torch.from_numpy(mask).to(device),
    )


def add_peak_tokens(batch: dict[str, Any], rule: dict[str, Any]) -> dict[str, Any]:
    """A copy of a rendered batch plus the tokens of its ``pattern``: ``peak_positions``,
    ``peak_intensities``, ``peak_mask``, and ``peak_dropped`` Long[B] (peaks left out by the token cap)."""
    dropped: list[int] = []
    positions, intensities, mask = pick_peak_tokens(batch["pattern"], rule, dropped=dropped)
    return {
        **batch, "peak_positions": positions, "peak_intensities": intensities, "peak_mask": mask,
        "peak_dropped": torch.tensor(dropped, dtype=torch.long, device=positions.device),
    }  # fmt: skip


def add_view_tokens(view: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """The batch plus ``view``'s peak tokens of its ``pattern`` (ConfigError when the view has no rule)."""
    if not view.peak_tokens:
        raise ConfigError(f"view {view.name!r} has no peak-token rule, but the method reads tokens")
    return add_peak_tokens(batch, view.peak_tokens)
