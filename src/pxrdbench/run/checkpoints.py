"""Rebuilding a trained method from one of its checkpoints.

Every checkpoint a ``bench`` or ``fit`` run writes carries, under the key ``"pxrdbench"``, the run's fully resolved
method config (LightningCLI YAML) and where its data came from (dataset, ``max_structures``, split seed, view,
global batch), so ``pxrdbench evaluate`` scores exactly the split the method was trained on and builds nothing
larger.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from pxrdbench.errors import ConfigError

RUN_KEYS = ("method", "dataset", "max_structures", "seed", "view", "batch_size")


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict (tensors on the CPU); a clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"checkpoint {path}: no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ConfigError(f"checkpoint {path}: cannot be read as a pxrdbench checkpoint ({error})") from error


def load_checkpoint(path: str | Path, model: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(method with the checkpoint's weights, run info ``{model, dataset, max_structures, seed, view,
    batch_size}``). ``model``, when given, must be the name the checkpoint was trained as."""
    from pxrdbench.methods.registry import import_method_modules, instantiate
    from pxrdbench.run.lightning_cli import make_cli

    checkpoint = read_checkpoint(path)
    run = checkpoint.get("pxrdbench")
    if not isinstance(run, dict) or "config" not in run:
        raise ConfigError(
            f"checkpoint {path}: no pxrdbench run record (not written by `pxrdbench bench` or `fit`)"
        )
    if model is not None and run.get("method") not in (None, model):
        raise ConfigError(f"checkpoint {path} holds {run.get('method')!r}, not {model!r}")
    import_method_modules()
    with tempfile.TemporaryDirectory() as folder:  # the recorded config, as a file LightningCLI reads
        config_file = Path(folder) / "config.yaml"
        config_file.write_text(str(run["config"]))
        cli = make_cli(["--config", str(config_file)], instantiate=False)
    method = instantiate(cli)["model"]
    try:
        method.load_state_dict(checkpoint["state_dict"])
    except (KeyError, RuntimeError) as error:
        raise ConfigError(f"checkpoint {path}: weights do not fit the recorded config ({error})") from error
    method.run_config = dict(run)
    info = {key: run.get(key) for key in RUN_KEYS}
    info["model"] = info.pop("method") or model
    return method, info
