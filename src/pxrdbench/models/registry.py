"""Model registry (timm-style): name → builder, with a tiny twin of every model for CPU tests.

Usage::

    @register_model("alphadiffract", tasks=("crystal_system", "space_group", "lattice"),
                    description="...", paper="...", tiny=True)
    def build_alphadiffract(input_length: int = 8192, ...) -> AlphaDiffract: ...

    model = create_model("alphadiffract_tiny", input_length=512)

Configs are data. ``configs/models/<name>.yaml`` is a **flat mapping of the builder's keyword arguments**
(nested dicts only where an argument is itself a dict, e.g. ``optimizer``). The keyword arguments a builder
receives are merged, later winning:

1. the builder's own Python defaults,
2. ``configs/models/<name>.yaml`` (for a twin: the parent's file),
3. for a tiny twin ``<name>_tiny``: the ``tiny`` dict given to the decorator, then
   ``configs/models/<name>_tiny.yaml`` (``tiny=True``: the twin's overrides live only in that file, which
   must then exist),
4. the keyword overrides given to :func:`create_model` (e.g. ``input_length``, ``num_space_groups``).

Unknown keys raise :class:`~pxrdbench.errors.ConfigError` naming the file or argument. Builders register
themselves when their module is imported; the registry imports every module of :mod:`pxrdbench.methods` on
first use, so a new method file that uses the decorator is found without being listed anywhere.
"""

from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pxrdbench.errors import ConfigError, did_you_mean

#: Where the model configs live (repo_root/configs/models); ``PXRDBENCH_MODEL_CONFIGS`` overrides it.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs" / "models"
TINY_SUFFIX = "_tiny"
DISCOVERY_PACKAGES: tuple[str, ...] = ("pxrdbench.methods",)


@dataclass(frozen=True)
class ModelEntry:
    """One registered name: its builder, the tasks it serves and its provenance."""

    name: str
    builder: Callable[..., Any]
    tasks: tuple[str, ...]
    description: str
    paper: str = ""
    parent: str | None = None
    tiny_overrides: dict[str, Any] = field(default_factory=dict)
    tiny_file_required: bool = False


_REGISTRY: dict[str, ModelEntry] = {}
_IMPORT_FAILURES: dict[str, str] = {}
_DISCOVERED = False
_PARAMETER_COUNTS: dict[str, int] = {}


def config_dir() -> Path:
    """The directory of model YAML configs."""
    return Path(os.environ.get("PXRDBENCH_MODEL_CONFIGS", DEFAULT_CONFIG_DIR))


