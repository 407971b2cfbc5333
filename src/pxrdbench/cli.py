"""The ``pxrdbench`` command: one entry point, one sub-command module each (imports are lazy, so
``pxrdbench --help`` is instant and a sub-command only loads what it uses)."""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command name -> (module under pxrdbench.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("simulate", "simulate powder patterns (peaks, optional profiles) for CIFs or a CSV of CIFs"),
    "data": ("data", "build, inspect and export dataset caches (reflections, labels, graphs, splits)"),
    "models": ("models", "list registered methods with the tasks each serves and its parameter count"),
    "bench": ("bench", "train a model on a dataset with a preset, evaluate every task, write a results file"),
    "evaluate": ("evaluate", "evaluate a checkpoint on a dataset or an experimental file"),
    "leaderboard": ("leaderboard", "regenerate leaderboards/ from leaderboards/results/*.json"),
}


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser; each sub-command module contributes ``add_arguments(parser)`` and ``run(args)``."""
    parser = argparse.ArgumentParser(
        prog="pxrdbench", description="Benchmark suite for deep learning on powder X-ray diffraction."
    )
    from pxrdbench import __version__

    parser.add_argument("--version", action="version", version=f"pxrdbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in LIGHTNING_COMMANDS:
        sub.add_parser(
            name,
            help=f"LightningCLI {name} on a method config (--config configs/methods/<name>.yaml)",
            add_help=False,
        )
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module)
        _load(module).add_arguments(sp)
    return parser


def _load(module: str):
    return importlib.import_module(f"pxrdbench.commands.{module}")


#: LightningCLI sub-commands on a method config (``pxrdbench fit --config configs/methods/<name>.yaml``).
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from pxrdbench.run.host_memory import use_huge_pages_for_tensors

    use_huge_pages_for_tensors()
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from pxrdbench.errors import PxrdbenchError
        from pxrdbench.run.lightning_cli import main as lightning_main

        try:
            return lightning_main(argv)
        except PxrdbenchError as exc:
            print(f"pxrdbench {argv[0]}: error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from pxrdbench.errors import PxrdbenchError

    try:
        return int(_load(args._module).run(args) or 0)
    except PxrdbenchError as exc:
        print(f"pxrdbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
