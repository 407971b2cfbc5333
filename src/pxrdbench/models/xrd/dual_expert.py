"""The dual-expert XRD encoder of XCCP / DEN-KAN: a small-angle and a wide-angle 1D-ResNet branch.

XCCP splits the 0–80° (Cu Kα) pattern at 2θ = 10°: the small-angle (SA) part 0–10° carries large-d
reflections, the wide-angle (WA) part 10–80° the dense symmetry fingerprint. Both branches use the same
residual blocks and ReLU; the WA branch max-pools (kernel 3, stride 2) after each residual layer. Branch
features are concatenated (``output_dim`` = sum of the branch widths) and go to the projection head (KAN for
DEN-KAN, MLP for DEN-MLP).
WA-KAN uses the WA branch only (``wide_angle_only``), e.g. for experimental scans without SA coverage.

Choices where the paper is silent: the split is the first grid index whose 2θ is ≥ 10° (the 10° point
belongs to the WA part, matching "10° ≤ 2θ ≤ 80°"); an optional validity mask zeroes unmeasured points
before encoding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.models.xrd.resnet1d import ResNet1D

WIDE_ANGLE_POOL = (3, 2)
"""XCCP: max pooling with a 1×3 kernel and stride 2 after each residual layer of the WA branch."""


def split_index_for(grid_start: float, grid_step: float, n_points: int, split_two_theta: float = 10.0) -> int:
    """Index of the first point with 2θ ≥ ``split_two_theta`` on the grid 2θ_i = start + i·step (degrees).

    Returns 0 when the whole grid is at or above the split, ``n_points`` when it is entirely below.
    """
    if grid_step <= 0 or n_points < 1:
        raise ConfigError(
            f"grid: step must be > 0 and n_points ≥ 1, got step={grid_step}, n_points={n_points}."
        )
    raw = (split_two_theta - grid_start) / grid_step
    index = math.ceil(raw - 1e-9)  # tolerance: 10.0 computed as 9.99999999 still counts as the split point
    return int(min(max(index, 0), n_points))


class DualExpertEncoder(nn.Module):
    """SA + WA branches on one pattern split at ``split_index``; concatenated features [B, output_dim].

    Args:
        split_index: grid index of 2θ = 10° (the first WA point). In ``wide_angle_only`` mode the points
            before it are ignored (0 when the input pattern already starts at 10°).
        small_angle: the SA branch (unused and may be None in ``wide_angle_only`` mode).
        wide_angle: the WA branch (built with ``pool_after_stage=(3, 2)`` for XCCP).
        wide_angle_only: WA-KAN mode, only the WA branch is run.
        n_points: expected pattern length, checked when given.
    """

    def __init__(
        self,
        split_index: int,
        small_angle: ResNet1D | None,
        wide_angle: ResNet1D,
        wide_angle_only: bool = False,
        n_points: int | None = None,
    ) -> None:
        super().__init__()
        if split_index < 0 or (n_points is not None and split_index >= n_points):
            raise ConfigError(
                f"DualExpertEncoder: split_index={split_index} leaves no wide-angle points "
                f"(n_points={n_points})."
            )
        if not wide_angle_only and (small_angle is None or split_index == 0):
            raise ConfigError(
                "DualExpertEncoder: the dual-expert mode needs a small-angle branch and a grid that starts "
                f"below the split (split_index={split_index}); use wide_angle_only=True (WA-KAN) otherwise."
            )
        self.split_index = int(split_index)
        self.wide_angle_only = bool(wide_angle_only)
        self.n_points = n_points
        self.small_angle = None if wide_angle_only else small_angle
        self.wide_angle = wide_angle
        self.output_dim = wide_angle.output_dim + (
            0 if self.small_angle is None else self.small_angle.output_dim
        )

    def forward(self, pattern: Tensor, mask: Tensor | None = None) -> Tensor:
        """pattern: [B, N] (optionally mask: Bool[B, N], False points set to 0) → features [B, output_dim]."""
        if pattern.dim() != 2:
            raise PatternError("pattern", f"DualExpertEncoder expects [B, N], got {tuple(pattern.shape)}")
        n = pattern.shape[1]
        if (self.n_points is not None and n != self.n_points) or n <= self.split_index:
            raise PatternError(
                "pattern",
                f"length {n} does not match the encoder grid (n_points={self.n_points}, "
                f"split_index={self.split_index})",
            )
        if mask is not None:
            pattern = pattern * mask.to(pattern.dtype)
        wide = self.wide_angle(pattern[:, self.split_index :])
        if self.small_angle is None:
            return wide
        small = self.small_angle(pattern[:, : self.split_index])
        return torch.cat([small, wide], dim=1)  # SA features first


class XCCPEncoder(DualExpertEncoder):
    """XCCP's DEN (or WA-only) encoder built from sizes: two ResNet1D branches of the same architecture
    (``widths``, ``blocks``, ReLU); only the WA branch max-pools (3, 2) after each stage, as in XCCP.

    ``split_index`` (grid index of 2θ = 10°, see :func:`split_index_for`) and ``input_length`` come from the
    method's view (left None in a config, they are filled from it). Sizes are the project's choice (the paper
    does not publish them).
    """

    def __init__(
        self,
        split_index: int | None = None,
        input_length: int | None = None,
        wide_angle_only: bool = False,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2),
        kernel_size: int = 7,
        norm: str = "batch",
    ) -> None:
        if split_index is None:
            raise ConfigError("XCCPEncoder needs split_index (the grid index of 2θ = 10°); the view has none")

        def branch(pool: tuple[int, int] | None) -> ResNet1D:
            return ResNet1D(
                widths=widths,
                blocks_per_stage=blocks,
                kernel_size=kernel_size,
                pool_after_stage=pool,
                norm=norm,
            )

        small = None if wide_angle_only else branch(None)
        super().__init__(split_index, small, branch(WIDE_ANGLE_POOL), wide_angle_only, input_length)
