"""``pxrdbench bench --model M --data D``: train with a preset, evaluate every task the model serves, write the
results file and rebuild the leaderboards."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered method name (see `pxrdbench models`)")
    parser.add_argument("--data", default="amcsd", help="dataset name (default amcsd)")
    parser.add_argument("--preset", default="quick", help="ci, quick or full (configs/presets/)")
    parser.add_argument("--gpus", default="auto", help="number of devices, or 'auto' (default)")
    parser.add_argument("--accelerator", default="auto", choices=("auto", "cpu", "gpu"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nodes", type=int, default=1, help="machines (Lightning num_nodes; default 1)")
    parser.add_argument(
        "--ensemble", type=int, default=None, help="ensemble members (overrides the preset and the config)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="global batch (overrides preset/config)")
    parser.add_argument("--max-structures", type=int, default=None, help="first N structures of the dataset")
    parser.add_argument("--resume", action="store_true", help="resume from the run's last checkpoint")
    parser.add_argument("--workers", type=int, default=2, help="processes for a cache build (default 2)")
    parser.add_argument("--results-dir", default="leaderboards/results")
    parser.add_argument("--runs-dir", default="runs", help="checkpoints and logs (default runs/)")
    parser.add_argument(
        "--no-leaderboard", action="store_true", help="do not rebuild leaderboards/ afterwards"
    )


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pxrdbench.run.bench import BenchRequest, run_bench, run_name

    request = BenchRequest(
        model=args.model,
        data=args.data,
        preset=args.preset,
        gpus=args.gpus,
        accelerator=args.accelerator,
        seed=args.seed,
        resume=args.resume,
        workers=args.workers,
        results_dir=args.results_dir,
        runs_dir=args.runs_dir,
        leaderboard=not args.no_leaderboard,
        ensemble=args.ensemble,
        nodes=args.nodes,
        batch_size=args.batch_size,
        max_structures=args.max_structures,
    )
    path = run_bench(request)
    if path is not None:
        print(path)
        print(Path(request.runs_dir) / run_name(request) / "checkpoints")
    return 0
