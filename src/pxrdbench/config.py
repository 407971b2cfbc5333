"""Configuration files: where they live and how they are read.

Configs are data (YAML) under ``configs/<kind>/<name>.yaml`` at the repository root: ``methods``, ``views``,
``data``, ``presets``, ``trainer``. ``$PXRDBENCH_CONFIGS`` points elsewhere (e.g. for a non-editable install).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from pxrdbench.errors import ConfigError, did_you_mean


def config_dir() -> Path:
    """The configs directory: ``$PXRDBENCH_CONFIGS`` or ``<repo>/configs`` next to ``src/``."""
    env = os.environ.get("PXRDBENCH_CONFIGS")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "configs").is_dir() and (parent / "pyproject.toml").is_file():
            return parent / "configs"
    raise ConfigError("cannot find the configs/ directory; set PXRDBENCH_CONFIGS to it")


def list_configs(kind: str) -> list[str]:
    """Names of the configs of one kind (file stems, sorted)."""
    return sorted(p.stem for p in (config_dir() / kind).glob("*.yaml"))


def load_config(kind: str, name_or_path: str | Path) -> dict[str, Any]:
    """Read ``configs/<kind>/<name>.yaml`` (or a YAML path); an unknown name says "did you mean"."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / kind / f"{name_or_path}.yaml"
        if not path.is_file():
            raise did_you_mean(str(name_or_path), list_configs(kind), kind.rstrip("s"))
    elif not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data
