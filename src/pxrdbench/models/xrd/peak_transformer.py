"""XtalNet CPCP's pattern encoder: a pre-LN transformer over a pattern's peak tokens, read out at a CLS token.

Source: XtalNet (Lai et al. 2025, paper 003); the facts below come from its public code as recorded in the
project's METHOD_NOTES. That code is GPL-3.0 and was not consulted for this module, which is written from the
recorded facts alone.

Layout (defaults in parentheses)::

    positions Long[B, T], intensities Float[B, T], mask Bool[B, T]
      -> token = position_table[position] + MLP(intensity)          (Embedding(4096, 512); MLP below)
      -> [CLS; tokens]  Float[B, 1 + T, width]                       (CLS: a learned vector [width])
      -> input LayerNorm -> dropout (0.1)
      -> num_layers (8) pre-LN encoder layers: width 512, 64 heads (head dim 8), feed-forward 2048, GELU
      -> final LayerNorm of the CLS output  ->  pattern embedding Float[B, width]

- **Intensity MLP**: the recorded fact is "1 -> 512 -> 512 with LayerNorm and ReLU"; our reading is
  Linear(1 -> width) -> LayerNorm(width) -> ReLU -> Linear(width -> width).
- **Padding**: tokens with mask False (the tokenizer pads with position 0, intensity 0) are keys no query may
  attend to (a key padding mask). CLS is never masked, so a pattern with no peaks is valid: CLS attends only to
  itself and the output stays finite. The output does not depend on the number or values of padded tokens.
  There is no positional encoding besides the table lookup: the tokens are a set, and the output is invariant
  to their order.
- **Speed (same function)**: token columns that are padding in every row of the batch are dropped before the
  embedding, so a batch padded to ``max_tokens`` = 256 costs what its longest row costs (training dropout
  then draws different random numbers, nothing else changes); positions are checked before the drop. The last
  layer computes queries, attention output and feed-forward for CLS only (the other positions serve as keys and
  values), since nothing reads their outputs.
- **Dropout split**: ``dropout`` (0.1) acts on the input embeddings and on each residual branch (after the
  attention output projection and after the feed-forward output); ``attention_dropout`` (0.1) on the attention
  weights; the feed-forward activation has no dropout (0). ``nn.TransformerEncoderLayer`` uses one ``dropout``
  for all three places, activation included, so a small pre-LN layer is written here instead (fused QKV
  projection + ``F.scaled_dot_product_attention``); every projection is then a plain ``nn.Linear``, which the
  initialisation rule below covers without special cases, and no inference fast path changes the numerics.
- **Initialisation**: every ``nn.Linear`` and ``nn.Embedding`` weight and the CLS vector N(0, 0.02²), every
  bias zero, LayerNorm ones / zeros.

Input errors (:class:`~pxrdbench.errors.InputError`): mismatched shapes, non-integer positions, positions outside
[0, position_table) (never clipped), non-finite intensities, a non-boolean mask. Config errors: a width not
divisible by the head count, non-positive sizes, dropout outside [0, 1).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pxrdbench.errors import ConfigError, InputError

INIT_STD = 0.02
"""Standard deviation of every Linear / Embedding weight and of the CLS vector."""


class PreLNEncoderLayer(nn.Module):
    """x + drop(attn(LN(x))), then x + drop(W₂ GELU(W₁ LN(x))); attention dropout on the weights only."""

    def __init__(
        self, width: int, num_heads: int, feedforward: int, dropout: float, attention_dropout: float
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.attention_out = nn.Linear(width, width)
        self.feedforward_norm = nn.LayerNorm(width)
        self.feedforward_in = nn.Linear(width, feedforward)
        self.feedforward_out = nn.Linear(feedforward, width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, attend: Tensor, queries: int | None = None) -> Tensor:
        """x Float[B, L, width]; attend Bool[B, 1, 1, L] (True = the key may be attended to).

        Returns Float[B, queries, width]: the outputs of the first ``queries`` positions (all when None); the
        others still serve as keys and values. The encoder's last layer asks only for CLS.
        """
        b, length, width = x.shape
        n = length if queries is None else queries
        split = (self.num_heads, width // self.num_heads)
        h = self.attention_norm(x)
        if n == length:
            q, k, v = self.qkv(h).view(b, length, 3, *split).permute(2, 0, 3, 1, 4).unbind(0)
        else:  # same weights, queries only for the first n positions
            weight, bias = self.qkv.weight, self.qkv.bias
            q = F.linear(h[:, :n], weight[:width], bias[:width]).view(b, n, *split).transpose(1, 2)
            kv = F.linear(h, weight[width:], bias[width:]).view(b, length, 2, *split)
            k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, heads, L, head_dim]
        p = self.attention_dropout if self.training else 0.0
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=attend, dropout_p=p)
        x = x[:, :n] + self.dropout(self.attention_out(attended.transpose(1, 2).reshape(b, n, width)))
        hidden = F.gelu(self.feedforward_in(self.feedforward_norm(x)))
        return x + self.dropout(self.feedforward_out(hidden))


class PeakTransformer(nn.Module):
    """Peak tokens → Float[B, width] pattern embedding (the CLS output); see the module docstring."""

    input_kind: ClassVar[str] = "peak_tokens"
    """The method passes the batch's peak tokens (``peak_positions``, ``peak_intensities``, ``peak_mask``)
    instead of the dense pattern."""

    def __init__(
        self,
        position_table: int = 4096,
        width: int = 512,
        num_layers: int = 8,
        num_heads: int = 64,
        feedforward: int = 2048,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        sizes = {"position_table": position_table, "width": width, "num_layers": num_layers}
        sizes |= {"num_heads": num_heads, "feedforward": feedforward}
        bad = {k: v for k, v in sizes.items() if int(v) < 1}
        if bad:
            raise ConfigError(f"PeakTransformer: sizes must be >= 1, got {bad}")
        if width % num_heads:
            raise ConfigError(f"PeakTransformer: width {width} is not divisible by num_heads {num_heads}")
        for name, rate in (("dropout", dropout), ("attention_dropout", attention_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"PeakTransformer: {name} must be in [0, 1), got {rate}")
        self.position_table = int(position_table)
        self.output_dim = int(width)
        self.position_embedding = nn.Embedding(position_table, width)
        self.intensity_mlp = nn.Sequential(
            nn.Linear(1, width), nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, width)
        )
        self.cls = nn.Parameter(torch.empty(width))
        self.input_norm = nn.LayerNorm(width)
        self.input_dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(
            PreLNEncoderLayer(width, num_heads, feedforward, dropout, attention_dropout)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Linear / Embedding weights and CLS ~ N(0, 0.02²), biases 0, LayerNorm ones / zeros."""
        for module in self.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()
        nn.init.normal_(self.cls, 0.0, INIT_STD)

    def check_tokens(self, positions: Tensor, intensities: Tensor, mask: Tensor) -> None:
        """InputError unless the three token tensors agree and every position indexes the table."""
        source = "PeakTransformer"
        if positions.ndim != 2:
            raise InputError(f"{source}.positions", f"must be (B, T), got shape {tuple(positions.shape)}")
        if intensities.shape != positions.shape or mask.shape != positions.shape:
            raise InputError(
                source,
                f"positions {tuple(positions.shape)}, intensities {tuple(intensities.shape)} and mask "
                f"{tuple(mask.shape)} must have the same (B, T) shape",
            )
        if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
            raise InputError(
                f"{source}.positions", f"must be integer grid indices, got dtype {positions.dtype}"
            )
        if mask.dtype != torch.bool:
            raise InputError(f"{source}.mask", f"must be boolean (True = real peak), got dtype {mask.dtype}")
        if positions.numel() == 0:
            return
        low, high = int(positions.min()), int(positions.max())
        if low < 0 or high >= self.position_table:
            worst = high if high >= self.position_table else low
            raise InputError(
                f"{source}.positions",
                f"grid index {worst} is outside the position table of size {self.position_table} "
                f"(indices must be in [0, {self.position_table - 1}]; largest given {high}, smallest {low}); "
                "raise position_table or use a shorter grid — indices are never clipped",
            )
        if not torch.isfinite(intensities).all():
            raise InputError(f"{source}.intensities", "contain NaN or inf")

    def forward(self, positions: Tensor, intensities: Tensor, mask: Tensor) -> Tensor:
        """positions Long[B, T], intensities Float[B, T], mask Bool[B, T] (True = real peak) → Float[B, width]."""
        self.check_tokens(positions, intensities, mask)
        keep = mask.any(dim=0)
        if not bool(keep.all()):  # columns padded in every row: no query reads them, so drop them (exact)
            positions, intensities, mask = positions[:, keep], intensities[:, keep], mask[:, keep]
        b = positions.shape[0]
        values = intensities.to(self.cls.dtype).unsqueeze(-1)
        tokens = self.position_embedding(positions) + self.intensity_mlp(values)
        x = torch.cat([self.cls.expand(b, 1, -1), tokens], dim=1)
        x = self.input_dropout(self.input_norm(x))
        attend = torch.cat([mask.new_ones(b, 1), mask], dim=1).view(b, 1, 1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x, attend, queries=1 if i == len(self.layers) - 1 else None)
        return self.final_norm(x[:, 0])
