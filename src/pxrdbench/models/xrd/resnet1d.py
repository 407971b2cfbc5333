"""A configurable 1D residual network for diffraction patterns (the backbone of each DEN-KAN branch).

XCCP (npj Comput Mater 2026) states only that each branch "adopts a ResNet backbone with residual connections"
and ReLU, and that the wide-angle branch max-pools (kernel 3, stride 2) after each residual layer. Widths,
depths and kernel sizes are not public; the defaults here are the project's choice, a 1D ResNet-18 layout:

- stem: Conv1d(in_channels → widths[0], ``stem_kernel``, stride 2) → norm → activation;
- stage s (s = 0..S−1): ``blocks_per_stage[s]`` basic blocks of width ``widths[s]``; the first block of every
  stage after the first halves the length (stride ``downsample_stride``), as in ResNet;
- optional max pooling (``pool_after_stage`` = (kernel, stride), padding kernel // 2 so that short inputs
  never fail) after every stage;
- global average pooling over the remaining length → a feature of size ``widths[-1]`` (``output_dim``).

A basic block is conv → norm → act → conv → norm, plus the identity (or a 1×1 conv + norm projection when the
channel count or the stride changes), then the activation.

Layout: the network runs on [B, C, 1, L] tensors in the channels-last memory format (convolutions as 1 × K 2D
convolutions), where oneDNN's CPU kernels measured 1.5–2× faster (forward + backward) than on [B, C, L]; the
modules are ``nn.Conv1d`` / ``nn.BatchNorm1d`` / ``nn.MaxPool1d`` subclasses, so parameters, state dicts and
[B, C, L] inputs to a single block are as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, PatternError, did_you_mean

NORMS = ("batch", "group", "none")
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class LengthConv(nn.Conv1d):
    """``nn.Conv1d`` that also takes [B, C, 1, L] (run as a 1 × K 2D convolution, same parameters)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            return super().forward(x)
        weight = self.weight.unsqueeze(2)
        return F.conv2d(x, weight, self.bias, (1, self.stride[0]), (0, self.padding[0]), (1, self.dilation[0]),
                        self.groups)  # fmt: skip


