"""An MLP projection head whose parameter count matches a KAN head (the DEN-MLP ablation of XCCP).

XCCP compares a KAN projection head with "a conventional MLP" under the same backbone; the MLP's size is not
public. For a fair ablation the project sizes the MLP so that both heads have (almost) the same number of
trainable parameters: LayerNorm(in) → Linear(in, h) → ReLU → Linear(h, out), with

    P_mlp(h) = 2·in·[norm] + in·h + h + h·out + out,

and :func:`matched_hidden_width` picks the integer h whose P_mlp(h) is closest to the KAN's count. The
LayerNorm mirrors the one :class:`~pxrdbench.models.heads.kan.KAN` applies before each layer, so the two heads
differ only in the function class.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pxrdbench.errors import ConfigError
from pxrdbench.models.heads.kan import kan_parameter_count
from pxrdbench.models.xrd.resnet1d import make_activation


def mlp_parameter_count(in_dim: int, hidden: int, out_dim: int, input_norm: bool = True) -> int:
    """Trainable parameters of ``MLPProjection(in_dim, hidden, out_dim, input_norm)``."""
    return (2 * in_dim if input_norm else 0) + in_dim * hidden + hidden + hidden * out_dim + out_dim


def matched_hidden_width(in_dim: int, out_dim: int, kan_params: int, input_norm: bool = True) -> int:
    """Hidden width h ≥ 1 minimising |P_mlp(h) − kan_params| (P_mlp is linear in h: round the exact root)."""
    if in_dim < 1 or out_dim < 1 or kan_params < 1:
        raise ConfigError(
            f"matched_hidden_width: in_dim={in_dim}, out_dim={out_dim}, kan_params={kan_params} must be ≥ 1."
        )
    fixed = (2 * in_dim if input_norm else 0) + out_dim
    per_unit = in_dim + 1 + out_dim
    return max(1, round((kan_params - fixed) / per_unit))


class MLPProjection(nn.Module):
    """Two-layer MLP head: [LayerNorm] → Linear(in, hidden) → activation → Linear(hidden, out).

    Args:
        in_dim: input feature size (the concatenated branch features).
        hidden: hidden width (use :func:`matched_hidden_width` to match a KAN head).
        out_dim: embedding size (64 in XCCP).
        activation: ``relu`` (default), ``gelu`` or ``silu``.
        input_norm: apply LayerNorm(in_dim) first (default True, mirroring the KAN head).
    """

    def __init__(
        self, in_dim: int, hidden: int, out_dim: int, activation: str = "relu", input_norm: bool = True
    ) -> None:
        super().__init__()
        if min(in_dim, hidden, out_dim) < 1:
            raise ConfigError(
                f"MLPProjection: sizes must be ≥ 1, got in={in_dim}, hidden={hidden}, out={out_dim}."
            )
        self.in_dim, self.hidden, self.output_dim = in_dim, hidden, out_dim
        self.net = nn.Sequential(
            nn.LayerNorm(in_dim) if input_norm else nn.Identity(),
            nn.Linear(in_dim, hidden),
            make_activation(activation),
            nn.Linear(hidden, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_dim] → [..., out_dim]."""
        return self.net(x)


def matched_mlp(in_dim: int, out_dim: int, kan_params: int, activation: str = "relu") -> MLPProjection:
    """An :class:`MLPProjection` with LayerNorm whose parameter count is closest to ``kan_params``."""
    hidden = matched_hidden_width(in_dim, out_dim, kan_params, input_norm=True)
    return MLPProjection(in_dim, hidden, out_dim, activation=activation, input_norm=True)


class MatchedMLPHead(MLPProjection):
    """The MLP head of XCCP's DEN-MLP ablation: an :class:`MLPProjection` whose hidden width makes its
    parameter count closest to that of ``KANHead(in_dim, kan_hidden, out_dim, grid_size, spline_order)``."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 64,
        kan_hidden: Sequence[int] = (128,),
        grid_size: int = 5,
        spline_order: int = 3,
        activation: str = "relu",
    ) -> None:
        budget = kan_parameter_count([in_dim, *kan_hidden, out_dim], grid_size, spline_order)
        hidden = matched_hidden_width(in_dim, out_dim, budget, input_norm=True)
        super().__init__(in_dim, hidden, out_dim, activation=activation, input_norm=True)
