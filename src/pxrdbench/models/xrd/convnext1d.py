"""A 1D ConvNeXt feature extractor for powder patterns (AlphaDiffract's backbone, paper 004 §5.3.1).

Layout (defaults = the paper's Table 6 and the public model file, as summarised in METHOD_NOTES.md)::

    pattern [B, N]  ->  stem Conv1d(1 -> C, kernel 1)
                    ->  3 x [ ConvNeXtBlock1D(kernel k_i)  ->  AvgPool1d(5)  ->  AvgPool1d(3, stride 2) ]
                    ->  flatten  ->  feature [B, C * L_out]

With N = 8192, C = 80: 8192 -> 1638 -> 818 -> 163 -> 81 -> 16 -> 7, so the feature is 7 x 80 = 560-d, the
paper's number. ``output_dim`` is computed from the pooling arithmetic, never hard-coded.

Choices where the sources are silent (documented here and in the config):

- **Stem**: Table 6 lists block 1 as "1 -> 80 channels, kernel 100". A depthwise conv cannot change the
  channel count, so a kernel-1 Conv1d(1 -> 80) stem comes first. A kernel-1 stem followed by a per-channel
  depthwise conv of kernel 100 spans exactly the same functions as one Conv1d(1 -> 80, kernel 100) (each
  channel is an affine copy of the input, filtered by its own kernel), so the table's block 1 is reproduced
  with a residual path of 80 channels. ``stem_kernel`` can be raised.
- **Norm**: the public model file has no LayerNorm in the block; ``norm=False`` is the default, ``norm=True``
  inserts the standard ConvNeXt channel LayerNorm after the depthwise conv.
- **Drop path**: the same rate (0.3) in every block (the paper gives one rate, no depth schedule).
- **Stage pooling**: AvgPool1d(3, stride 2) after *every* block (also after the last one); this is what makes
  8192 -> 7 positions, i.e. the paper's 560-d feature.

Speed on the CPU (same parameters, same function): the blocks run channels-last ([B, L, C]), so the pointwise
convolutions are single matrix products (``F.linear``) and the depthwise convolution an FFT along L with no
transposes in between; the layer scale is folded into the projection (γ ⊙ (W₂h + b₂) = (γW₂)h + γb₂). Only the
final [B, C, L_out] feature is transposed back, so the flattening (channel-major) and the state dict are those of
the plain Conv1d layout.

This module never imports Lightning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.models.xrd.depthwise import DepthwiseConv1d


def pooled_length(length: int, kernel: int, stride: int | None = None) -> int:
    """Output length of ``AvgPool1d(kernel, stride)`` without padding: ⌊(L − k) / s⌋ + 1 (s defaults to k)."""
    stride = kernel if stride is None else stride
    if length < kernel:
        return 0
    return (length - kernel) // stride + 1


class DropPath(nn.Module):
    """Stochastic depth: zero the residual branch of whole samples with probability ``rate`` during training.

    Kept samples are scaled by 1 / (1 − rate) so the expectation is unchanged; identity in eval mode.
    """

    def __init__(self, rate: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ConfigError(f"drop_path rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def sample_scale(self, x: Tensor) -> Tensor | None:
        """Per-sample factors [B, 1, ...] (0 or 1 / (1 − rate)) for ``x``, or None when nothing is dropped."""
        if not self.training or self.rate == 0.0:
            return None
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return torch.empty(shape, device=x.device, dtype=x.dtype).bernoulli_(keep).div_(keep)

    def forward(self, x: Tensor) -> Tensor:
        """Apply per-sample drop to ``x`` [B, ...]."""
        scale = self.sample_scale(x)
        return x if scale is None else x * scale


class ChannelLayerNorm1d(nn.Module):
    """LayerNorm over the channel axis of a [B, C, L] tensor (ConvNeXt's 'channels_first' norm)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        """Normalise each position's channel vector."""
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ConvNeXtBlock1D(nn.Module):
    """One residual ConvNeXt block in 1D.

    y = x + DropPath(γ ⊙ W₂ · GELU(W₁ · [Norm](DWConv_k(x)))), with W₁: C → e·C and W₂: e·C → C pointwise
    convolutions (inverted bottleneck, e = ``expansion``), γ a learned per-channel layer scale initialised at
    ``layer_scale_init`` and DWConv_k a depthwise convolution with 'same' padding.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        expansion: int = 4,
        drop_path: float = 0.0,
        layer_scale_init: float = 1e-6,
        norm: bool = False,
    ) -> None:
        super().__init__()
        # 'same' padding (left (k−1)//2, right the rest), also for even kernels (100, 50); FFT on the CPU
        self.depthwise = DepthwiseConv1d(channels, kernel_size)
        self.norm: nn.Module = ChannelLayerNorm1d(channels) if norm else nn.Identity()
        self.expand = nn.Conv1d(channels, expansion * channels, kernel_size=1)
        self.activation = nn.GELU()
        self.project = nn.Conv1d(expansion * channels, channels, kernel_size=1)
        self.layer_scale = nn.Parameter(torch.full((channels, 1), float(layer_scale_init)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: Tensor) -> Tensor:
        """Map [B, C, L] to [B, C, L]."""
        return self.forward_channels_last(x.transpose(1, 2)).transpose(1, 2)

    def forward_channels_last(self, x: Tensor) -> Tensor:
        """Map [B, L, C] to [B, L, C] (the same function as :meth:`forward`, no transposes)."""
        h = self.depthwise(x, channels_last=True)
        if isinstance(self.norm, ChannelLayerNorm1d):
            h = self.norm.norm(h)
        h = self.activation(F.linear(h, self.expand.weight.squeeze(-1), self.expand.bias))
        gamma = self.layer_scale.squeeze(-1)
        bias = None if self.project.bias is None else self.project.bias * gamma
        branch = F.linear(h, self.project.weight.squeeze(-1) * gamma[:, None], bias)
        scale = self.drop_path.sample_scale(branch)
        return x + branch if scale is None else torch.addcmul(x, branch, scale)


class ConvNeXt1D(nn.Module):
    """1D ConvNeXt backbone: pattern [B, N] (or [B, C_in, N]) → flattened feature [B, ``output_dim``].

    Args:
        in_channels: input channels (1 for a single pattern).
        channels: width C of every block (80 in the paper).
        kernel_sizes: depthwise kernel of each block (100, 50, 25 in the paper); one block per entry.
        expansion: inverted-bottleneck factor (4).
        drop_path: stochastic-depth rate of every block (0.3).
        layer_scale_init: initial layer-scale value (1e-6, the ConvNeXt default).
        block_pool: AvgPool1d kernel (= stride) after each block (5).
        stage_pool: (kernel, stride) of the AvgPool1d that follows (3, 2).
        input_length: pattern length N the model is built for (8192); the flattened size depends on it.
        norm: insert a channel LayerNorm after each depthwise conv (off, as in the public model file).
        stem_kernel: kernel of the stem Conv1d(in_channels → C) (1; see the module docstring).
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: int = 80,
        kernel_sizes: Sequence[int] = (100, 50, 25),
        expansion: int = 4,
        drop_path: float = 0.3,
        layer_scale_init: float = 1e-6,
        block_pool: int = 5,
        stage_pool: Sequence[int] = (3, 2),
        input_length: int = 8192,
        norm: bool = False,
        stem_kernel: int = 1,
    ) -> None:
        super().__init__()
        if len(stage_pool) != 2:
            raise ConfigError(f"stage_pool must be (kernel, stride), got {tuple(stage_pool)}")
        self.in_channels = int(in_channels)
        self.channels = int(channels)
        self.input_length = int(input_length)
        if stem_kernel < 1 or stem_kernel % 2 == 0:
            raise ConfigError(f"stem_kernel must be a positive odd number, got {stem_kernel}")
        self.stem = nn.Conv1d(in_channels, channels, kernel_size=stem_kernel, padding=stem_kernel // 2)
        layers: list[nn.Module] = []
        for kernel in kernel_sizes:
            layers.append(
                ConvNeXtBlock1D(channels, int(kernel), expansion, drop_path, layer_scale_init, norm=norm)
            )
            layers.append(nn.AvgPool1d(block_pool))
            layers.append(nn.AvgPool1d(int(stage_pool[0]), stride=int(stage_pool[1])))
        self.stages = nn.Sequential(*layers)
        self.output_length = self._output_length(self.input_length, len(kernel_sizes), block_pool, stage_pool)
        if self.output_length < 1:
            raise ConfigError(
                f"ConvNeXt1D: input_length={input_length} is too short for {len(kernel_sizes)} blocks with "
                f"block_pool={block_pool} and stage_pool={tuple(stage_pool)} (no positions left)"
            )
        self.output_dim = self.channels * self.output_length

    @staticmethod
    def _output_length(length: int, n_blocks: int, block_pool: int, stage_pool: Sequence[int]) -> int:
        """Positions left after ``n_blocks`` × (AvgPool(block_pool), AvgPool(stage_pool)) on ``length``."""
        for _ in range(n_blocks):
            length = pooled_length(length, block_pool)
            length = pooled_length(length, int(stage_pool[0]), int(stage_pool[1]))
        return length

    def forward_features(self, patterns: Tensor) -> Tensor:
        """Map patterns [B, N] or [B, C_in, N] to the unflattened feature map [B, C, L_out]."""
        if patterns.ndim == 2:
            patterns = patterns.unsqueeze(1)
        if patterns.ndim != 3 or patterns.shape[1] != self.in_channels:
            raise PatternError(
                "patterns",
                f"expected shape [B, N] or [B, {self.in_channels}, N], got {tuple(patterns.shape)}",
            )
        if patterns.shape[-1] != self.input_length:
            raise PatternError(
                "patterns",
                f"length {patterns.shape[-1]} does not match the model's input_length {self.input_length}; "
                "render the view on the grid the model was built for",
            )
        if self.stem.kernel_size[0] == 1:  # channels-last stem: one matrix product
            x = F.linear(patterns.transpose(1, 2), self.stem.weight.squeeze(-1), self.stem.bias)
        else:
            x = self.stem(patterns).transpose(1, 2)
        for layer in self.stages:
            if isinstance(layer, ConvNeXtBlock1D):
                x = layer.forward_channels_last(x)
            else:  # AvgPool1d over L of [B, L, C]
                kernel, stride = layer.kernel_size[0], layer.stride[0]
                x = F.avg_pool2d(x.unsqueeze(1), (kernel, 1), (stride, 1)).squeeze(1)
        return x.transpose(1, 2)

    def forward(self, patterns: Tensor) -> Tensor:
        """Map patterns [B, N] to the flattened feature [B, ``output_dim``] (channel-major flattening)."""
        return self.forward_features(patterns).flatten(1)
