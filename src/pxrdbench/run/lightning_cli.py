"""The method configuration format and the ``pxrdbench fit|validate|test|predict`` command (LightningCLI).

A method config (``configs/methods/<name>.yaml``) is a LightningCLI config::

    meta: {description: ..., paper: ...}        # informational (``pxrdbench models``, results files)
    model:
      class_path: pxrdbench.methods.supervised.AlphaDiffract
      init_args:
        encoder: {class_path: pxrdbench.models.xrd.convnext1d.ConvNeXt1D, init_args: {...}}
        cs_head: {class_path: pxrdbench.models.heads.mlp.MLPHead, init_args: {...}}
    data: {view: alphadiffract, batch_size: 64}  # SimulatedDataModule arguments
    trainer: {max_epochs: 60}                    # the paper's schedule (the ``full`` preset)
    recipe: {class_path: pxrdbench.run.recipes.Ensemble, init_args: {members: 10}}

Two rules go beyond plain LightningCLI:

- **Variants override a parent.** A file whose top-level ``extends: <parent>.yaml`` names another file (resolved
  next to it) is applied on top of it: ``--config wa_kan.yaml`` is ``--config den_kan.yaml --config
  <wa_kan without extends>``, recursively. ``--print_config`` prints the merged result, which ``--config``
  accepts back.
- **The view fills the grid arguments.** Every ``input_length`` and ``split_index`` argument inside ``model``
  that is left null is set from the data view (its number of points and the grid index of 2θ = 10°); one that is
  set must agree with the view.

Defaults live in the class signatures; configs state only what differs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.cli import LightningCLI

from pxrdbench.config import load_config
from pxrdbench.errors import ConfigError

VIEW_ARGUMENTS = ("input_length", "split_index")


def config_chain(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The files a config applies, parent first: ``[(path, content without extends), ...]``."""
    chain: list[tuple[Path, dict[str, Any]]] = []
    seen: set[Path] = set()
    current: Path | None = Path(path).resolve()
    while current is not None:
        if current in seen:
            raise ConfigError(f"{path}: 'extends' loops through {current}")
        seen.add(current)
        content = load_config("methods", current)
        parent = content.pop("extends", None)
        chain.append((current, content))
        current = (current.parent / str(parent)).resolve() if parent else None
    return chain[::-1]


def expand_config_args(argv: Sequence[str]) -> list[str]:
    """Replace each ``--config FILE`` (or ``--config=FILE``) by its ``extends`` chain, parent first."""
    out: list[str] = []
    items = list(argv)
    i = 0
    while i < len(items):
        arg = items[i]
        value = None
        if arg == "--config" and i + 1 < len(items):
            value, i = items[i + 1], i + 2
        elif arg.startswith("--config="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        path = Path(value)
        if not path.is_file():  # a YAML string, as --print_config round-trips may pass
            out += ["--config", value]
            continue
        for _, content in config_chain(path):
            out += ["--config", yaml.safe_dump(content, sort_keys=False)]
    return out


def _fill_view_arguments(node: Any, values: dict[str, int | None], where: str) -> None:
    """Set null ``input_length`` / ``split_index`` inside a parsed model config from the view (recursive)."""
    from jsonargparse import Namespace

    if isinstance(node, Namespace):
        for key in list(vars(node)):
            value = node[key]
            if key in VIEW_ARGUMENTS and key in values:
                expected = values[key]
                if value is None:
                    node[key] = expected
                elif expected is not None and int(value) != int(expected):
                    raise ConfigError(
                        f"{where}.{key} = {value}, but the view gives {expected}: leave it null (the view fills "
                        "it) or use a view with that grid"
                    )
            else:
                _fill_view_arguments(value, values, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            _fill_view_arguments(item, values, f"{where}[{i}]")


class PXRDCLI(LightningCLI):
    """LightningCLI for pxrdbench methods: a ``recipe`` and ``meta`` section, view-filled grid arguments.

    ``instantiate=False`` parses and validates without building anything (``bench`` instantiates the model
    once per ensemble member from :attr:`config`).
    """

    def __init__(self, *args: Any, instantiate: bool = True, **kwargs: Any) -> None:
        self._instantiate = instantiate
        super().__init__(*args, **kwargs)

    def _set_seed(self) -> None:
        if self._instantiate:  # parsing alone leaves the random state alone
            super()._set_seed()

    def add_arguments_to_parser(self, parser: Any) -> None:
        from pxrdbench.run.recipes import Recipe, SingleFit

        parser.add_argument(
            "--meta", type=dict | None, default=None, help="description and paper (informational)"
        )
        parser.add_subclass_arguments(
            Recipe, "recipe", required=False, default={"class_path": f"{SingleFit.__module__}.SingleFit"}
        )

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        fill_view_arguments(config)

    def instantiate_classes(self) -> None:
        if self._instantiate:
            super().instantiate_classes()
            configure_data_for(self.datamodule, self.model)
            from pxrdbench.run.host_memory import skip_filling_new_tensors

            skip_filling_new_tensors()  # after the Trainer's deterministic flag, which turned it on

    def before_fit(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        data = config.data
        self.model.run_config = {
            "method": None,
            "config": self._parser(self.subcommand).dump(config),
            "dataset": data.dataset,
            "max_structures": data.max_structures,
            "seed": data.seed,
            "view": data.view,
            "batch_size": data.batch_size,
        }


def fill_view_arguments(config: Any) -> None:
    """Fill the model's null grid arguments from ``config.data.view`` (see the module docstring)."""
    from pxrdbench.views.spec import load_view

    view = load_view(config.data.view)
    values = {"input_length": view.n_points, "split_index": view.split_index}
    _fill_view_arguments(config.model, values, "model")


def configure_data_for(datamodule: Any, method: Any) -> None:
    """Make the data module attach what the method declares it needs (graphs, views, peak tokens)."""
    from pxrdbench.data.datamodule import apply_requirements

    apply_requirements(datamodule, method.data_requirements())


def make_cli(args: Sequence[str], *, instantiate: bool = True, run: bool = False) -> PXRDCLI:
    """The CLI over ``args`` (``--config`` chains expanded); ``run=True`` runs the subcommand in ``args``."""
    import lightning as L

    from pxrdbench.data.datamodule import SimulatedDataModule

    program, sys.argv = sys.argv, sys.argv[:1]  # arguments are passed explicitly, never read from sys.argv
    try:
        return _cli(L, SimulatedDataModule, args, instantiate, run)
    finally:
        sys.argv = program


def _cli(L: Any, datamodule: type, args: Sequence[str], instantiate: bool, run: bool) -> PXRDCLI:
    return PXRDCLI(
        L.LightningModule,
        datamodule,
        subclass_mode_model=True,
        args=expand_config_args(args),
        run=run,
        instantiate=instantiate,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs=None if run else {"exit_on_error": False},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """``pxrdbench fit|validate|test|predict [--config FILE] ...`` (LightningCLI)."""
    make_cli(list(sys.argv[1:] if argv is None else argv), run=True)
    return 0
