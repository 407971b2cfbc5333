"""``pxrdbench evaluate --model M --checkpoint CKPT --data NAME [--path FILE]``: metrics of a trained checkpoint on a
dataset's test split, an experimental set (``rruff908``) or one measured file (predictions, and for methods
that embed, the dataset's structures ranked as candidate phases)."""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True)
    parser.add_argument("--checkpoint", required=True, help="a Lightning checkpoint written by `bench`")
    parser.add_argument("--data", required=True, help="a dataset name (test split) or 'rruff908'")
    parser.add_argument("--path", default=None, help="an experimental file (any supported format) to predict")
    parser.add_argument("--wavelength", default=None, help="wavelength of --path when the file has none")
    parser.add_argument("--max-structures", type=int, default=None)
    parser.add_argument(
        "--elements",
        default=None,
        help="with --path: rank only candidates with exactly these elements ('Al,P,O')",
    )
    parser.add_argument(
        "--pool", default="all", choices=("all", "test"), help="with --path: candidate structures of --data"
    )
    parser.add_argument("--top-k", type=int, default=10, help="with --path: candidates listed per pattern")
    parser.add_argument(
        "--json", dest="json_out", default=None, metavar="OUT", help="also write the metrics as JSON"
    )


def run(args: argparse.Namespace) -> int:
    from pxrdbench.run.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        model=args.model,
        checkpoint=args.checkpoint,
        data=args.data,
        path=args.path,
        wavelength=args.wavelength,
        max_structures=args.max_structures,
        elements=args.elements,
        pool=args.pool,
        top_k=args.top_k,
    )
    text = json.dumps(metrics, indent=2, sort_keys=True)
    print(text)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return 0
