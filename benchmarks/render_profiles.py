"""Throughput and peak memory of batch_peaks + render_profiles (a script, not a test).

    .venv/bin/python benchmarks/render_profiles.py                 # 256 × 8,192, 100/300/600 peaks
    .venv/bin/python benchmarks/render_profiles.py --peaks 300 --profiles alphadiffract

Each (profile, peak count) runs in a fresh subprocess so ``ru_maxrss`` is that configuration's own
peak resident memory (it includes the Python + torch baseline, reported in the first row). Peaks are
synthetic: d uniform over the range visible at 20 keV in 2θ 5–20° (AlphaDiffract's view), m·|F|²
uniform in (0, 1). Profiles:

- ``alphadiffract``: TCH pseudo-Voigt from Caglioti U 0–3, V −1–0, W 0–4 centidegrees², crystallite
  size 0.1–1 µm, microstrain 500–10,000 (AlphaDiffract Table 5), one draw per pattern;
- ``caglioti_pv``: Caglioti Gaussian width with η ~ U(0, 1) and asymmetry ρ ~ U(−0.5, 0.5);
- ``gaussian``: constant FWHM 0.02°.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch

from pxrdbench.physics.peak_batch import batch_peaks
from pxrdbench.physics.profiles import ProfileParams, render_profiles
from pxrdbench.physics.wavelength import parse_wavelength
from pxrdbench.views.profile_ops import SampleProfile

WAVELENGTH = parse_wavelength("20keV")
TWO_THETA = (5.0, 20.0)


def profile_for(name: str, batch: int, gen: torch.Generator) -> ProfileParams:
    """The benchmark's profile parameters for ``name`` (see the module docstring)."""
    if name == "alphadiffract":
        sampler = SampleProfile(
            U_range=(0.0, 3e-4), V_range=(-1e-4, 0.0), W_range=(0.0, 4e-4), size_range=(1000.0, 10000.0),
            strain_range=(5e-4, 1e-2), wavelength_angstrom=WAVELENGTH.angstrom,
        )  # fmt: skip
        return sampler(batch, gen)
    if name == "caglioti_pv":
        sampler = SampleProfile(
            U_range=(0.0, 3e-4), V_range=(-1e-4, 0.0), W_range=(1e-5, 4e-4), eta_range=(0.0, 1.0),
            asymmetry_range=(-0.5, 0.5),
        )  # fmt: skip
        return sampler(batch, gen)
    if name == "gaussian":
        return ProfileParams("gaussian", fwhm=0.02)
    raise SystemExit(f"unknown profile {name!r}")


def run_one(profile: str, batch: int, points: int, n_peaks: int, repeats: int, threads: int) -> dict:
    """Time ``repeats`` calls (after one warm-up) in this process; return timings and peak RSS."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    lam = WAVELENGTH.angstrom
    d_max = lam / (2 * torch.sin(torch.deg2rad(torch.tensor(TWO_THETA[0] / 2)))).item()
    d_min = lam / (2 * torch.sin(torch.deg2rad(torch.tensor(TWO_THETA[1] / 2)))).item()
    d = d_min + (d_max - d_min) * torch.rand(batch, n_peaks, generator=gen, dtype=torch.float64)
    m_f2 = torch.rand(batch, n_peaks, generator=gen, dtype=torch.float64)
    grid = torch.linspace(*TWO_THETA, points)
    params = profile_for(profile, batch, gen)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        peaks = batch_peaks(d, m_f2, WAVELENGTH, TWO_THETA)
        out = render_profiles(peaks, grid, params)
        times.append(time.perf_counter() - start)
    assert out.shape == (batch, points) and bool(torch.isfinite(out).all())
    best, median = min(times[1:]), statistics.median(times[1:])
    return {
        "profile": profile, "peaks": n_peaks, "first_s": times[0], "median_s": median, "best_s": best,
        "patterns_per_s": batch / median, "rss_before_mb": rss_before,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--points", type=int, default=8192)
    parser.add_argument("--peaks", type=int, nargs="+", default=[100, 300, 600])
    parser.add_argument("--profiles", nargs="+", default=["alphadiffract", "caglioti_pv", "gaussian"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", action="store_true", help="internal: run one configuration, print JSON")
    args = parser.parse_args()
    if args.one:
        row = run_one(args.profiles[0], args.batch, args.points, args.peaks[0], args.repeats, args.threads)
        print(json.dumps(row))
        return
    print(f"batch {args.batch} × {args.points} points, 2θ {TWO_THETA}, 20 keV, torch {torch.__version__}, "
          f"{args.threads} threads\n")  # fmt: skip
    head = ["profile", "peaks/pattern", "first call (s)", "median (s)", "best (s)", "patterns/s (best)"]
    print("| " + " | ".join([*head, "peak RSS (MB)"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for profile in args.profiles:
        for n_peaks in args.peaks:
            cmd = [sys.executable, __file__, "--one", "--profiles", profile, "--peaks", str(n_peaks)]
            cmd += ["--batch", str(args.batch), "--points", str(args.points), "--repeats", str(args.repeats)]
            cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            cells = [
                r["profile"],
                r["peaks"],
                f"{r['first_s']:.2f}",
                f"{r['median_s']:.2f}",
                f"{r['best_s']:.2f}",
            ]
            cells += [
                f"{args.batch / r['best_s']:.0f}",
                f"{r['max_rss_mb']:.0f} (baseline {r['rss_before_mb']:.0f})",
            ]
            print("| " + " | ".join(str(c) for c in cells) + " |")


if __name__ == "__main__":
    main()
