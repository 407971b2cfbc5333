"""``pxrdbench models``: the registered methods (``configs/methods/``), the tasks each serves and its parameter
count. A method module that cannot be imported, or a config that does not parse, is an error naming it."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pattern", nargs="?", default=None, help="only names matching this glob (e.g. 'den_*')"
    )
    parser.add_argument("--tiny", action="store_true", help="include the tiny test twins")
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from fnmatch import fnmatchcase

    from pxrdbench.methods.registry import import_method_modules, list_methods, method_info

    import_method_modules()
    names = [
        n
        for n in list_methods()
        if (args.tiny or not n.endswith("_tiny")) and (args.pattern is None or fnmatchcase(n, args.pattern))
    ]
    infos = [method_info(n) for n in names]
    if args.json:
        print(json.dumps(infos, indent=2, sort_keys=True, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("method", "tasks", "parameters", "description")
    for info in infos:
        params = info.get("parameters")
        table.add_row(
            info["name"],
            ", ".join(info.get("tasks", ())),
            f"{params:,}" if isinstance(params, int) else str(params),
            str(info.get("description", "")),
        )
    Console().print(table)
    return 0