def register_model(
    name: str,
    *,
    tasks: tuple[str, ...] | list[str],
    description: str,
    paper: str = "",
    tiny: dict[str, Any] | bool | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator registering ``builder`` under ``name`` (and ``<name>_tiny`` when ``tiny`` is not None/False).

    Args:
        name: the model name (lower-case, no ``_tiny`` suffix).
        tasks: the benchmark tasks the model serves.
        description: one line shown by :func:`model_info`.
        paper: the paper (title / arXiv id) the model reimplements.
        tiny: overrides making the tiny twin (a dict), True (overrides in ``<name>_tiny.yaml`` only) or None.
    """

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        entries = [ModelEntry(name, builder, tuple(tasks), description, paper)]
        if tiny is not None and tiny is not False:
            entries.append(
                ModelEntry(
                    name + TINY_SUFFIX,
                    builder,
                    tuple(tasks),
                    f"tiny twin of {name} for CPU tests",
                    paper,
                    parent=name,
                    tiny_overrides=dict(tiny) if isinstance(tiny, dict) else {},
                    tiny_file_required=tiny is True,
                )
            )
        for entry in entries:
            existing = _REGISTRY.get(entry.name)
            if existing is not None and _qualname(existing.builder) != _qualname(builder):
                raise ConfigError(
                    f"model {entry.name!r} is registered twice "
                    f"({_qualname(existing.builder)}, {_qualname(builder)})"
                )
            _REGISTRY[entry.name] = entry
        return builder

    return decorator


def _qualname(function: Callable[..., Any]) -> str:
    """module.qualname of a function (identity that survives a module reload)."""
    return f"{function.__module__}.{function.__qualname__}"


def _discover() -> None:
    """Import every module of the discovery packages once so their decorators run (failures kept, warned)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    for package_name in DISCOVERY_PACKAGES:
        package = importlib.import_module(package_name)
        for module in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
            try:
                importlib.import_module(module.name)
            except Exception as error:  # a broken method file must not hide every other model
                _IMPORT_FAILURES[module.name] = f"{type(error).__name__}: {error}"
                warnings.warn(f"model registry: could not import {module.name}: {error}", stacklevel=2)


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names (``pattern``: optional substring filter)."""
    _discover()
    return sorted(name for name in _REGISTRY if pattern is None or pattern in name)


def _entry(name: str) -> ModelEntry:
    """The entry of ``name`` or a did-you-mean ConfigError (naming modules that failed to import)."""
    _discover()
    if name not in _REGISTRY:
        error = did_you_mean(name, list(_REGISTRY), "model")
        if _IMPORT_FAILURES:
            failures = "; ".join(
                f"{module} ({reason})" for module, reason in sorted(_IMPORT_FAILURES.items())
            )
            error = ConfigError(f"{error} Modules that failed to import: {failures}")
        raise error
    return _REGISTRY[name]


def load_config_file(path: Path) -> dict[str, Any]:
    """Read one flat YAML mapping of builder arguments; an empty file is an empty mapping."""
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({error})") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of builder arguments, got {type(content).__name__}")
    return content


def _check_keys(entry: ModelEntry, options: dict[str, Any], source: str) -> None:
    """Raise ConfigError if ``options`` has a key the builder does not accept."""
    parameters = inspect.signature(entry.builder).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    for key in options:
        if key not in parameters:
            hint = did_you_mean(key, list(parameters), f"option of model {entry.name!r}")
            raise ConfigError(f"{source}: {hint}")


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The merged builder arguments of ``name`` (YAML files, tiny overrides, then ``overrides``)."""
    entry = _entry(name)
    directory = config_dir()
    merged: dict[str, Any] = {}
    layers: list[tuple[str, dict[str, Any]]] = []
    base_file = directory / f"{entry.parent or entry.name}.yaml"
    if base_file.is_file():
        layers.append((str(base_file), load_config_file(base_file)))
    if entry.parent is not None:
        layers.append((f"register_model({entry.parent!r}, tiny=...)", entry.tiny_overrides))
        tiny_file = directory / f"{entry.name}.yaml"
        if tiny_file.is_file():
            layers.append((str(tiny_file), load_config_file(tiny_file)))
        elif entry.tiny_file_required:
            raise ConfigError(f"{tiny_file}: the tiny twin {entry.name!r} needs this config file")
    layers.append((f"create_model({name!r}, ...) overrides", dict(overrides)))
    for source, options in layers:
        _check_keys(entry, options, source)
        merged.update(options)
    return merged


def create_model(name: str, **overrides: Any) -> Any:
    """Build model ``name`` (nn.Module, LightningModule or baseline) from config defaults and overrides."""
    entry = _entry(name)
    return entry.builder(**model_config(name, **overrides))


def count_parameters(model: Any) -> int:
    """Trainable parameters: ``model.num_parameters`` when defined (baselines: 0), else the parameter sum."""
    if hasattr(model, "num_parameters"):
        return int(model.num_parameters)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def model_info(name: str) -> dict[str, Any]:
    """{name, tasks, parameters, description, paper, config} of ``name`` (built once to count parameters)."""
    entry = _entry(name)
    config = model_config(name)
    if name not in _PARAMETER_COUNTS:
        _PARAMETER_COUNTS[name] = count_parameters(entry.builder(**config))
    return {
        "name": entry.name,
        "tasks": list(entry.tasks),
        "parameters": _PARAMETER_COUNTS[name],
        "description": entry.description,
        "paper": entry.paper,
        "config": config,
    }
