"""CPU training throughput of every registered learned method (a script, not a test).

    .venv/bin/python benchmarks/train_throughput.py                          # every learned method
    .venv/bin/python benchmarks/train_throughput.py --methods alphadiffract --profile
    .venv/bin/python benchmarks/train_throughput.py --baseline-src /tmp/before/src --json OUT.json

What one step is: a real Lightning ``Trainer.fit`` on the method's own config (its batch size, optimiser and
scheduler, 32-bit on the CPU as the ``quick`` preset), real training batches of the dataset cache (AMCSD by
default; structures, reflections and graphs read by the data loader in the main process), rendering and
augmentation of the view (``on_after_batch_transfer``), forward, losses, backward and the optimiser step.
Throughput is patterns per second over ``--steps`` steps after ``--warmup`` steps, from the time between
consecutive ``on_train_batch_end`` calls; the loading and rendering shares of that time are printed beside it.

FLOPs: one forward pass of a rendered batch counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
products and convolutions; element-wise work is not counted), with every depthwise convolution counted as the
direct convolution it equals (2·C·N·K), not as the FFT that computes it on the CPU. Training ≈ 3× forward.

Each method runs in a fresh subprocess (its own threads, memory and caches). ``--baseline-src DIR`` runs the same
measurement with ``PYTHONPATH=DIR`` (e.g. ``git worktree add /tmp/before <commit>`` then ``/tmp/before/src``)
right after, on the same machine, and prints the ratio new / baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def learned_methods() -> list[str]:
    """Registered methods with trainable parameters, without their ``_tiny`` twins."""
    from pxrdbench.methods.registry import list_methods, method_info

    names = [m for m in list_methods() if not m.endswith("_tiny")]
    return [m for m in names if method_info(m)["parameters"] > 0]


def forward_flops(method: Any, batch: dict[str, Any]) -> int:
    """FLOPs of one forward pass of ``batch`` (depthwise convolutions counted as direct convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        import pxrdbench.models.xrd.depthwise as depthwise

        saved, depthwise.FFT_MIN_KERNEL = depthwise.FFT_MIN_KERNEL, 1 << 30
    except (ImportError, AttributeError):
        depthwise, saved = None, None
    counter = FlopCounterMode(display=False)
    try:
        with method.evaluating(), counter:
            method.forward_batch(batch)
    finally:
        if depthwise is not None:
            depthwise.FFT_MIN_KERNEL = saved
    return int(counter.get_total_flops())


def measure(
    name: str, dataset: str, steps: int, warmup: int, batch_size: int | None, profile: bool, precision: str
) -> dict:
    """Train ``name`` for ``warmup + steps`` steps in this process; return its timings."""
    import lightning as L
    import torch

    from pxrdbench.methods.registry import instantiate, parse_method
    from pxrdbench.run.lightning_cli import configure_data_for

    overrides = ["--data.dataset", dataset, "--data.num_workers", "0"]
    if batch_size:
        overrides += ["--data.batch_size", str(batch_size)]
    built = instantiate(parse_method(name, overrides))
    method, data = built["model"], built["data"]
    configure_data_for(data, method)
    marks: dict[str, list[float]] = {"end": [], "transfer_start": [], "transfer_end": []}
    render = data.on_after_batch_transfer

    def timed_render(batch: Any, idx: int) -> Any:
        marks["transfer_start"].append(time.perf_counter())
        out = render(batch, idx)
        marks["transfer_end"].append(time.perf_counter())
        return out

    data.on_after_batch_transfer = timed_render
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) if profile else None

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            if prof is not None and len(marks["end"]) == warmup + steps - 1:
                prof.stop()
            marks["end"].append(time.perf_counter())
            marks.setdefault("threads", []).append(torch.get_num_threads())
            if prof is not None and len(marks["end"]) == warmup:
                prof.start()

    trainer = L.Trainer(
        accelerator="cpu", devices=1, precision=precision, max_steps=warmup + steps, max_epochs=1, limit_val_batches=0,
        num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[Clock()], deterministic=True,
    )  # fmt: skip
    try:  # what the runner does after building its deterministic Trainer (absent before the speed work)
        from pxrdbench.run.host_memory import skip_filling_new_tensors

        skip_filling_new_tensors()
    except ImportError:
        pass
    trainer.fit(method, datamodule=data)
    ends = marks["end"]
    span = ends[-1] - ends[warmup - 1] if warmup > 0 else ends[-1] - marks["transfer_start"][0]
    size = data.batch_size
    load = sum(marks["transfer_start"][i] - ends[i - 1] for i in range(max(warmup, 1), warmup + steps))
    rendered = sum(
        marks["transfer_end"][i] - marks["transfer_start"][i] for i in range(warmup, warmup + steps)
    )
    loader = data.train_dataloader()
    flops = forward_flops(method, render(next(iter(loader)), 0))
    row = {
        "method": name, "batch_size": size, "steps": steps, "seconds": span,
        "patterns_per_s": steps * size / span, "load_share": load / span, "render_share": rendered / span,
        "forward_gflop_per_pattern": flops / size / 1e9, "parameters": sum(p.numel() for p in method.parameters()),
        "threads": marks["threads"][-1], "precision": precision,
    }  # fmt: skip
    if prof is not None:
        table = prof.key_averages().table(
            sort_by=os.environ.get("SORT", "self_cpu_time_total"), row_limit=int(os.environ.get("ROWS", 12))
        )
        row["profile"] = table
    return row


