"""One-shot GPU check for a lent machine: training, rendering and latency figures, the gpu tests, targets.

    make gpu-bundle                        # here: wheels + a 512-structure AMCSD cache into .gpu/
    make gpu-check                         # there: install .gpu/wheels into /tmp/site, then run this file
    python3 benchmarks/gpu_check.py --device cpu --dry-run --cache-dir DIR --out /tmp/x   # CPU smoke test

Nothing is installed here except the carried wheels (the Makefile's ``pip install --no-index --no-deps
--target``); ``src/`` is on ``PYTHONPATH``; the cache is the newest ``<dataset>-*`` under ``$PXRDBENCH_CACHE``
(``.gpu/cache``). An import guard (``gpu_guard.py``) refuses pymatgen, spglib, pyxtal and larixite in this
process and names the importer: a CPU run here then fails where the GPU machine would.

Order, within ``--budget-s`` (default 270 s): each learned method eagerly (a real Lightning fit, warm-up then
timed steps, each method's share of the time left capping its timed steps) with its batch-1 latency;
rendering; then ``torch.compile`` of each method's pattern-side modules while the estimate fits (AlphaDiffract
first); last ``pytest -m gpu`` (time reserved for it from the start). Whatever does not fit is skipped and
listed in ``skipped``. The JSON is rewritten after every phase, so a killed run still leaves what it measured.

Output, in ``--out`` (default ``$OUT`` if set, else ``runs/gpu_check``): ``gpu_check.json``, ``gpu_check.md``
(the same as tables), ``pytest_gpu.log`` / ``.xml``. JSON schema (version 1)::

    run:     {date, device, device_name, torch, lightning, cuda, python, commit, cache, budget_s, elapsed_s,
              dry_run, argv}
    methods: {name: {train_patterns_per_s, precision, compiled, batch_size, latency_ms_batch1, latency_mode,
                     parameters, eager: TRAIN, compiled_run: TRAIN | null, latency_ms: {fp32, bf16, cuda_graph},
                     error?}}
             TRAIN = {patterns_per_s, batch_size, steps, warmup, seconds, load_share, wall_s, precision,
                      num_workers, compiled_parts?}
             train_patterns_per_s is the better of eager and compiled; ``compiled`` says which it is.
    render:  {profile: {patterns_per_s, batch, points, peaks, first_s, median_s, best_s, repeats}}
    pytest:  {passed, failed, skipped, errors, returncode, seconds, summary, note?}
    targets: {name: {value, target, op, met}}   met: true / false / null (not measured)
    skipped: [{what, reason, at_s}]
    guard:   {blocked: [{module, importer}]}

Targets: AlphaDiffract >= 20,000 training patterns/s and <= 0.5 ms batch-1 latency; every method >= 10x its
CPU training throughput, read from ``--cpu-json`` (``train_throughput.py --json``:
``{"run": ..., "methods": {name: {"patterns_per_s": ...}}}``; default ``.gpu/cpu_throughput.json`` if present).
Exit status: 0, or 3 when the guard refused an import, or 2 when nothing could be measured.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gpu_check_measure as measure
import gpu_check_report as report
import gpu_guard

ROOT = Path(__file__).resolve().parents[1]
GPU_DIR = ROOT / ".gpu"
METHOD_ESTIMATE_S = 25.0  # setup, warm-up, timed steps and latency of one method, eager
RENDER_ESTIMATE_S = 10.0
SETUP_FACTOR = 3.0  # a method's wall time over its timed steps' (building, loader start, warm-up, latency)


class Budget:
    """Seconds left of ``total_s`` (``clock``: monotonic seconds) and the list of what was skipped."""

    def __init__(self, total_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.total_s, self.clock, self.start = float(total_s), clock, clock()
        self.skipped: list[dict[str, Any]] = []

    def elapsed(self) -> float:
        return self.clock() - self.start

    def left(self) -> float:
        return self.total_s - self.elapsed()

    def allows(self, cost_s: float, reserve_s: float = 0.0) -> bool:
        """Whether ``cost_s`` fits in what is left after keeping ``reserve_s`` for later phases."""
        return self.left() - reserve_s >= cost_s

    def timed_cap(self, items_left: int, reserve_s: float, max_s: float, floor_s: float = 1.0) -> float:
        """Seconds of timed steps for the next of ``items_left`` items: a fair share, within [floor, max]."""
        share = (self.left() - reserve_s) / max(items_left, 1) / SETUP_FACTOR
        return max(floor_s, min(max_s, share))

    def skip(self, what: str, reason: str) -> None:
        self.skipped.append({"what": what, "reason": reason, "at_s": round(self.elapsed(), 1)})
        print(f"skipped {what}: {reason}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "runs" / "gpu_check"))
    p.add_argument("--budget-s", type=float, default=270.0, help="total wall-clock budget (default 270)")
    p.add_argument("--cpu-json", type=Path, default=None, help="train_throughput.py --json output")
    p.add_argument("--methods", nargs="+", default=None, help="default: every learned method (no _tiny)")
    p.add_argument("--dataset", default="amcsd")
    p.add_argument("--cache-dir", type=Path, default=None, help="default: newest DATASET-* in the cache root")
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    p.add_argument("--precision", default="bf16-mixed")
    p.add_argument("--batch-size", type=int, default=None, help="default: each method's config")
    p.add_argument("--num-workers", type=int, default=None, help="default: 8 on CUDA (preset full), 0 on CPU")
    p.add_argument("--warmup", type=int, default=None, help="default 5 (dry run 1)")
    p.add_argument("--steps", type=int, default=None, help="timed steps at most; default 60 (dry run 1)")
    p.add_argument("--max-timed-s", type=float, default=15.0, help="timed seconds per method at most")
    p.add_argument("--latency-repeats", type=int, default=None, help="default 200 (dry run 3)")
    p.add_argument("--render-profile", default="alphadiffract")
    p.add_argument("--render-batch", type=int, default=None, help="default 256 (dry run 4)")
    p.add_argument("--render-points", type=int, default=None, help="default 8192 (dry run 512)")
    p.add_argument("--render-peaks", type=int, default=None, help="default 300 (dry run 10)")
    p.add_argument("--render-repeats", type=int, default=None, help="default 5 (dry run 1)")
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile pass")
    p.add_argument("--compile-overhead-s", type=float, default=60.0, help="compile time estimate per method")
    p.add_argument("--no-pytest", action="store_true", help="skip pytest -m gpu")
    p.add_argument("--pytest-reserve-s", type=float, default=45.0, help="kept for pytest from the start")
    p.add_argument("--commit", default=os.environ.get("GIT_COMMIT"), help="default: read from .git")
    p.add_argument(
        "--dry-run", action="store_true", help="tiny settings (1 step, alphadiffract_tiny, no tests)"
    )
    return resolve(p.parse_args(argv))


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on ``--dry-run`` (and the CPU JSON that the bundle may carry)."""
    dry = args.dry_run
    defaults = {
        "warmup": (5, 1), "steps": (60, 1), "latency_repeats": (200, 3), "render_batch": (256, 4),
        "render_points": (8192, 512), "render_peaks": (300, 10), "render_repeats": (5, 1),
    }  # fmt: skip
    for key, (full, tiny) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, tiny if dry else full)
    if dry:
        args.methods = args.methods or ["alphadiffract_tiny"]
        args.batch_size = args.batch_size or 4
        args.no_compile = args.no_pytest = True
    if args.cpu_json is None and (GPU_DIR / "cpu_throughput.json").is_file():
        args.cpu_json = GPU_DIR / "cpu_throughput.json"
    return args


