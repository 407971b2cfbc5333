"""The Barlow Twins projector ("expander"): representation → a high-dimensional vector for the redundancy loss.

Zbontar et al. (2021) use three Linear layers of width 8,192, with BatchNorm + ReLU between them:

    z = W₃ · ReLU(BN(W₂ · ReLU(BN(W₁ · y))))

DIFCON (paper 002) says only "a projector to a high-dimensional space". Widths are a constructor argument; the
``difcon`` config states its choice (8,192 × 3 layers would be 134 M parameters, most of a CPU step).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pxrdbench.errors import ConfigError


class Expander(nn.Module):
    """in_dim → widths[0] → … → widths[-1]; BatchNorm1d + ReLU after every Linear but the last (no bias there
    either: the loss standardises each feature anyway).

    Args:
        in_dim: representation size (the encoder's ``output_dim``).
        widths: output width of each Linear layer; ``output_dim = widths[-1]``.
    """

    def __init__(self, in_dim: int, widths: Sequence[int] = (2048, 2048)) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if int(in_dim) < 1 or not widths or min(widths) < 1:
            raise ConfigError(
                f"Expander: in_dim={in_dim} and widths={widths} must be ≥ 1 (at least one layer)"
            )
        layers: list[nn.Module] = []
        previous = int(in_dim)
        for width in widths[:-1]:
            layers += [nn.Linear(previous, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
            previous = width
        layers.append(nn.Linear(previous, widths[-1], bias=False))
        self.layers = nn.Sequential(*layers)
        self.in_dim, self.output_dim = int(in_dim), widths[-1]

    def forward(self, features: Tensor) -> Tensor:
        """features [B, in_dim] → [B, output_dim]."""
        return self.layers(features)
