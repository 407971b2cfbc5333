"""Plain column text patterns: ``.xy``, ``.xye``, ``.csv``, ``.dat``, ``.txt``.

Columns: 2θ in degrees, intensity, and optionally an esd of the intensity (third column, kept in provenance).
Separators: whitespace, comma, tab or semicolon (with a semicolon, a decimal comma ``12,5`` is accepted).
Lines starting with ``#``, ``!``, ``%`` or ``;`` are comments; non-numeric lines before the first data row are
a header and skipped. Such files carry no wavelength: it comes from the caller only, otherwise it is None.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pxrdbench.errors import PatternError
from pxrdbench.physics.wavelength import Wavelength, parse_wavelength

from .pattern import ExperimentalPattern, make_pattern, read_text

COMMENT_PREFIXES = ("#", "!", "%", ";")
EXTENSIONS: tuple[str, ...] = (".xy", ".xye", ".csv", ".dat", ".txt")


def split_row(line: str) -> list[str]:
    """Fields of one data line; ``;``-separated lines may use a decimal comma."""
    if ";" in line:
        return [f.strip().replace(",", ".") for f in line.split(";") if f.strip()]
    return [f for f in re.split(r"[,\s]+", line.strip()) if f]


def read_columns(text: str, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """2θ, intensity, esd (or None) and skipped header lines of a column text."""
    rows: list[list[float]] = []
    header: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(COMMENT_PREFIXES):
            continue
        fields = split_row(line)
        try:
            values = [float(f) for f in fields]
        except ValueError as exc:
            if not rows:
                header.append(line)
                continue
            raise PatternError(source, f"line {number}: not numbers: {line!r}") from exc
        if len(values) < 2:
            raise PatternError(source, f"line {number}: need 2θ and intensity, got {line!r}")
        rows.append(values[:3])
    if not rows:
        raise PatternError(source, "no numeric data rows (2θ, intensity) found")
    widths = {len(r) for r in rows}
    tt = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows])
    esd = np.array([r[2] for r in rows]) if widths == {3} else None
    return tt, y, esd, header


def load_columns(
    path: str | Path, *, wavelength: Wavelength | float | str | None = None
) -> list[ExperimentalPattern]:
    """Read a two- (or three-) column pattern; id is the file stem, wavelength the caller's (or None)."""
    source = str(path)
    tt, y, esd, header = read_columns(read_text(path), source)
    wl = parse_wavelength(wavelength, source=f"{source} (wavelength=)") if wavelength is not None else None
    if esd is not None and tt.size > 1 and np.all(np.diff(tt) < 0):
        esd = esd[::-1].copy()  # make_pattern reverses a descending scan; keep esd aligned
    notes = [] if wl is not None else ["column files carry no wavelength and none was given"]
    provenance = {
        "path": source,
        "format": "columns",
        "header": header,
        "esd": esd,
        "notes": notes,
    }
    return [make_pattern(Path(path).stem, tt, y, wl, provenance=provenance)]
