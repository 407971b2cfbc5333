"""``pxrdbench simulate PATH``: peak lists (and optionally rendered profiles) for CIFs.

PATH is a CIF file, a directory of CIFs, or a CSV (optionally gzipped) with a ``cif`` column. Each structure gives one
JSON object (JSON lines for several). A bad entry is reported on stderr with its file/row and cause and the others
continue; exit status 0 when all succeed, 1 when some failed, 2 when none did.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a CIF file, a directory of CIFs, or a CSV with a 'cif' column")
    parser.add_argument(
        "--wavelength",
        required=True,
        help="CuKa, CuKa1, MoKa, ... (named source), a value in Å (1.5406) or an energy (20keV); no default",
    )
    parser.add_argument("--two-theta", nargs=2, type=float, default=(5.0, 90.0), metavar=("MIN", "MAX"))
    parser.add_argument("--ka2", action="store_true", help="render a named Kα source as its Kα1/Kα2 doublet")
    parser.add_argument(
        "--json", dest="json_out", metavar="OUT|-", help="write peaks as JSON lines ('-' = stdout)"
    )
    parser.add_argument(
        "--profile-csv", metavar="OUT", help="write rendered profiles (2θ column + one per structure)"
    )
    parser.add_argument("--fwhm", type=float, default=0.1, help="Gaussian FWHM in degrees for --profile-csv")
    parser.add_argument("--step", type=float, default=0.01, help="2θ step in degrees for --profile-csv")


def peaks_to_json(record_id: str, structure: Any, peak_list: Any, space_group: str) -> dict[str, Any]:
    """The JSON object of one structure's peaks (intensity on the 0–100 scale)."""
    return {
        "id": record_id,
        "formula": structure.composition.reduced_formula,
        "space_group": space_group,
        "wavelength_angstrom": round(float(peak_list.wavelength_angstrom), 6),
        "two_theta": [round(float(x), 5) for x in peak_list.two_theta],
        "intensity": [round(float(x), 4) for x in peak_list.intensity],
        "d": [round(float(x), 6) for x in peak_list.d],
        "hkl": [[int(v) for v in row] for row in peak_list.hkl],
    }


def run(args: argparse.Namespace) -> int:
    from pxrdbench.data.records import SourceFailure
    from pxrdbench.data.structure_io import iter_structure_inputs
    from pxrdbench.errors import PxrdbenchError
    from pxrdbench.physics.peaks import simulate
    from pxrdbench.physics.wavelength import parse_wavelength
    from pxrdbench.progress import progress_iter
    from pxrdbench.symmetry.labels import symmetry_labels

    wavelength = parse_wavelength(args.wavelength, source="--wavelength")
    lo, hi = args.two_theta
    out = None
    if args.json_out:
        out = sys.stdout if args.json_out == "-" else open(args.json_out, "w", encoding="utf-8")  # noqa: SIM115
    ok, failed, profiles = 0, 0, []
    try:
        for entry in progress_iter(iter_structure_inputs(args.path), description="simulating"):
            if isinstance(entry, SourceFailure):
                failed += 1
                print(f"pxrdbench simulate: skipped {entry.id}: {entry.reason}", file=sys.stderr)
                continue
            try:
                peak_list = simulate(entry.structure, wavelength, (lo, hi), ka2=args.ka2, source=entry.id)
                try:
                    sg = symmetry_labels(entry.structure, source=entry.id).space_group_symbol
                except PxrdbenchError:
                    sg = "unknown"
            except PxrdbenchError as exc:
                failed += 1
                print(f"pxrdbench simulate: skipped {entry.id}: {exc}", file=sys.stderr)
                continue
            ok += 1
            if out is not None:
                out.write(json.dumps(peaks_to_json(entry.id, entry.structure, peak_list, sg)) + "\n")
            if args.profile_csv:
                profiles.append((entry.id, peak_list))
    finally:
        if out is not None and out is not sys.stdout:
            out.close()
    if args.profile_csv and profiles:
        _write_profiles(args.profile_csv, profiles, lo, hi, args.step, args.fwhm, wavelength.angstrom)
    if out is None and not args.profile_csv:
        print(f"simulated {ok} structure(s); pass --json - to print the peaks", file=sys.stderr)
    if failed:
        print(f"pxrdbench simulate: {ok} succeeded, {failed} failed", file=sys.stderr)
    return 0 if failed == 0 else (1 if ok else 2)


def _write_profiles(
    path: str, profiles: list, lo: float, hi: float, step: float, fwhm: float, lam: float
) -> None:
    """Render every peak list with a Gaussian of constant FWHM on one grid and write a CSV (max 100 each)."""
    import numpy as np
    import torch

    from pxrdbench.physics.peak_batch import PeakBatch
    from pxrdbench.physics.profiles import ProfileParams, render_profiles

    grid = torch.arange(lo, hi + step / 2, step, dtype=torch.float64).float()
    width = max(len(p.two_theta) for _, p in profiles)
    tt = torch.zeros(len(profiles), width)
    inten = torch.zeros(len(profiles), width)
    for i, (_, p) in enumerate(profiles):
        tt[i, : len(p.two_theta)] = torch.as_tensor(p.two_theta, dtype=torch.float32)
        inten[i, : len(p.intensity)] = torch.as_tensor(p.intensity, dtype=torch.float32)
    y = render_profiles(
        PeakBatch(two_theta=tt, intensity=inten),
        grid,
        ProfileParams(shape="gaussian", fwhm=fwhm, wavelength_angstrom=lam),
    )
    y = 100.0 * y / y.amax(dim=1, keepdim=True).clamp_min(1e-12)
    header = "two_theta," + ",".join(pid.replace(",", "_") for pid, _ in profiles)
    table = np.column_stack([grid.numpy(), y.T.numpy()])
    np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.5g")
