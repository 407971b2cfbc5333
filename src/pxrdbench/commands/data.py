"""``pxrdbench data build|info|export-splits DATASET``: the dataset cache from the command line."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="parse, label and simulate every structure once; write the cache")
    build.add_argument(
        "dataset", help="amcsd, mp_cgcnn, oqmd_icsd, perov5, carbon24, synthetic, ... or a+b merges"
    )
    build.add_argument(
        "--max-structures", type=int, default=None, help="take only the first N source entries"
    )
    build.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    build.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    build.add_argument("--force", action="store_true", help="rebuild even if a verified cache exists")
    info = sub.add_parser(
        "info", help="counts per split and crystal system, failures, duplicate sets, hash, size, build time"
    )
    info.add_argument("dataset")
    info.add_argument("--max-structures", type=int, default=None)
    info.add_argument("--seed", type=int, default=0)
    info.add_argument("--json", action="store_true", help="print JSON")
    export = sub.add_parser("export-splits", help="write id, group, split, space_group, formula as CSV")
    export.add_argument("dataset")
    export.add_argument("out", help="output CSV path")
    export.add_argument("--max-structures", type=int, default=None)
    export.add_argument("--seed", type=int, default=0)


def _find(args: argparse.Namespace):
    """The existing cache for these arguments (never builds: info and export read what `build` made)."""
    from pxrdbench.data.cache import DatasetCache
    from pxrdbench.data.entry import BuildParams
    from pxrdbench.data.store import cache_dir_for, cache_hash, cache_key
    from pxrdbench.errors import DatasetError

    key = cache_key(args.dataset, BuildParams(), args.max_structures, args.seed, (0.8, 0.1, 0.1))
    path = cache_dir_for(args.dataset, cache_hash(key))
    if not path.exists():
        limit = f" --max-structures {args.max_structures}" if args.max_structures else ""
        raise DatasetError(
            f"no cache for {args.dataset!r} at {path}; run `pxrdbench data build {args.dataset}{limit}`"
        )
    return DatasetCache.open(path)


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        from pxrdbench.data.cache import DatasetCache
        from pxrdbench.data.store import build_cache

        path = build_cache(
            args.dataset,
            max_structures=args.max_structures,
            workers=args.workers,
            split_seed=args.seed,
            force=args.force,
        )
        _print_info(DatasetCache.open(path).info(), as_json=False)
        return 0
    cache = _find(args)
    if args.action == "info":
        _print_info(cache.info(), as_json=args.json)
        return 0
    cols = ["id", "group", "split", "space_group", "formula"]
    cache.entries[cols].to_csv(args.out, index=False)
    print(f"wrote {len(cache.entries)} rows to {args.out} (split hash {cache.split_hash})", file=sys.stderr)
    return 0


def _print_info(info: dict, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(info, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{info['dataset']}[/]  structures {info['structures']} (read {info['entries_read']}, failed "
        f"{info['failed']}: {info['failed_parse']} parse / {info['failed_process']} processing, duplicates dropped "
        f"{info['duplicates_dropped']})  space groups {info['distinct_space_groups']}  groups {info['groups']}"
    )
    console.print(
        f"within-source duplicate sets {info['duplicate_sets']} ({info['in_duplicate_sets']} entries in them)"
    )
    console.print(
        f"cache {info['cache_dir']}  hash {info['cache_hash']}  split hash {info['split_hash']}  "
        f"{info['size_bytes'] / 1e6:.1f} MB  built in {info['build_time_s']} s"
    )
    systems = sorted({cs for d in info["crystal_systems"].values() for cs in d})
    table = Table("split", "n", *systems)
    for split, n in info["splits"].items():
        per = info["crystal_systems"].get(split, {})
        table.add_row(split, str(n), *[str(per.get(cs, 0)) for cs in systems])
    console.print(table)
