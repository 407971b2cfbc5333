"""Raw RRUFF powder files from rruff.info: XY scans and DIF peak lists.

XY files (``*__Powder__Xray_Data_XY_RAW__*.txt`` / ``*_XY_Processed__*.txt``) are text: header lines
``##KEY=VALUE`` (``##NAMES=``, ``##RRUFFID=R050031``, ``##IDEAL CHEMISTRY=``, ``##LOCALITY=``, ``##STATUS=``,
...), then two columns "2θ (degrees), intensity" separated by a comma or whitespace, closed by ``##END=``. The
wavelength is usually not in the XY file but in the matching DIF file (``*__DIF_File__*.txt``), which holds
``CELL PARAMETERS:  a b c alpha beta gamma``, ``SPACE GROUP: P2_1/c``, ``X-RAY WAVELENGTH: 1.541838`` and a
peak table ``2-THETA  INTENSITY  D-SPACING  H  K  L  Multiplicity``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.errors import InputError, PatternError
from pxrdbench.physics.wavelength import Wavelength, parse_wavelength

from .pattern import ExperimentalPattern, crystal_system_index, make_pattern, read_text, resolve_wavelength
from .pattern import space_group_number as _space_group_number

_FLOAT = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ELEMENT = re.compile(r"[A-Z][a-z]?")


def _rruff_formula(ideal_chemistry: str) -> tuple[str, list[str]]:
    """RRUFF chemistry markup (``Ca(Mg,Fe^2+^)Si_2_O_6_``) → plain formula text and its element symbols."""
    from pymatgen.core.periodic_table import Element

    plain = re.sub(r"\^[^^]*\^", "", ideal_chemistry).replace("_", "").strip()
    elements = sorted({s for s in _ELEMENT.findall(plain) if Element.is_valid_symbol(s)})
    return plain, elements


def _numbers(line: str) -> list[float] | None:
    """The whitespace-separated numbers of a line, or None when it is empty or holds anything else."""
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        return None
    return values or None


def load_rruff_dif(path: str | Path) -> dict[str, Any]:
    """Read a RRUFF DIF file.

    Returns a dict with ``path``; ``cell`` (a, b, c in Å, α, β, γ in degrees) or None; ``space_group_symbol``;
    ``space_group`` (1–230, via the spglib symbol tables) and ``crystal_system`` (0–6) or None; ``wavelength``
    (:class:`Wavelength` or None); ``peaks``: dict of arrays ``two_theta`` (degrees), ``intensity``,
    ``d_spacing`` (Å), ``hkl`` (n, 3) and ``multiplicity`` (or None when the column is absent).
    """
    text = read_text(path)
    source = str(path)
    out: dict[str, Any] = {"path": source, "cell": None, "space_group_symbol": None, "space_group": None}
    out.update({"crystal_system": None, "wavelength": None})
    rows: list[list[float]] = []
    in_table = False
    for raw in text.splitlines():
        line = raw.strip()
        upper = line.upper()
        if upper.startswith("CELL PARAMETERS:"):
            values = [float(v) for v in re.findall(_FLOAT, line.split(":", 1)[1])]
            if len(values) < 6:
                raise PatternError(source, f"CELL PARAMETERS needs 6 numbers, got {line!r}")
            out["cell"] = tuple(values[:6])
        elif upper.startswith("SPACE GROUP:"):
            out["space_group_symbol"] = line.split(":", 1)[1].strip()
        elif upper.startswith("X-RAY WAVELENGTH:"):
            value = line.split(":", 1)[1].strip()
            out["wavelength"] = parse_wavelength(value, source=f"{source} (X-RAY WAVELENGTH)")
        elif upper.startswith("2-THETA"):
            in_table = True
        elif in_table:
            values = _numbers(line)
            if values is None:
                in_table = False
            else:
                rows.append(values)
    if out["space_group_symbol"]:
        try:
            sg = _space_group_number(out["space_group_symbol"])
            out["space_group"], out["crystal_system"] = sg, crystal_system_index(sg)
        except InputError:
            out["space_group"] = None
    widths = {len(r) for r in rows}
    if rows and (len(widths) != 1 or min(widths) < 6):
        raise PatternError(source, f"DIF peak table rows need 6 or 7 columns, got widths {sorted(widths)}")
    table = np.asarray(rows, dtype=float).reshape(len(rows), -1) if rows else np.zeros((0, 7))
    out["peaks"] = {
        "two_theta": table[:, 0],
        "intensity": table[:, 1],
        "d_spacing": table[:, 2],
        "hkl": table[:, 3:6].astype(int),
        "multiplicity": table[:, 6].astype(int) if table.shape[1] >= 7 else None,
    }
    return out


def _parse_xy(text: str, source: str) -> tuple[dict[str, str], np.ndarray, np.ndarray]:
    """Header dict (upper-case keys) and the two data columns of a RRUFF XY text."""
    header: dict[str, str] = {}
    xs: list[float] = []
    ys: list[float] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("##"):
            key, _, value = line[2:].partition("=")
            if key.strip().upper() == "END":
                break
            header[key.strip().upper()] = value.strip()
            continue
        fields = [f for f in re.split(r"[,\s]+", line) if f]
        if len(fields) < 2:
            raise PatternError(source, f"line {number}: expected '2θ, intensity', got {line!r}")
        try:
            xs.append(float(fields[0]))
            ys.append(float(fields[1]))
        except ValueError as exc:
            raise PatternError(source, f"line {number}: not numbers: {line!r}") from exc
    if not xs:
        raise PatternError(source, "no data rows (2θ, intensity) found")
    return header, np.asarray(xs), np.asarray(ys)


def load_rruff_xy(
    path: str | Path,
    *,
    wavelength: Wavelength | float | str | None = None,
    dif: str | Path | dict[str, Any] | None = None,
) -> list[ExperimentalPattern]:
    """Read one RRUFF XY powder scan; ``dif`` (a DIF path or :func:`load_rruff_dif` result) adds cell labels.

    Wavelength: the XY header's ``##X-RAY WAVELENGTH=`` if present, else the DIF's, else the caller's, else
    None. Labels: ``formula`` and ``elements`` from ``##IDEAL CHEMISTRY``, ``mineral`` from ``##NAMES``; from
    the DIF also ``space_group``, ``crystal_system`` and ``lattice``. The id is ``"rruff:<RRUFFID>"`` or the
    file stem.
    """
    source = str(path)
    header, tt, y = _parse_xy(read_text(path), source)
    dif_info = load_rruff_dif(dif) if isinstance(dif, (str, Path)) else dif
    file_wl: Wavelength | None = None
    for key, value in header.items():
        if "WAVELENGTH" in key and value:
            file_wl = parse_wavelength(value, source=f"{source} (##{key})")
    if file_wl is None and dif_info is not None:
        file_wl = dif_info.get("wavelength")
    notes: list[str] = []
    wl = resolve_wavelength(file_wl, wavelength, source, notes)
    labels: dict[str, Any] = {}
    if header.get("NAMES"):
        labels["mineral"] = header["NAMES"]
    if header.get("IDEAL CHEMISTRY"):
        labels["formula"], labels["elements"] = _rruff_formula(header["IDEAL CHEMISTRY"])
    if dif_info is not None:
        if dif_info.get("space_group") is not None:
            labels["space_group"] = dif_info["space_group"]
            labels["crystal_system"] = dif_info["crystal_system"]
        if dif_info.get("cell") is not None:
            labels["lattice"] = tuple(dif_info["cell"])
    rruff_id = header.get("RRUFFID", "")
    provenance = {
        "path": source,
        "format": "rruff_xy",
        "header": header,
        "dif": dif_info.get("path") if dif_info else None,
        "notes": notes,
    }
    pid = f"rruff:{rruff_id}" if rruff_id else Path(path).stem
    return [make_pattern(pid, tt, y, wl, labels=labels, provenance=provenance)]
