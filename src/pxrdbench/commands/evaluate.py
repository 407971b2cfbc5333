"""``pxrdbench evaluate --checkpoint CKPT [--data NAME] [--path FILE]``: metrics of a trained checkpoint on the
test split of the data it was trained on (read from the checkpoint; ``--data``, ``--max-structures`` and
``--seed`` override it), on an experimental set (``rruff908``), or the predictions for one measured file (and,
for methods with a pattern embedding, the dataset's structures ranked as candidate phases)."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a checkpoint written by `bench` or `fit`")
    parser.add_argument(
        "--model", default=None, help="the method's name (checked against the checkpoint's record)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="a dataset name (its test split; default: the checkpoint's dataset) or 'rruff908'",
    )
    parser.add_argument("--max-structures", type=int, default=None, help="default: the checkpoint's")
    parser.add_argument("--seed", type=int, default=None, help="split/render seed; default: the checkpoint's")
    parser.add_argument("--path", default=None, help="an experimental file (any supported format) to predict")
    parser.add_argument("--wavelength", default=None, help="wavelength of --path when the file has none")
    parser.add_argument(
        "--elements",
        default=None,
        help="with --path: rank only candidates with exactly these elements ('Al,P,O')",
    )
    parser.add_argument(
        "--pool", default="all", choices=("all", "test"), help="with --path: candidate structures of --data"
    )
    parser.add_argument("--top-k", type=int, default=10, help="with --path: candidates listed per pattern")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the 95 %% intervals")
    parser.add_argument("--device", default="cpu", help="where the method runs: cpu or cuda")
    parser.add_argument(
        "--json", dest="json_out", default=None, metavar="OUT", help="also write the output as JSON"
    )


def run(args: argparse.Namespace) -> int:
    from pxrdbench.run.evaluate import evaluate_checkpoint

    notes: list[str] = []
    output = evaluate_checkpoint(
        checkpoint=args.checkpoint,
        model=args.model,
        data=args.data,
        path=args.path,
        wavelength=args.wavelength,
        max_structures=args.max_structures,
        seed=args.seed,
        n_boot=args.n_boot,
        elements=args.elements,
        pool=args.pool,
        top_k=args.top_k,
        device=args.device,
        notes=notes,
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    text = json.dumps(output, indent=2, sort_keys=True)
    print(text)
    if args.json_out:
        with open(args.json_out, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    if not output:
        print("nothing was evaluated (see the notes above)", file=sys.stderr)
        return 1
    return 0
