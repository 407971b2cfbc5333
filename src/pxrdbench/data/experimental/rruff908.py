"""The RRUFF-908 experimental set (Salgado et al., npj Comput Mater 2023), development half.

RRUFF powder patterns (Cu Kα scans, background-corrected) on 2θ = 5.00–89.99° in 0.01° steps (8,500 points,
max-normalised to 1000) with crystal-system (0–6) and space-group (1–230) labels. The npz holds the arrays
``two_theta`` (P,), ``intensity`` (N, P), ``crystal_system`` (N,), ``space_group`` (N,), ``source_index``
(N,). It carries no RRUFF ids, cells or structures, so it serves crystal-system and space-group classification
only.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pxrdbench.errors import DatasetError, PatternError
from pxrdbench.physics.wavelength import NAMED_SOURCES, Wavelength

from .pattern import ExperimentalPattern, crystal_system_index, make_pattern

RELATIVE_PATH = Path("rruff908") / "rruff908_dev.npz"
"""Location of the file under a data root (``$PXRDBENCH_DATA`` or the shared data folder)."""

REQUIRED_KEYS: tuple[str, ...] = ("two_theta", "intensity", "crystal_system", "space_group", "source_index")
WAVELENGTH: Wavelength = NAMED_SOURCES["CuKa"]
"""RRUFF powder scans are Cu Kα (doublet, mean 1.54184 Å); the npz itself stores no wavelength."""

ORIGIN = (
    "GitHub AGI-init/XRDs, Data/Generated/XRDs_RRUFF/*.npy at commit 94ab7847 "
    "(pickled dicts; convert to a plain npz with the keys " + ", ".join(REQUIRED_KEYS) + ")"
)


@dataclass(frozen=True)
class Rruff908Arrays:
    """The set as stacked arrays, for fast batched evaluation.

    Attributes:
        two_theta: (P,) shared 2θ grid in degrees.
        intensity: (N, P) float32 patterns, max-normalised to 1000.
        crystal_system: (N,) int index into :data:`~pxrdbench.data.experimental.pattern.CRYSTAL_SYSTEMS`.
        space_group: (N,) int space-group numbers 1–230.
        source_index: (N,) int index of each pattern's file in the source folder.
        wavelength: Cu Kα.
        path: the npz read.
    """

    two_theta: np.ndarray
    intensity: np.ndarray
    crystal_system: np.ndarray
    space_group: np.ndarray
    source_index: np.ndarray
    wavelength: Wavelength
    path: Path


def candidate_paths() -> list[Path]:
    """Where the npz is looked for, in order: ``$PXRDBENCH_DATA``, then ``<repo>/../shared/data``."""
    out: list[Path] = []
    if env := os.environ.get("PXRDBENCH_DATA"):
        out.append(Path(env) / RELATIVE_PATH)
    repo_root = Path(__file__).resolve().parents[4]
    out.append(repo_root.parent / "shared" / "data" / RELATIVE_PATH)
    out.append(Path.cwd().parent / "shared" / "data" / RELATIVE_PATH)
    return list(dict.fromkeys(out))


def default_path() -> Path:
    """The first existing candidate path; :class:`DatasetError` saying where to put the file otherwise."""
    tried = candidate_paths()
    for path in tried:
        if path.is_file():
            return path
    raise DatasetError(
        "RRUFF-908 file not found; looked in: "
        + ", ".join(str(p) for p in tried)
        + f". Put rruff908_dev.npz at $PXRDBENCH_DATA/{RELATIVE_PATH.as_posix()}. It comes from {ORIGIN}."
    )


def rruff908_arrays(path: str | Path | None = None) -> Rruff908Arrays:
    """Read and check the npz; :class:`PatternError` naming the file for missing keys or bad shapes/labels."""
    p = Path(path) if path is not None else default_path()
    if not p.is_file():
        raise DatasetError(f"{p}: RRUFF-908 file not found. It comes from {ORIGIN}.")
    try:
        with np.load(p, allow_pickle=False) as data:
            missing = [k for k in REQUIRED_KEYS if k not in data.files]
            if missing:
                raise PatternError(
                    str(p),
                    f"missing array key(s) {missing}; found {sorted(data.files)}, need {list(REQUIRED_KEYS)}",
                )
            arrays = {k: np.asarray(data[k]) for k in REQUIRED_KEYS}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        if isinstance(exc, PatternError):
            raise
        raise PatternError(str(p), f"not a readable npz file ({exc})") from exc
    tt, y = arrays["two_theta"], arrays["intensity"]
    n = y.shape[0] if y.ndim == 2 else -1
    if tt.ndim != 1 or y.ndim != 2 or y.shape[1] != tt.size:
        raise PatternError(str(p), f"need two_theta (P,) and intensity (N, P); got {tt.shape} and {y.shape}")
    for key in ("crystal_system", "space_group", "source_index"):
        if arrays[key].shape != (n,):
            raise PatternError(str(p), f"{key} must have shape ({n},), got {arrays[key].shape}")
    cs, sg = arrays["crystal_system"].astype(int), arrays["space_group"].astype(int)
    if cs.min(initial=0) < 0 or cs.max(initial=0) > 6 or sg.min(initial=1) < 1 or sg.max(initial=1) > 230:
        raise PatternError(str(p), "crystal_system must be 0–6 and space_group 1–230")
    return Rruff908Arrays(tt.astype(float), y, cs, sg, arrays["source_index"].astype(int), WAVELENGTH, p)


def load_rruff908(path: str | Path | None = None) -> list[ExperimentalPattern]:
    """All patterns of the set, with Cu Kα wavelength and ``crystal_system`` / ``space_group`` labels.

    Ids are ``"rruff908:<source_index>"``. A label pair whose crystal system disagrees with the space group's
    is kept as stored and flagged in ``provenance["notes"]``.
    """
    arrays = rruff908_arrays(path)
    patterns: list[ExperimentalPattern] = []
    for row in range(arrays.intensity.shape[0]):
        cs, sg = int(arrays.crystal_system[row]), int(arrays.space_group[row])
        notes = ["Cu Kα RRUFF scan, background-corrected and max-normalised to 1000 (Salgado et al. 2023)"]
        if crystal_system_index(sg) != cs:
            notes.append(f"stored crystal_system {cs} disagrees with space group {sg}")
        provenance = {
            "path": str(arrays.path),
            "format": "rruff908_npz",
            "index": row,
            "source_index": int(arrays.source_index[row]),
            "notes": notes,
        }
        patterns.append(
            make_pattern(
                f"rruff908:{int(arrays.source_index[row])}",
                arrays.two_theta,
                arrays.intensity[row].astype(float),
                arrays.wavelength,
                labels={"crystal_system": cs, "space_group": sg},
                provenance=provenance,
            )
        )
    return patterns
