"""The method registry: every benchmarked name is a config file ``configs/methods/<name>.yaml``.

A name's config (LightningCLI format, see :mod:`pxrdbench.run.lightning_cli`) names its method class, the
encoders and heads injected into it, its data view, its trainer defaults and its training recipe. Variants and
tiny twins (``<name>_tiny``, one CPU step in the test suite) are short files that ``extends`` a parent.

The method modules are imported here explicitly, so a module that cannot be imported is an error that names
it (``pxrdbench models`` fails), never a method that silently disappears.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from pxrdbench.errors import ConfigError, PxrdbenchError, did_you_mean

#: The modules that define methods; each is imported when the registry is first used.
METHOD_MODULES: tuple[str, ...] = (
    "pxrdbench.methods.supervised",
    "pxrdbench.methods.contrastive",
    "pxrdbench.methods.difcon",
    "pxrdbench.methods.baselines",
)
TINY_SUFFIX = "_tiny"
_PARAMETER_COUNTS: dict[str, int] = {}


def config_dir() -> Path:
    """``configs/methods`` (``$PXRDBENCH_METHOD_CONFIGS`` overrides it)."""
    env = os.environ.get("PXRDBENCH_METHOD_CONFIGS")
    if env:
        return Path(env)
    from pxrdbench.config import config_dir as configs_root

    return configs_root() / "methods"


def import_method_modules() -> None:
    """Import every method module; an import failure is a ConfigError naming the module."""
    for module in METHOD_MODULES:
        try:
            importlib.import_module(module)
        except Exception as error:
            raise ConfigError(
                f"method module {module} cannot be imported: {type(error).__name__}: {error}"
            ) from error


def list_methods(pattern: str | None = None) -> list[str]:
    """Sorted registered names (``pattern``: optional substring filter)."""
    names = sorted(p.stem for p in config_dir().glob("*.yaml"))
    return [n for n in names if pattern is None or pattern in n]


def config_path(name: str) -> Path:
    """The config file of ``name`` or a did-you-mean ConfigError."""
    path = config_dir() / f"{name}.yaml"
    if not path.is_file():
        raise did_you_mean(name, list_methods(), "method")
    return path


def method_meta(name: str) -> dict[str, str]:
    """``{description, paper}`` of a name (a tiny twin: its parent's paper, described as its twin)."""
    from pxrdbench.run.lightning_cli import config_chain

    meta: dict[str, str] = {}
    for _, content in config_chain(config_path(name)):
        meta.update(content.get("meta") or {})
    if name.endswith(TINY_SUFFIX):
        meta["description"] = f"tiny twin of {name.removesuffix(TINY_SUFFIX)} for CPU tests"
    return {"description": str(meta.get("description", "")), "paper": str(meta.get("paper", ""))}


def parse_method(name: str, overrides: list[str] | None = None) -> Any:
    """A :class:`~pxrdbench.run.lightning_cli.PXRDCLI` holding the parsed (not instantiated) config of
    ``name`` with command-line style ``overrides`` (``["--data.batch_size", "16", ...]``)."""
    import argparse

    from pxrdbench.run.lightning_cli import make_cli

    import_method_modules()
    path = config_path(name)
    try:
        return make_cli(["--config", str(path), *(overrides or [])], instantiate=False)
    except argparse.ArgumentError as error:
        message = " ".join(str(error).split())
        raise ConfigError(f"method {name!r} ({path}): {message}") from error


def instantiate(cli: Any) -> dict[str, Any]:
    """``{"model", "data", "recipe"}`` built from a parsed CLI (the trainer section stays a config)."""
    try:
        init = cli.parser.instantiate(cli.config)
    except Exception as error:  # jsonargparse wraps a constructor's error: surface ours, name the rest
        cause: BaseException | None = error
        while cause is not None and not isinstance(cause, PxrdbenchError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise cause from error
        raise ConfigError(
            f"cannot build {cli.config.model.class_path}: {' '.join(str(error).split())}"
        ) from error
    return {"model": init["model"], "data": init["data"], "recipe": init["recipe"]}


def create_method(name: str, overrides: list[str] | None = None, **init_args: Any) -> Any:
    """Build the method of ``name`` (its data module's view fills the grid arguments).

    ``overrides``: command-line style (``["--model.init_args.temperature", "0.1"]``); ``init_args``: values put
    into the parsed ``model.init_args`` as they are (dotted keys reach nested ones, e.g.
    ``**{"encoder.init_args.channels": 4}``), for objects a command line cannot carry (a matrix).
    """
    cli = parse_method(name, overrides)
    for key, value in init_args.items():
        cli.config.model.init_args[key] = value
    return instantiate(cli)["model"]


def count_parameters(model: Any) -> int:
    """Learned parameters: ``model.num_parameters`` when defined (baselines: 0), else the sum over every
    parameter, frozen ones included (a two-stage method freezes the modules a stage leaves unused)."""
    from pxrdbench.methods.base import PXRDMethod

    if not isinstance(model, PXRDMethod) and hasattr(
        model, "num_parameters"
    ):  # Lightning's counts trainable only
        return int(model.num_parameters)
    return sum(p.numel() for p in model.parameters())


def method_info(name: str) -> dict[str, Any]:
    """``{name, tasks, parameters, description, paper, class_path}`` of ``name`` (built once to count)."""
    cli = parse_method(name)
    model = instantiate(cli)["model"]
    _PARAMETER_COUNTS[name] = count_parameters(model)
    return {
        "name": name,
        "tasks": list(model.tasks),
        "parameters": _PARAMETER_COUNTS[name],
        "class_path": cli.config.model.class_path,
        **method_meta(name),
    }
