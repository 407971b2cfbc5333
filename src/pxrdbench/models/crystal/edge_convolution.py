"""Channel-wise equivariant edge convolution with per-edge weights, summed at each centre atom (MACE's A-basis).

For node features h (C channels of irreps_in), edge harmonics Y_e and per-edge, per-path, per-channel weights
w_{e,p,c} (from the radial MLP), the message of path p = (irrep a of h) ⊗ (degree l of Y) → irrep L is

    m_{e,c,p,M} = w_{e,p,c} · Σ_{μ,ν} C^p_{μ ν M} h_{src(e),c,μ} Y_{e,ν}

and the output is Σ_{e: target(e) = i} m_e. This is exactly e3nn's ``o3.TensorProduct`` with "uvu" instructions
and ``shared_weights=False`` followed by a scatter-sum; the coefficients C (Clebsch–Gordan times e3nn's
component and path normalisation) are read off a one-channel e3nn TensorProduct at construction, so the two
agree to rounding (tests/models/test_ace.py). Only the evaluation order differs, for speed on CPU:

    K_{e,M,μ} = Σ_ν C_{μ ν M} Y_{e,ν}        one [E, S] × [S, O·I] matrix product (no channels),
    m_{e,M,c} = Σ_μ K_{e,M,μ} h_{src(e),μ,c}   a batched [O, I] × [I, C] product per edge,

instead of materialising every (μ, ν) pair per channel. Measured (benchmarks/ace_encoder.py, README there): on one
thread the layer-2 convolution took 2.2 s against e3nn's 5.2 s; on two quiet cores the whole encoder is on par
with the e3nn-kernel build (2.54 vs 2.61 s per batch of 32 AMCSD structures) — not the speed-up hoped for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from e3nn import o3
from torch import Tensor, nn

from pxrdbench.errors import ConfigError


def uvu_paths(irreps_in: o3.Irreps, irreps_sh: o3.Irreps, keep: Sequence[o3.Irrep]) -> tuple[o3.Irreps, list]:
    """Output irreps and e3nn instructions of the channel-wise ("uvu") product irreps_in ⊗ irreps_sh → ``keep``.

    Every (input irrep, harmonic) pair gives one path per allowed output irrep; each path keeps the input's
    channels. The output irreps are in path order (not sorted), as e3nn instructions index them.
    """
    out, instructions = [], []
    for i, (mul, ir_in) in enumerate(o3.Irreps(irreps_in)):
        for j, (_, ir_sh) in enumerate(o3.Irreps(irreps_sh)):
            for ir_out in ir_in * ir_sh:
                if ir_out in keep:
                    instructions.append((i, j, len(out), "uvu", True))
                    out.append((mul, ir_out))
    return o3.Irreps(out), instructions


def _single_channel_coefficients(
    irreps_in: o3.Irreps, irreps_sh: o3.Irreps, keep: Sequence[o3.Irrep]
) -> Tensor:
    """C [I, S, O]: the bilinear map of a one-channel e3nn uvu TensorProduct with all path weights 1."""
    one = o3.Irreps([(1, ir) for _, ir in irreps_in])
    irreps_mid, instructions = uvu_paths(one, irreps_sh, keep)
    tp = o3.TensorProduct(
        one, irreps_sh, irreps_mid, instructions, shared_weights=False, internal_weights=False
    )
    dim_i, dim_s = one.dim, irreps_sh.dim
    x1 = torch.eye(dim_i).repeat_interleave(dim_s, dim=0)  # pair (μ, ν) → row μ·S + ν
    x2 = torch.eye(dim_s).repeat(dim_i, 1)
    with torch.no_grad():
        out = tp(x1, x2, torch.ones(dim_i * dim_s, tp.weight_numel))
    return out.reshape(dim_i, dim_s, irreps_mid.dim)


class ChannelwiseConvolution(nn.Module):
    """h [N, irreps_in], Y [E, irreps_sh], weights [E, weight_numel], edge_index [2, E] → [N, irreps_out].

    ``irreps_in`` must be C x ir_1 + C x ir_2 + … (one multiplicity C); ``irreps_out`` is the path-ordered
    output of :func:`uvu_paths` (C channels per path, e3nn layout); ``weight_numel`` = paths × C, laid out
    path-major as e3nn's per-edge TensorProduct weights. ``edge_index`` rows are (source j, target i).
    """

    def __init__(
        self, irreps_in: str | o3.Irreps, irreps_sh: str | o3.Irreps, keep: Sequence[o3.Irrep]
    ) -> None:
        super().__init__()
        self.irreps_in, self.irreps_sh = o3.Irreps(irreps_in), o3.Irreps(irreps_sh)
        muls = {mul for mul, _ in self.irreps_in}
        if len(muls) != 1:
            raise ConfigError(
                f"ChannelwiseConvolution: irreps_in {self.irreps_in} must share one multiplicity"
            )
        self.channels = muls.pop()
        self.irreps_out, instructions = uvu_paths(self.irreps_in, self.irreps_sh, keep)
        self.path_dims = [ir.dim for _, ir in self.irreps_out]
        self.weight_numel = len(instructions) * self.channels
        coefficients = _single_channel_coefficients(self.irreps_in, self.irreps_sh, keep)  # [I, S, O]
        self.register_buffer("coefficients", coefficients.permute(1, 2, 0).contiguous(), persistent=False)
        self.register_buffer(
            "component_path",
            torch.repeat_interleave(torch.arange(len(self.path_dims)), torch.tensor(self.path_dims)),
            persistent=False,
        )

    def forward(self, h: Tensor, sh: Tensor, weights: Tensor, edge_index: Tensor) -> Tensor:
        n_nodes, n_edges, channels = h.shape[0], sh.shape[0], self.channels
        blocks = h.split([mul * ir.dim for mul, ir in self.irreps_in], dim=-1)
        h_t = torch.cat([b.reshape(n_nodes, channels, -1) for b in blocks], dim=-1).transpose(
            1, 2
        )  # [N, I, C]
        n_in, n_out = h_t.shape[1], len(self.component_path)
        kernel = (sh @ self.coefficients.reshape(sh.shape[1], -1).to(sh.dtype)).reshape(n_edges, n_out, n_in)
        messages = torch.bmm(kernel, h_t[edge_index[0]])  # [E, O, C]
        messages = messages * weights.reshape(n_edges, -1, channels)[:, self.component_path, :]
        summed = torch.zeros(n_nodes, n_out, channels, dtype=messages.dtype, device=messages.device)
        summed.index_add_(0, edge_index[1], messages)
        out = [block.transpose(1, 2).reshape(n_nodes, -1) for block in summed.split(self.path_dims, dim=1)]
        return torch.cat(out, dim=-1)

    def extra_repr(self) -> str:
        return f"{self.irreps_in} x {self.irreps_sh} -> {self.irreps_out.simplify()}, weights={self.weight_numel}"