def read_commit(root: Path) -> str | None:
    """The checked-out commit, read from ``.git`` files (no git command; None without ``.git``)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None


def pick_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    return requested


def header(args: argparse.Namespace, device: str, cache: Path) -> dict[str, Any]:
    import lightning
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else (platform.processor() or "cpu")
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "device": device, "device_name": name,
        "torch": torch.__version__, "lightning": lightning.__version__, "cuda": torch.version.cuda,
        "python": platform.python_version(), "commit": args.commit or read_commit(ROOT), "cache": str(cache),
        "budget_s": args.budget_s, "dry_run": args.dry_run, "argv": sys.argv[1:],
    }  # fmt: skip


def guarded(
    what: str, record: dict[str, Any], call: Callable[..., Any], *args: Any, key: str = "error"
) -> Any:
    """``call(*args)``; an exception is printed and stored as ``record[key]`` (returns None)."""
    try:
        return call(*args)
    except Exception as error:
        traceback.print_exc()
        record[key] = f"{what}: {type(error).__name__}: {error}"[:500]
        return None


def release(device: str, compiled: bool) -> None:
    import torch

    gc.collect()
    if compiled:
        torch._dynamo.reset()
    if device == "cuda":
        torch.cuda.empty_cache()


def measure_method(
    name: str, args: argparse.Namespace, ctx: dict[str, Any], cap_s: float, compiled: bool
) -> dict:
    """Build ``name``; train it (compiled or eager); eager: its batch-1 latency too."""
    method, data = measure.build(name, ctx["cache"], args.batch_size, ctx["workers"])
    out: dict[str, Any] = {"parameters": measure.parameters(method)}
    if out["parameters"] == 0:
        return out
    parts = measure.compile_parts(method) if compiled else []
    out["train"], pattern = measure.train(
        method, data, device=ctx["device"], precision=args.precision, warmup=args.warmup, steps=args.steps,
        cap_s=cap_s,
    )  # fmt: skip
    if parts:
        out["train"]["compiled_parts"] = parts
    else:
        out.update(measure.latency(method, pattern, ctx["device"], args.latency_repeats))
    return out


def registered_methods() -> list[str]:
    """Every registered method but the ``_tiny`` twins (baselines are dropped once built: 0 parameters)."""
    from pxrdbench.methods.registry import list_methods

    return [m for m in list_methods() if not m.endswith("_tiny")]


def run(args: argparse.Namespace, guard: Any, budget: Budget) -> dict[str, Any]:
    """Every phase within ``budget``; the JSON is rewritten after each one."""
    for logger in ("lightning.pytorch", "lightning.fabric"):  # the Trainer's banners, once per fit
        logging.getLogger(logger).setLevel(logging.WARNING)
    device = pick_device(args.device)
    workers = args.num_workers if args.num_workers is not None else (8 if device == "cuda" else 0)
    root = Path(os.environ.get("PXRDBENCH_CACHE") or GPU_DIR / "cache")
    cache_dir = args.cache_dir or measure.find_cache(root, args.dataset)
    ctx = {"cache": measure.open_cache(cache_dir), "device": device, "workers": workers}
    result: dict[str, Any] = {
        "run": header(args, device, cache_dir), "methods": {}, "render": {}, "pytest": {}, "targets": {},
        "skipped": budget.skipped, "guard": {"blocked": guard.violations},
    }  # fmt: skip
    cpu = report.cpu_rates(args.cpu_json)

    def save() -> None:
        result["run"]["elapsed_s"] = round(budget.elapsed(), 1)
        result["targets"] = report.evaluate_targets(result["methods"], cpu)
        report.write_outputs(result, args.out)

    pytest_reserve = 0.0 if args.no_pytest else args.pytest_reserve_s
    names = args.methods or registered_methods()
    walls: dict[str, float] = {}
    for i, name in enumerate(names):  # eager: every method, with its latency
        reserve = pytest_reserve + RENDER_ESTIMATE_S
        if not budget.allows(METHOD_ESTIMATE_S, reserve):
            budget.skip(name, f"{budget.left():.0f} s left, {reserve:.0f} s of it reserved")
            continue
        cap = budget.timed_cap(len(names) - i, reserve, args.max_timed_s)
        rec: dict[str, Any] = {}
        got = guarded(f"{name} eager", rec, measure_method, name, args, ctx, cap, False)
        release(device, False)
        if got is not None and got["parameters"] == 0:
            budget.skip(name, "no trainable parameters (a baseline)")
            continue
        if got is not None:
            walls[name] = got["train"]["wall_s"]
            train = got.pop("train")
            rec.update(got, eager=train, compiled_run=None, train_patterns_per_s=train["patterns_per_s"],
                       compiled=False, batch_size=train["batch_size"], precision=train["precision"])  # fmt: skip
        result["methods"][name] = rec
        save()
    if budget.allows(RENDER_ESTIMATE_S, pytest_reserve):
        rec = {}
        got = guarded("render", rec, measure.render, device, args.render_profile, args.render_batch,
                      args.render_points, args.render_peaks, args.render_repeats)  # fmt: skip
        result["render"][args.render_profile] = got or rec
        save()
    else:
        budget.skip(f"render {args.render_profile}", f"{budget.left():.0f} s left")
    order = sorted(walls, key=lambda n: n != report.TARGET_TRAIN[0])
    for i, name in enumerate(order):  # torch.compile, the target method first
        cost = walls[name] + args.compile_overhead_s
        if args.no_compile:
            budget.skip(f"{name} compiled", "--no-compile (or --dry-run)")
            continue
        if not budget.allows(cost, pytest_reserve):
            budget.skip(
                f"{name} compiled", f"~{cost:.0f} s needed, {budget.left() - pytest_reserve:.0f} s free"
            )
            continue
        rec = result["methods"][name]
        cap = budget.timed_cap(len(order) - i, pytest_reserve, args.max_timed_s)
        got = guarded("compile", rec, measure_method, name, args, ctx, cap, True, key="compile_error")
        release(device, True)
        if got is not None:
            rec["compiled_run"] = got["train"]
            if got["train"]["patterns_per_s"] > rec["train_patterns_per_s"]:
                rec.update(train_patterns_per_s=got["train"]["patterns_per_s"], compiled=True)
        save()
    if args.no_pytest:
        budget.skip("pytest -m gpu", "--no-pytest (or --dry-run)")
    elif budget.left() < 10:
        budget.skip("pytest -m gpu", f"{budget.left():.0f} s left")
    else:
        result["pytest"] = measure.run_pytest(args.out, timeout_s=budget.left())
    save()
    return result


def main(argv: list[str] | None = None) -> int:
    guard = gpu_guard.install()
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = run(args, guard, Budget(args.budget_s))
    print(report.markdown(result), flush=True)
    print(f"wrote {args.out / 'gpu_check.json'}", flush=True)
    if guard.violations:
        print(
            f"*** import guard refused {len(guard.violations)} import(s): see guard.blocked", file=sys.stderr
        )
        return 3
    return 0 if any("train_patterns_per_s" in m for m in result["methods"].values()) else 2


if __name__ == "__main__":
    sys.exit(main())
