"""Run settings: how the runner feeds a model (``configs/bench/<model>.yaml``) and what a preset allows
(``configs/presets/<name>.yaml``). Tiny twins (``<name>_tiny``) use their parent's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pxrdbench.config import load_config
from pxrdbench.errors import ConfigError


@dataclass(frozen=True)
class MethodSettings:
    """view: the view the model reads; batch_size and full_epochs: the paper's schedule (``full`` preset);
    graphs: None, "cgcnn" or "radius"; kind: "lightning" (trained by a Trainer) or "baseline" (``fit`` on batches)."""

    view: str
    batch_size: int = 64
    full_epochs: int = 100
    graphs: str | None = None
    kind: str = "lightning"


@dataclass(frozen=True)
class Preset:
    """A named budget (see ``configs/presets/``)."""

    name: str
    budget: dict[str, Any]
    eval: dict[str, Any]
    num_workers: int = 0
    precision_cpu: str = "32-true"
    precision_gpu: str = "bf16-mixed"


def method_settings(model: str) -> MethodSettings:
    """Settings of ``model`` (a tiny twin falls back to its parent's file)."""
    name = model
    try:
        cfg = load_config("bench", name)
    except ConfigError:
        if not model.endswith("_tiny"):
            raise
        cfg = load_config("bench", model.removesuffix("_tiny"))
    unknown = set(cfg) - set(MethodSettings.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"configs/bench/{name}.yaml: unknown keys {sorted(unknown)}")
    return MethodSettings(**cfg)


def load_preset(name: str) -> Preset:
    cfg = load_config("presets", name)
    unknown = set(cfg) - set(Preset.__dataclass_fields__)
    if unknown:
        raise ConfigError(f"configs/presets/{name}.yaml: unknown keys {sorted(unknown)}")
    return Preset(**cfg)