class LengthBatchNorm(nn.BatchNorm1d):
    """``nn.BatchNorm1d`` that also takes [B, C, 1, L] (statistics over batch and length, as on [B, C, L])."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() not in (2, 3, 4):
            raise ValueError(f"expected a 2D, 3D or [B, C, 1, L] input, got {x.dim()}D")


class LengthMaxPool(nn.MaxPool1d):
    """``nn.MaxPool1d`` that also takes [B, C, 1, L]."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            return super().forward(x)
        k, s, p = (
            int(v if isinstance(v, int) else v[0]) for v in (self.kernel_size, self.stride, self.padding)
        )
        return F.max_pool2d(x, (1, k), (1, s), (0, p), ceil_mode=self.ceil_mode)


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 1D normalisation layer: ``batch`` (BatchNorm1d), ``group`` (GroupNorm, ≤ 8 groups) or ``none``."""
    if kind == "batch":
        return LengthBatchNorm(channels)
    if kind == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise did_you_mean(kind, NORMS, "norm")


def make_activation(kind: str) -> nn.Module:
    """An activation module by name (``relu``, ``gelu``, ``silu``)."""
    if kind not in ACTIVATIONS:
        raise did_you_mean(kind, tuple(ACTIVATIONS), "activation")
    return ACTIVATIONS[kind]()


class ResidualBlock1D(nn.Module):
    """Basic residual block: act(norm(conv(act(norm(conv(x))))) + shortcut(x))."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, norm: str, activation: str
    ) -> None:
        super().__init__()
        pad = kernel_size // 2
        bias = norm == "none"
        self.conv1 = LengthConv(in_channels, out_channels, kernel_size, stride=stride, padding=pad, bias=bias)
        self.norm1 = make_norm(norm, out_channels)
        self.act1 = make_activation(activation)
        self.conv2 = LengthConv(out_channels, out_channels, kernel_size, padding=pad, bias=bias)
        self.norm2 = make_norm(norm, out_channels)
        self.act_out = make_activation(activation)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                LengthConv(in_channels, out_channels, 1, stride=stride, bias=bias),
                make_norm(norm, out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, C_in, L] → [B, C_out, ceil(L / stride)]."""
        h = self.act1(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return self.act_out(h + self.shortcut(x))


class ResNet1D(nn.Module):
    """1D ResNet encoder: pattern [B, N] (or [B, C, N]) → feature [B, ``output_dim``].

    Args:
        in_channels: input channels (1 for a single pattern).
        widths: channel width of each stage; ``output_dim = widths[-1]``.
        blocks_per_stage: number of residual blocks in each stage (same length as ``widths``).
        kernel_size: odd kernel size of the block convolutions.
        stem_kernel: odd kernel size of the stride-2 stem convolution.
        pool_after_stage: ``(kernel, stride)`` of a max pooling applied after every stage, or None
            (XCCP's wide-angle branch uses (3, 2)).
        norm: ``batch`` (default, as in XCCP), ``group`` or ``none``.
        activation: ``relu`` (XCCP), ``gelu`` or ``silu``.
        downsample_stride: stride of the first block of every stage after the first.
    """

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 256),
        blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
        kernel_size: int = 7,
        stem_kernel: int = 7,
        pool_after_stage: tuple[int, int] | None = None,
        norm: str = "batch",
        activation: str = "relu",
        downsample_stride: int = 2,
    ) -> None:
        super().__init__()
        widths, blocks_per_stage = tuple(int(w) for w in widths), tuple(int(b) for b in blocks_per_stage)
        if not widths or len(widths) != len(blocks_per_stage):
            raise ConfigError(
                f"ResNet1D: widths {widths} and blocks_per_stage {blocks_per_stage} must be non-empty and of "
                "equal length (one entry per stage)."
            )
        if min(widths) < 1 or min(blocks_per_stage) < 1:
            raise ConfigError(
                f"ResNet1D: widths {widths} and blocks_per_stage {blocks_per_stage} must be ≥ 1."
            )
        if kernel_size % 2 == 0 or stem_kernel % 2 == 0:
            raise ConfigError(
                f"ResNet1D: kernel_size={kernel_size} and stem_kernel={stem_kernel} must be odd."
            )
        self.in_channels = in_channels
        self.output_dim = widths[-1]
        self.stem = nn.Sequential(
            LengthConv(
                in_channels, widths[0], stem_kernel, stride=2, padding=stem_kernel // 2, bias=norm == "none"
            ),
            make_norm(norm, widths[0]),
            make_activation(activation),
        )
        stages: list[nn.Module] = []
        previous = widths[0]
        for s, (width, n_blocks) in enumerate(zip(widths, blocks_per_stage, strict=True)):
            blocks: list[nn.Module] = []
            for b in range(n_blocks):
                stride = downsample_stride if (s > 0 and b == 0) else 1
                blocks.append(ResidualBlock1D(previous, width, kernel_size, stride, norm, activation))
                previous = width
            if pool_after_stage is not None:
                kernel, pool_stride = pool_after_stage
                blocks.append(LengthMaxPool(kernel, stride=pool_stride, padding=kernel // 2))
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)

    def forward(self, pattern: Tensor) -> Tensor:
        """pattern: [B, N] or [B, in_channels, N] → [B, output_dim] (global average over length)."""
        if pattern.dim() == 2:
            pattern = pattern.unsqueeze(1)
        if pattern.dim() != 3 or pattern.shape[1] != self.in_channels or pattern.shape[-1] < 1:
            raise PatternError(
                "pattern",
                f"ResNet1D expects [B, N] or [B, {self.in_channels}, N] (N ≥ 1), got {tuple(pattern.shape)}",
            )
        x = pattern.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        return self.stages(self.stem(x)).mean(dim=(-2, -1))

    @torch.no_grad()
    def feature_length(self, n_points: int) -> int:
        """Length of the final feature map for an input of ``n_points`` (before global pooling)."""
        probe = torch.zeros(1, self.in_channels, 1, n_points)
        was_training = self.training
        self.eval()
        try:
            return int(self.stages(self.stem(probe)).shape[-1])
        finally:
            self.train(was_training)
