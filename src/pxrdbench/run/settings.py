"""Presets: what a ``bench`` run may spend and evaluate (``configs/presets/<name>.yaml``). How a method is fed
and trained (view, batch, epochs, recipe) is its own config, ``configs/methods/<name>.yaml``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pxrdbench.config import load_config
from pxrdbench.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    """A named budget (see ``configs/presets/``)."""

    name: str
    budget: dict[str, Any]
    eval: dict[str, Any]
    num_workers: int = 0
    precision_cpu: str = "32-true"
    precision_gpu: str = "bf16-mixed"


def load_preset(name: str) -> Preset:
    cfg = load_config("presets", name)
    unknown = set(cfg) - set(Preset.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"configs/presets/{name}.yaml: unknown keys {sorted(unknown)}")
    return Preset(**cfg)
