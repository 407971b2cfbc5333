"""Kolmogorov–Arnold Network (KAN) layers with cubic B-spline edge functions (XCCP's projection head).

A KAN layer maps x ∈ R^in to y ∈ R^out with a learnable univariate function on every edge:

    y_o = Σ_i [ w^base_{o,i} · SiLU(x_i) + Σ_k w^spline_{o,i,k} · B_k(x_i) ]        (no bias)

B_k are the B-splines of order p (degree p) on a uniform knot vector: the range [lo, hi] is cut into G
intervals of width h = (hi − lo)/G and extended by p knots on each side, t_j = lo + (j − p)·h, j = 0..G+2p,
giving G + p bases per input (8 for G = 5, p = 3). Bases come from the Cox–de Boor recursion

    B⁰_j(x) = 1 if t_j ≤ x < t_{j+1} else 0
    Bᵏ_j(x) = (x − t_j)/(t_{j+k} − t_j) · Bᵏ⁻¹_j(x) + (t_{j+k+1} − x)/(t_{j+k+1} − t_{j+1}) · Bᵏ⁻¹_{j+1}(x),

they sum to 1 on [lo, hi] and vanish outside [t_0, t_{G+2p}] = [lo − p·h, hi + p·h] ([−2.2, 2.2] for the
defaults), so inputs must be normalised: :class:`KAN` puts a LayerNorm before every layer (skipped for a
width-1 input, where LayerNorm would be identically constant). Evaluation is memory-light: bases
[B, in, G+p] are flattened and multiplied once with the spline weight [(in·(G+p)), out]; no
[B, in, out, G+p] tensor is formed.
The grid is fixed (no adaptive grid updates; XCCP's grid size and widths are not public).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pxrdbench.errors import ConfigError


def uniform_knots(grid_size: int, spline_order: int, grid_range: tuple[float, float]) -> Tensor:
    """Knot vector t_j = lo + (j − p)·h, j = 0..G+2p, with h = (hi − lo)/G (float32, length G + 2p + 1)."""
    lo, hi = float(grid_range[0]), float(grid_range[1])
    if grid_size < 1 or spline_order < 0 or not hi > lo:
        raise ConfigError(
            f"KAN grid: need grid_size ≥ 1, spline_order ≥ 0 and lo < hi, got grid_size={grid_size}, "
            f"spline_order={spline_order}, grid_range={grid_range}."
        )
    h = (hi - lo) / grid_size
    steps = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)
    return (lo + steps * h).to(torch.float32)


def bspline_bases(x: Tensor, knots: Tensor, spline_order: int) -> Tensor:
    """B-spline bases of order ``spline_order`` at every entry of x: [..., F] → [..., F, len(knots) − 1 − p].

    Cox–de Boor recursion, vectorised over all leading dimensions and features; uniform knots only appear in
    differences, so any strictly increasing knot vector works.
    """
    t = knots.to(dtype=x.dtype, device=x.device)
    xe = x.unsqueeze(-1)
    bases = ((xe >= t[:-1]) & (xe < t[1:])).to(x.dtype)
    for k in range(1, spline_order + 1):
        left = (xe - t[: -(k + 1)]) / (t[k:-1] - t[: -(k + 1)]) * bases[..., :-1]
        right = (t[k + 1 :] - xe) / (t[k + 1 :] - t[1:-k]) * bases[..., 1:]
        bases = left + right
    return bases


class KANLinear(nn.Module):
    """One KAN layer: y = SiLU(x)·W_baseᵀ + vec(B(x))·W_spline (see the module docstring), no bias.

    Args:
        in_features, out_features: layer sizes.
        grid_size: G, number of grid intervals on ``grid_range``.
        spline_order: p (3 = cubic).
        grid_range: (lo, hi) where the bases sum to one.
        base_activation: the residual branch nonlinearity (SiLU).
        spline_init_std: the spline weights start as N(0, (spline_init_std / sqrt(in_features))²), a small
            perturbation of the base branch (project choice).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base_activation: type[nn.Module] = nn.SiLU,
        spline_init_std: float = 0.1,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ConfigError(f"KANLinear: sizes must be ≥ 1, got in={in_features}, out={out_features}.")
        self.in_features, self.out_features = in_features, out_features
        self.grid_size, self.spline_order = grid_size, spline_order
        self.register_buffer("knots", uniform_knots(grid_size, spline_order, grid_range), persistent=True)
        self.n_bases = grid_size + spline_order
        self.base_activation = base_activation()
        self.base_weight = nn.Parameter(torch.empty(out_features, in_features))
        self.spline_weight = nn.Parameter(torch.empty(in_features * self.n_bases, out_features))
        nn.init.kaiming_uniform_(self.base_weight, a=math.sqrt(5))  # as nn.Linear
        nn.init.normal_(self.spline_weight, std=spline_init_std / math.sqrt(in_features))

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., in_features] → [..., out_features]."""
        if x.shape[-1] != self.in_features:
            raise ConfigError(f"KANLinear: expected last dimension {self.in_features}, got {tuple(x.shape)}.")
        lead = x.shape[:-1]
        flat = x.reshape(-1, self.in_features)
        base = self.base_activation(flat) @ self.base_weight.t()
        bases = bspline_bases(flat, self.knots, self.spline_order).reshape(flat.shape[0], -1)
        return (base + bases @ self.spline_weight).reshape(*lead, self.out_features)

    def extra_repr(self) -> str:
        """Layer sizes and grid for printing."""
        sizes = f"in={self.in_features}, out={self.out_features}"
        return f"{sizes}, grid={self.grid_size}, order={self.spline_order}"


class KAN(nn.Module):
    """A stack of KAN layers, widths = [in, hidden..., out]; a LayerNorm before each when ``norm="layer"``.

    The LayerNorm centres and scales each layer's input so that it lies mostly inside the spline grid
    (|x| ≲ 2 where the splines are nonzero). It is skipped for a width-1 input (LayerNorm over one feature
    always returns its bias). ``output_dim`` is ``widths[-1]``.
    """

    def __init__(
        self,
        widths: Sequence[int],
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        norm: str = "layer",
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ConfigError(f"KAN: widths must list ≥ 2 positive sizes [in, ..., out], got {widths}.")
        if norm not in ("layer", "none"):
            raise ConfigError(f"KAN: norm must be 'layer' or 'none', got {norm!r}.")
        self.widths = widths
        self.output_dim = widths[-1]
        layers: list[nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
            if norm == "layer" and w_in > 1:
                layers.append(nn.LayerNorm(w_in))
            layers.append(KANLinear(w_in, w_out, grid_size, spline_order, grid_range))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """x: [..., widths[0]] → [..., widths[-1]]."""
        return self.layers(x)


class KANHead(KAN):
    """A KAN projection head ``in_dim → hidden… → out_dim`` (``in_dim`` first, so a config can give the rest
    and the method supply the encoder's feature size)."""

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (128,),
        out_dim: int = 64,
        grid_size: int = 5,
        spline_order: int = 3,
        norm: str = "layer",
    ) -> None:
        super().__init__(
            [in_dim, *hidden, out_dim], grid_size=grid_size, spline_order=spline_order, norm=norm
        )


def kan_parameter_count(
    widths: Sequence[int], grid_size: int = 5, spline_order: int = 3, norm: str = "layer"
) -> int:
    """Trainable parameters of ``KAN(widths, ...)``: Σ in·out·(1 + G + p) + 2·in per LayerNorm."""
    total = 0
    for w_in, w_out in zip(widths[:-1], widths[1:], strict=True):
        total += w_in * w_out * (1 + grid_size + spline_order)
        if norm == "layer" and w_in > 1:
            total += 2 * w_in
    return total
