"""A generic multilayer-perceptron head: in_dim → hidden… → out_dim (no activation on the output)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from pxrdbench.errors import did_you_mean

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
}


def make_activation(name: str) -> nn.Module:
    """Instantiate the activation called ``name`` (one of :data:`ACTIVATIONS`)."""
    key = name.lower()
    if key not in ACTIVATIONS:
        raise did_you_mean(name, list(ACTIVATIONS), "activation")
    return ACTIVATIONS[key]()


class MLPHead(nn.Module):
    """Fully connected head: [Linear → activation → Dropout] per hidden width, then a final Linear.

    Args:
        in_dim: input feature size (e.g. the 560-d ConvNeXt1D feature).
        hidden: hidden widths in order (e.g. (2300, 1150) for AlphaDiffract's classification heads).
        out_dim: output size (logits for a classifier, raw values for a regressor).
        activation: name of the hidden activation (see :data:`ACTIVATIONS`).
        dropout: dropout probability after each hidden activation (0 disables it).
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (),
        out_dim: int = 1,
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.out_dim = int(out_dim)
        layers: list[nn.Module] = []
        width = self.in_dim
        for size in hidden:
            layers += [nn.Linear(width, int(size)), make_activation(activation)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = int(size)
        layers.append(nn.Linear(width, self.out_dim))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        """Map features [B, in_dim] to outputs [B, out_dim]."""
        return self.layers(features)
