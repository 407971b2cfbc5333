"""Throughput, exactness and peak memory of batch_peaks + render_profiles (a script, not a test).

    .venv/bin/python benchmarks/render_profiles.py                 # 256 × 8,192, 100/300/600 peaks
    .venv/bin/python benchmarks/render_profiles.py --peaks 300 --profiles alphadiffract --json out.json
    .venv/bin/python benchmarks/render_profiles.py --baseline-src /tmp/before/src   # also time older code

Each (profile, peak count) runs in a fresh subprocess so ``ru_maxrss`` is that configuration's own
peak resident memory (it includes the Python + torch baseline, reported in brackets). With
``--baseline-src DIR`` every configuration is also run with ``PYTHONPATH=DIR`` (another checkout of the
package), the two alternating ``--rounds`` times; patterns/s is the best of all repeats of each, and the
table shows new/baseline. Max error: the first 4 patterns are compared with a dense float64 evaluation (every
peak's bin integral [F(b) − F(a)]/Δ at every grid point, no window; peaks in chunks, < 100 MB), as
max |y − y_ref| / max y_ref. Peaks are synthetic: d uniform over the range visible at 20 keV in 2θ 5–20°
(AlphaDiffract's view), m·|F|² uniform in (0, 1). Profiles:

- ``alphadiffract``: TCH pseudo-Voigt from Caglioti U 0–3, V −1–0, W 0–4 centidegrees², crystallite
  size 0.1–1 µm, microstrain 500–10,000 (AlphaDiffract Table 5), one draw per pattern;
- ``caglioti_pv``: Caglioti Gaussian width with η ~ U(0, 1) and asymmetry ρ ~ U(−0.5, 0.5);
- ``gaussian``: constant FWHM 0.02°.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import Tensor

from pxrdbench.physics.peak_batch import PeakBatch, batch_peaks
from pxrdbench.physics.profiles import ProfileParams, peak_shapes, render_profiles
from pxrdbench.physics.wavelength import parse_wavelength
from pxrdbench.views.profile_ops import SampleProfile

WAVELENGTH = parse_wavelength("20keV")
TWO_THETA = (5.0, 20.0)
CHECKED_PATTERNS = 4


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


def dense_reference(peaks: PeakBatch, grid: Tensor, profile: ProfileParams, chunk: int = 16) -> Tensor:
    """Float64 Σ_k I_k [F_k(x_i + Δ/2) − F_k(x_i − Δ/2)]/Δ over every peak and grid point (B, N), no window.

    F is the split pseudo-Voigt CDF written out here: w = u/(1 ± ρ) on each side of the peak,
    F(u) = (1 ± ρ)[η atan(2w)/π + (1 − η) erf(2 sqrt(ln2) w)/2], u = (2θ − 2θ_k)/Γ.
    """
    fwhm, eta, rho = peak_shapes(peaks, profile)
    g = grid.to(torch.float64)
    step = float(g[-1] - g[0]) / (g.numel() - 1)
    edges = float(g[0]) + step * (torch.arange(g.numel() + 1, dtype=torch.float64) - 0.5)
    rho = rho.expand_as(fwhm)
    out = torch.zeros(peaks.batch_size, g.numel(), dtype=torch.float64)
    for lo in range(0, peaks.n_slots, chunk):
        sl = slice(lo, lo + chunk)
        u = (edges - peaks.two_theta[:, sl, None].double()) / fwhm[:, sl, None]
        side = 1.0 + torch.sign(u) * rho[:, sl, None]
        w, mix = u / side, eta[:, sl, None]
        cdf = side * (
            mix * torch.atan(2 * w) / math.pi + (1 - mix) * torch.erf(2 * math.sqrt(math.log(2)) * w) / 2
        )
        out += (torch.diff(cdf, dim=2) * peaks.intensity[:, sl, None].double()).sum(1) / step
    return out


def run_one(profile: str, batch: int, points: int, n_peaks: int, repeats: int, threads: int) -> dict:
    """Time ``repeats`` calls (after one warm-up) in this process; return timings, error and peak RSS."""
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
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    k = min(CHECKED_PATTERNS, batch)
    head = PeakBatch(peaks.two_theta[:k], peaks.intensity[:k])
    ref = dense_reference(head, grid, _head_params(params, k))
    error = float(((out[:k].double() - ref).abs().amax(1) / ref.amax(1)).max())
    return {
        "profile": profile, "peaks": n_peaks, "first_s": times[0], "median_s": statistics.median(times[1:]),
        "best_s": min(times[1:]), "max_error": error, "rss_before_mb": rss_before, "max_rss_mb": rss,
    }  # fmt: skip


def _head_params(params: ProfileParams, k: int) -> ProfileParams:
    """``params`` restricted to the first ``k`` patterns (per-pattern tensors are sliced)."""
    fields = {name: getattr(params, name) for name in params.__dataclass_fields__}
    for name, value in fields.items():
        if isinstance(value, torch.Tensor) and value.ndim == 1 and value.numel() > 1:
            fields[name] = value[:k]
    return ProfileParams(**fields)


def _subprocess(args: argparse.Namespace, profile: str, n_peaks: int, src: str | None) -> dict:
    """Run one configuration in a fresh interpreter (``PYTHONPATH=src`` first when given)."""
    cmd = [sys.executable, __file__, "--one", "--profiles", profile, "--peaks", str(n_peaks)]
    cmd += ["--batch", str(args.batch), "--points", str(args.points), "--repeats", str(args.repeats)]
    cmd += ["--threads", str(args.threads)]
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--points", type=int, default=8192)
    parser.add_argument("--peaks", type=int, nargs="+", default=[100, 300, 600])
    parser.add_argument("--profiles", nargs="+", default=["alphadiffract", "caglioti_pv", "gaussian"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2, help="alternations new/baseline per configuration")
    parser.add_argument("--baseline-src", default=None, help="also time the package found in this directory")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--one", action="store_true", help="internal: run one configuration, print JSON")
    args = parser.parse_args()
    if args.one:
        row = run_one(args.profiles[0], args.batch, args.points, args.peaks[0], args.repeats, args.threads)
        print(json.dumps(row))
        return
    run = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "torch": torch.__version__,
        "threads": args.threads, "load": list(os.getloadavg()), "batch": args.batch, "points": args.points,
        "baseline_src": args.baseline_src,
    }  # fmt: skip
    print(f"batch {args.batch} × {args.points} points, 2θ {TWO_THETA}, 20 keV, torch {torch.__version__}, "
          f"{args.threads} threads, load {run['load'][0]:.1f}\n")  # fmt: skip
    head = ["profile", "peaks", "best (s)", "median (s)", "patterns/s", "max error", "peak RSS (MB)"]
    if args.baseline_src:
        head += ["baseline patterns/s", "new/baseline", "baseline max error"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    result: dict = {"run": run, "profiles": {}, "max_error": {}}
    if args.baseline_src:
        result["baseline"] = {"profiles": {}, "max_error": {}}
    for profile in args.profiles:
        for n_peaks in args.peaks:
            new, base = [], []
            for _ in range(args.rounds if args.baseline_src else 1):
                new.append(_subprocess(args, profile, n_peaks, None))
                if args.baseline_src:
                    base.append(_subprocess(args, profile, n_peaks, args.baseline_src))
            best = min(r["best_s"] for r in new)
            rate, r = args.batch / best, new[-1]
            result["profiles"].setdefault(profile, {})[str(n_peaks)] = rate
            result["max_error"].setdefault(profile, {})[str(n_peaks)] = r["max_error"]
            cells = [profile, n_peaks, f"{best:.3f}", f"{statistics.median(x['median_s'] for x in new):.3f}"]
            cells += [f"{rate:.0f}", f"{r['max_error']:.1e}"]
            cells += [f"{max(x['max_rss_mb'] for x in new):.0f} (baseline {r['rss_before_mb']:.0f})"]
            if base:
                base_rate = args.batch / min(x["best_s"] for x in base)
                result["baseline"]["profiles"].setdefault(profile, {})[str(n_peaks)] = base_rate
                result["baseline"]["max_error"].setdefault(profile, {})[str(n_peaks)] = base[-1]["max_error"]
                cells += [f"{base_rate:.0f}", f"{rate / base_rate:.2f}", f"{base[-1]['max_error']:.1e}"]
            print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)
    run["load_end"] = list(os.getloadavg())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
