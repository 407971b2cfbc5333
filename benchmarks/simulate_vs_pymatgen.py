"""Speed of pxrdbench's stick-pattern simulation against pymatgen's XRDCalculator.

    python benchmarks/simulate_vs_pymatgen.py [--n 300] [--wavelengths CuKa MoKa] [--data PATH]
        [--baseline-src DIR [--rounds 2]] [--json OUT]

The first ``n`` Materials Project structures of ``../shared/data/mp-cgcnn/structures.csv.gz`` are parsed first
(parsing is not timed). For each wavelength, each structure is simulated over 2θ = 0–90° by
``pxrdbench.physics.peaks.simulate`` (one at a time) and by ``XRDCalculator(wavelength=λ).get_pattern``,
alternating in blocks of 20 structures so both see the same machine load, with BLAS limited to one thread
(set before numpy is imported; on an oversubscribed machine, OpenBLAS threads make even 3 × 3 products take
milliseconds). Times are
per-process CPU time (``time.process_time``; the shared development machines are oversubscribed, which
inflates wall time of either code at random) and wall time; both are printed. Both codes use the same mean
wavelength (pxrdbench's Cu Kα = 1.541837 Å, Mo Kα = 0.710730 Å), and the peak lists are checked to agree (2θ
within 1e-6°, intensity within 1e-3 of 100, ignoring pymatgen's splits of one peak across a 1e-5° bin
boundary).

``--baseline-src DIR`` runs the measurement in subprocesses, alternately with ``PYTHONPATH=DIR`` (an older
copy of ``src``) and with this checkout's ``src``, ``--rounds`` times each, and prints both tables and the
ratios baseline / new (per-structure times pooled over the rounds). ``--json OUT`` writes every number.

The header line records the date, the library versions, the core count and the 1-minute load average before
and after the run: the ratios are only comparable between runs on the same machine under similar load.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # one core for both codes
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pymatgen.analysis.diffraction.xrd import XRDCalculator  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from pymatgen.io.cif import CifParser  # noqa: E402

from pxrdbench.physics.peaks import simulate  # noqa: E402
from pxrdbench.physics.wavelength import parse_wavelength  # noqa: E402

BLOCK = 20
"""Structures per alternation: each code runs a block back to back (warm caches), then the other does."""

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mp-cgcnn" / "structures.csv.gz"
)


def load_structures(path: Path, n: int) -> list[Structure]:
    """The first ``n`` structures of the MP CSV (P1 CIFs written by pymatgen)."""
    frame = pd.read_csv(path, nrows=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [CifParser.from_str(text).parse_structures(primitive=False)[0] for text in frame["cif"]]


def _merge_close(two_theta: np.ndarray, intensity: np.ndarray, tol: float = 1e-4) -> tuple[np.ndarray, ...]:
    """Sum peaks closer than ``tol`` degrees (undoes pymatgen's bin-boundary splits)."""
    if two_theta.size == 0:
        return two_theta, intensity
    starts = np.flatnonzero(np.concatenate(([True], np.diff(two_theta) > tol)))
    return two_theta[starts], np.add.reduceat(intensity, starts)


def patterns_agree(ours, theirs) -> bool:
    """Same peaks (after merging near-duplicates), 2θ within 1e-6°, intensities within 1e-3 of 100."""
    t1, i1 = _merge_close(ours.two_theta, ours.intensity)
    t2, i2 = _merge_close(np.asarray(theirs.x), np.asarray(theirs.y))
    return t1.shape == t2.shape and bool(np.all(np.abs(t1 - t2) < 1e-6) and np.all(np.abs(i1 - i2) < 1e-3))


def time_one_wavelength(structures: list[Structure], name: str) -> dict[str, float]:
    """Per-structure CPU and wall times (ms) of both codes at one wavelength, and the agreement count."""
    lam = parse_wavelength(name).angstrom
    calculator = XRDCalculator(wavelength=lam)
    ours_cpu, ref_cpu, ours_wall, ref_wall = [], [], [], []
    agree = 0
    simulate(structures[0], lam)  # warm caches (form-factor table) once
    for start in range(0, len(structures), BLOCK):
        block = structures[start : start + BLOCK]
        ours_block = []
        for structure in block:
            c0, w0 = time.process_time(), time.perf_counter()
            ours_block.append(simulate(structure, lam))
            ours_cpu.append((time.process_time() - c0) * 1e3)
            ours_wall.append((time.perf_counter() - w0) * 1e3)
        for structure, ours in zip(block, ours_block, strict=True):
            c0, w0 = time.process_time(), time.perf_counter()
            theirs = calculator.get_pattern(structure, two_theta_range=(0, 90))
            ref_cpu.append((time.process_time() - c0) * 1e3)
            ref_wall.append((time.perf_counter() - w0) * 1e3)
            agree += patterns_agree(ours, theirs)
    return {
        "ours_cpu": ours_cpu, "ref_cpu": ref_cpu, "ours_wall": ours_wall, "ref_wall": ref_wall,
        "agree": agree,
    }  # fmt: skip


def summary(r: dict) -> dict[str, float]:
    """Medians and means (ms per structure) of the raw per-structure times of :func:`time_one_wavelength`."""
    out = {
        "ours_median": statistics.median(r["ours_cpu"]),
        "ours_mean": statistics.fmean(r["ours_cpu"]),
        "ref_median": statistics.median(r["ref_cpu"]),
        "ref_mean": statistics.fmean(r["ref_cpu"]),
        "ours_wall_mean": statistics.fmean(r["ours_wall"]),
        "ref_wall_mean": statistics.fmean(r["ref_wall"]),
        "agree": r["agree"],
    }
    return out


def markdown_table(results: dict[str, dict], n: int) -> str:
    """The results as a markdown table (ms per structure; ratio = pymatgen / pxrdbench)."""
    lines = [
        "| λ | path | n | pxrdbench median / mean (ms) | pymatgen median / mean (ms) | ratio of means "
        "| ratio of medians | wall-time ratio of means | agreeing patterns |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, raw in results.items():
        r = summary(raw)
        lines.append(
            f"| {name} | one at a time | {n} | {r['ours_median']:.3f} / {r['ours_mean']:.3f} "
            f"| {r['ref_median']:.2f} / {r['ref_mean']:.2f} | {r['ref_mean'] / r['ours_mean']:.1f}× "
            f"| {r['ref_median'] / r['ours_median']:.1f}× "
            f"| {r['ref_wall_mean'] / r['ours_wall_mean']:.1f}× | {int(r['agree'])}/{n} |"
        )
    return "\n".join(lines)


def run_header(load_before: float, load_after: float) -> str:
    """Date, versions, cores and load: the context the ratios were measured in."""
    import pymatgen.core

    return (
        f"{datetime.datetime.now():%Y-%m-%d %H:%M}, Python {platform.python_version()}, "
        f"numpy {np.__version__}, pymatgen {pymatgen.core.__version__}, {os.cpu_count()} cores, "
        f"1-min load average {load_before:.1f} before / {load_after:.1f} after"
    )


def measure(args: argparse.Namespace) -> dict:
    """Load the structures and time every wavelength in this process; the raw numbers and context."""
    import pxrdbench.physics.peaks as peaks_module

    structures = load_structures(args.data, args.n)
    load_before = os.getloadavg()[0]
    results = {name: time_one_wavelength(structures, name) for name in args.wavelengths}
    return {
        "header": run_header(load_before, os.getloadavg()[0]),
        "code": str(Path(peaks_module.__file__).resolve().parents[2]),
        "n": len(structures),
        "sizes": [len(s) for s in structures],
        "results": results,
    }


def compare_with_baseline(args: argparse.Namespace, argv: list[str]) -> dict:
    """Alternate subprocess runs of the new and the baseline code; print tables and baseline / new ratios."""
    new_src = str(Path(__file__).resolve().parents[1] / "src")
    runs: dict[str, list[dict]] = {"new": [], "baseline": []}
    for round_index in range(args.rounds):
        order = ("new", "baseline") if round_index % 2 == 0 else ("baseline", "new")
        for label in order:
            env = dict(os.environ, PYTHONPATH=str(args.baseline_src) if label == "baseline" else new_src)
            done = subprocess.run(
                [sys.executable, __file__, *argv, "--worker"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            runs[label].append(json.loads(done.stdout.splitlines()[-1]))
    print(f"new code: {runs['new'][0]['code']}; baseline code: {runs['baseline'][0]['code']}")
    ratios = {}
    for label in ("new", "baseline"):
        for i, run in enumerate(runs[label]):
            print(f"\n{label}, round {i + 1}: {run['header']}")
            print(markdown_table(run["results"], run["n"]))
    print(
        "\nbaseline / new, per-structure CPU times pooled over the rounds (pymatgen: its own times in each run):"
    )
    for name in args.wavelengths:
        pooled = {
            label: summary({key: sum((run["results"][name][key] for run in runs[label]), [])
                            for key in ("ours_cpu", "ref_cpu", "ours_wall", "ref_wall")} | {"agree": 0})
            for label in runs
        }  # fmt: skip
        ratios[name] = {
            "median": pooled["baseline"]["ours_median"] / pooled["new"]["ours_median"],
            "mean": pooled["baseline"]["ours_mean"] / pooled["new"]["ours_mean"],
            "pymatgen_median": pooled["baseline"]["ref_median"] / pooled["new"]["ref_median"],
        }
        print(
            f"{name}: one at a time, median {ratios[name]['median']:.2f}×, mean {ratios[name]['mean']:.2f}× "
            f"(pymatgen baseline-run / new-run median {ratios[name]['pymatgen_median']:.2f}×, load drift)"
        )
    return {"runs": runs, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, time both codes, print the markdown table (or compare with a baseline checkout)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="number of MP structures (default 300)")
    parser.add_argument(
        "--wavelengths", nargs="+", default=["CuKa", "MoKa"], help="named sources or Å values"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MP structures CSV (cif column)")
    parser.add_argument("--baseline-src", type=Path, help="src directory of the code to compare against")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each code with --baseline-src")
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    raw_argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(raw_argv)
    if not args.data.exists():
        print(f"error: {args.data} not found (the shared MP structure set is needed)", file=sys.stderr)
        return 2
    if args.worker:
        print(json.dumps(measure(args)))
        return 0
    if args.baseline_src is not None:
        passed = _drop_option(_drop_option(_drop_option(raw_argv, "--json"), "--baseline-src"), "--rounds")
        report = compare_with_baseline(args, passed)
    else:
        report = measure(args)
        sizes = report["sizes"]
        print(report["header"])
        print(
            f"{report['n']} structures, atoms per cell median {statistics.median(sizes):g}, max {max(sizes)}"
        )
        print(markdown_table(report["results"], report["n"]))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def _drop_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--opt VALUE`` or ``--opt=VALUE``)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