def run_child(name: str, args: argparse.Namespace, src: str | None) -> dict:
    """:func:`measure` in a fresh interpreter (``PYTHONPATH=src`` when given)."""
    cmd = [sys.executable, __file__, "--one", name, "--dataset", args.dataset, "--steps", str(args.steps)]
    cmd += ["--warmup", str(args.warmup), "--threads", str(args.threads), "--precision", args.precision]
    cmd += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    cmd += ["--profile"] if args.profile and src is None else []
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    if src is not None:
        env["PYTHONPATH"] = src
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        return {"method": name, "error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def header() -> dict[str, Any]:
    """Date, machine and library versions of this run."""
    import torch

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "torch": torch.__version__,
        "python": platform.python_version(), "cpu_count": os.cpu_count(), "load_1min": os.getloadavg()[0],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None, help="default: every learned method")
    parser.add_argument("--dataset", default="amcsd")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="default: each method's config")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="32-true", help="Lightning precision (32-true, bf16-mixed)")
    parser.add_argument("--profile", action="store_true", help="print the top operators (torch profiler)")
    parser.add_argument("--baseline-src", default=None, help="also measure the package under this directory")
    parser.add_argument("--json", default=None, help="write {method: {...}} here")
    parser.add_argument("--one", default=None, help="internal: measure one method, print JSON")
    args = parser.parse_args()
    if args.one:
        try:  # what the `pxrdbench` command does first (absent before the speed work); before any tensor exists
            from pxrdbench.run.host_memory import use_huge_pages_for_tensors

            use_huge_pages_for_tensors()
        except ImportError:
            pass
        import torch

        torch.set_num_threads(args.threads)
        row = measure(
            args.one, args.dataset, args.steps, args.warmup, args.batch_size, args.profile, args.precision
        )
        print(json.dumps(row))
        return
    info = header()
    print(f"{info['date']}  torch {info['torch']}  {args.threads} threads  load {info['load_1min']:.2f}  "
          f"dataset {args.dataset}  {args.precision}  {args.warmup} warm-up + {args.steps} timed steps\n")  # fmt: skip
    results: dict[str, Any] = {"run": info, "methods": {}}
    print(
        "| method | batch | patterns/s | loading | rendering | forward GFLOP/pattern | baseline patterns/s | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.methods or learned_methods():
        row = run_child(name, args, None)
        base = run_child(name, args, args.baseline_src) if args.baseline_src else None
        results["methods"][name] = {**row, "baseline": base}
        if "error" in row:
            print(f"| {name} | error: {row['error']} |")
            continue
        base_rate = base.get("patterns_per_s") if base else None
        cells = [name, row["batch_size"], f"{row['patterns_per_s']:.1f}", f"{row['load_share']:.1%}",
                 f"{row['render_share']:.1%}", f"{row['forward_gflop_per_pattern']:.3f}",
                 f"{base_rate:.1f}" if base_rate else "—",
                 f"{row['patterns_per_s'] / base_rate:.2f}×" if base_rate else "—"]  # fmt: skip
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
        if "profile" in row:
            print(f"\n{name}: top operators by self CPU time\n{row['profile']}\n")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
