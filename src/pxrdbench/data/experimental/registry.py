"""Format name / file extension → loader, and :func:`load_pattern` that picks one by extension and content.

Detection: ``.xrdml`` → XRDML; ``.json`` → opXRD; ``.cif`` → Rietveld pdCIF; ``.npz`` → RRUFF-908;
``.txt`` → RRUFF XY when the text has ``##`` header lines, a RRUFF DIF peak list is refused (it is not a
pattern: use :func:`~pxrdbench.data.experimental.rruff_raw.load_rruff_dif`), anything else → columns;
``.xy`` / ``.xye`` / ``.csv`` / ``.dat`` → columns. Other extensions raise :class:`InputError`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pxrdbench.errors import InputError, PatternError, did_you_mean
from pxrdbench.physics.wavelength import Wavelength

from .columns import load_columns
from .opxrd import load_opxrd
from .pattern import ExperimentalPattern
from .rietveld_cif import load_rietveld_cif
from .rruff908 import load_rruff908
from .rruff_raw import load_rruff_xy
from .xrdml import load_xrdml

Loader = Callable[..., list[ExperimentalPattern]]
WavelengthLike = Wavelength | float | str | None


def _load_rruff908(path: str | Path, *, wavelength: WavelengthLike = None) -> list[ExperimentalPattern]:
    """RRUFF-908 npz; its wavelength is fixed (Cu Kα), so a caller's value is not used."""
    return load_rruff908(path)


LOADERS: dict[str, Loader] = {
    "xrdml": load_xrdml,
    "opxrd": load_opxrd,
    "rietveld_cif": load_rietveld_cif,
    "rruff908": _load_rruff908,
    "rruff_xy": load_rruff_xy,
    "columns": load_columns,
}
"""Format name → ``loader(path, *, wavelength=None) -> list[ExperimentalPattern]``."""

EXTENSIONS: dict[str, str] = {
    ".xrdml": "xrdml",
    ".json": "opxrd",
    ".cif": "rietveld_cif",
    ".npz": "rruff908",
    ".txt": "columns",
    ".xy": "columns",
    ".xye": "columns",
    ".csv": "columns",
    ".dat": "columns",
}
"""File extension (lower case) → format name; ``.txt`` is refined by :func:`detect_format`."""


def list_formats() -> list[str]:
    """Names of the registered formats."""
    return sorted(LOADERS)


def detect_format(path: str | Path) -> str:
    """The format name of a file from its extension, and for ``.txt`` its first lines."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in EXTENSIONS:
        known = ", ".join(sorted(EXTENSIONS))
        raise InputError(str(p), f"unknown pattern file extension {ext or '(none)'!r}; known: {known}")
    name = EXTENSIONS[ext]
    if ext == ".txt" and p.is_file():
        with p.open(encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
        upper = head.upper()
        if "CELL PARAMETERS:" in upper and "2-THETA" in upper and "##" not in head:
            raise PatternError(
                str(p), "this is a RRUFF DIF peak list, not a measured pattern; read it with load_rruff_dif"
            )
        if any(line.lstrip().startswith("##") for line in head.splitlines()):
            name = "rruff_xy"
    return name


def load_pattern(
    path: str | Path, *, wavelength: WavelengthLike = None, fmt: str | None = None
) -> list[ExperimentalPattern]:
    """Load every pattern in a file, choosing the loader by ``fmt`` or by :func:`detect_format`.

    ``wavelength`` is used when the file states none (columns files never do); see each loader.
    """
    if fmt is not None and fmt not in LOADERS:
        raise did_you_mean(fmt, list(LOADERS), "pattern format")
    name = fmt or detect_format(path)
    p = Path(path)
    if not p.is_file():
        raise InputError(str(p), "file does not exist")
    return LOADERS[name](p, wavelength=wavelength)
