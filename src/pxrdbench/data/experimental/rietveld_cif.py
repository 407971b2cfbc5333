"""IUCr powder CIFs (pdCIF) holding a measured pattern and the refined structure(s) of a Rietveld fit.

A file has one or more data blocks: the pattern (a loop of 2θ and intensities) and one block per phase (cell,
symmetry, atom sites); small files put both in one block. 2θ comes from ``_pd_proc_2theta_corrected``,
``_pd_meas_2theta_scan`` or ``_pd_meas_angle_2theta``, or from ``_pd_{meas,proc}_2theta_range_{min,max,inc}``.
Intensities are taken measured-first: ``_pd_meas_intensity_total``, ``_pd_meas_counts_total``,
``_pd_proc_intensity_total``, ``_pd_proc_intensity_net``, and only when none exists the calculated
``_pd_calc_intensity_total`` / ``_net`` (flagged). Values may carry an esd, ``1234(35)``, which is dropped.
Blocks whose name contains ``_simulated_`` (added by third parties, not measured) are ignored.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.errors import InputError, PatternError, WavelengthError
from pxrdbench.physics.wavelength import KA2_TO_KA1_RATIO, Wavelength

from .pattern import (
    ExperimentalPattern,
    make_pattern,
    read_text,
    resolve_wavelength,
    space_group_number,
    structure_labels,
)

TWO_THETA_TAGS = ("_pd_proc_2theta_corrected", "_pd_meas_2theta_scan", "_pd_meas_angle_2theta")
MEASURED_TAGS = (
    "_pd_meas_intensity_total",
    "_pd_meas_counts_total",
    "_pd_proc_intensity_total",
    "_pd_proc_intensity_net",
)
CALCULATED_TAGS = ("_pd_calc_intensity_total", "_pd_calc_intensity_net")
SPACE_GROUP_TAGS = ("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M")
_PATTERN_PREFIXES = ("_pd_", "_refln_")
_ESD = re.compile(r"\(\d+\)$")


def cif_number(value: Any) -> float:
    """A CIF numeric value as float: the esd in parentheses is dropped; ``.``/``?`` and garbage give NaN."""
    text = _ESD.sub("", str(value).strip().strip("'\""))
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _numbers(values: Any) -> np.ndarray:
    return np.array([cif_number(v) for v in _as_list(values)], dtype=float)


def _find(blocks: list[tuple[str, dict[str, Any]]], tag: str) -> Any:
    """The first value of ``tag`` over blocks (pattern block first), or None."""
    return next((data[tag] for _, data in blocks if tag in data), None)


def _wavelength(blocks: list[tuple[str, dict[str, Any]]]) -> tuple[Wavelength | None, str | None]:
    """Wavelength from ``_diffrn_radiation_wavelength`` (single or loop, with ``_wt`` weights when given),
    else from ``_pd_proc_wavelength``. Two lines without weights are taken as Kα1/Kα2 at 2:1."""
    for tag in ("_diffrn_radiation_wavelength", "_pd_proc_wavelength"):
        for _, data in blocks:
            if tag not in data:
                continue
            lams = _numbers(data[tag])
            keep = np.isfinite(lams) & (lams > 0)
            if not keep.any():
                continue
            if tag + "_wt" in data:
                weights = _numbers(data[tag + "_wt"])
            elif keep.sum() == 2:
                weights = np.array([1.0, KA2_TO_KA1_RATIO])
            else:
                weights = np.ones_like(lams)
            weights = np.where(np.isfinite(weights) & (weights > 0), weights, 1.0)
            lines = tuple((float(lam), float(w)) for lam, w in zip(lams[keep], weights[keep], strict=True))
            name = "/".join(f"{lam:g}" for lam, _ in lines) + "A"
            return Wavelength(name, lines), tag
    return None, None


def _two_theta(
    blocks: list[tuple[str, dict[str, Any]]], intensity_tag: str, n: int, source: str
) -> tuple[np.ndarray, str]:
    """2θ (degrees) for ``n`` intensities: a loop column of the pattern block, else a min/max/inc range."""
    data = blocks[0][1]
    for tag in TWO_THETA_TAGS:
        if tag in data and len(_as_list(data[tag])) == n:
            return _numbers(data[tag]), tag
    kinds = ("meas", "proc") if intensity_tag.startswith("_pd_meas") else ("proc", "meas")
    for kind in kinds:
        lo, hi, inc = (_find(blocks, f"_pd_{kind}_2theta_range_{x}") for x in ("min", "max", "inc"))
        if lo is None or hi is None or inc is None:
            continue
        lo, hi, inc = cif_number(lo), cif_number(hi), cif_number(inc)
        expected = (hi - lo) / inc + 1 if inc > 0 else float("nan")
        if abs(expected - n) <= 0.5:
            return np.linspace(lo, hi, n), f"_pd_{kind}_2theta_range"
        raise PatternError(
            source,
            f"_pd_{kind}_2theta_range {lo:g}–{hi:g} step {inc:g} gives {expected:.1f} points, "
            f"but {intensity_tag} has {n}",
        )
    raise PatternError(source, f"no 2θ column ({', '.join(TWO_THETA_TAGS)}) or 2θ range for {intensity_tag}")


def _phase_blocks(cif: Any) -> list[tuple[str, Any]]:
    """Blocks describing a crystal phase (atom sites with fractional coordinates), not simulated ones."""
    return [
        (name, block)
        for name, block in cif.data.items()
        if "_simulated_" not in name and "_atom_site_fract_x" in block.data
    ]


def _parse_phase(name: str, block: Any, source: str) -> dict[str, Any]:
    """One phase: its structure (pymatgen CifParser, tolerant), labels, and the symmetry the CIF declares."""
    from pymatgen.io.cif import CifBlock, CifParser

    dropped = {k for k in block.data if k.startswith(_PATTERN_PREFIXES) and k != "_pd_phase_name"}
    keep = {k: v for k, v in block.data.items() if k not in dropped}
    loops = [loop for loop in block.loops if not dropped.intersection(loop)]
    lean = CifBlock(keep, loops, name)
    phase: dict[str, Any] = {"block": name, "name": str(block.data.get("_pd_phase_name", name)).strip()}
    symbol = next((block.data[t] for t in SPACE_GROUP_TAGS if t in block.data), None)
    if symbol:
        phase["declared_symbol"] = str(symbol).strip()
        try:
            phase["declared_space_group"] = space_group_number(str(symbol))
        except InputError:
            phase["declared_space_group"] = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parser = CifParser.from_str(str(lean), occupancy_tolerance=1.05, site_tolerance=5e-3)
            structures = parser.parse_structures(primitive=False, on_error="ignore")
    except Exception as exc:  # noqa: BLE001 - pymatgen raises many types; the reason is kept
        structures, phase["error"] = [], f"{type(exc).__name__}: {exc}"
    phase["structure"] = structures[0] if structures else None
    if phase["structure"] is not None:
        phase["labels"] = structure_labels(phase["structure"])
    else:
        phase.setdefault("error", "pymatgen could not build a structure from this block")
    return phase


def _pattern_blocks(cif: Any) -> tuple[list[tuple[str, dict[str, Any], str]], bool]:
    """(block name, data, intensity tag) of every pattern block; and whether all are calculated."""
    for tags, calculated in ((MEASURED_TAGS, False), (CALCULATED_TAGS, True)):
        found = []
        for name, block in cif.data.items():
            if "_simulated_" in name:
                continue
            tag = next((t for t in tags if t in block.data and isinstance(block.data[t], list)), None)
            if tag:
                found.append((name, block.data, tag))
        if found:
            return found, calculated
    return [], False


def load_rietveld_cif(
    path: str | Path, *, wavelength: Wavelength | float | str | None = None
) -> list[ExperimentalPattern]:
    """Read every measured pattern of a pdCIF with its phase(s).

    Wavelength: from the file, else the caller's; neither → :class:`WavelengthError` naming the file.
    One phase: ``structure`` is attached and labels hold ``space_group`` / ``crystal_system`` (spglib),
    ``formula``, ``elements``, ``lattice``, ``n_phases=1``. Several phases: no structure,
    ``labels["n_phases"]``, and every phase (block, name, structure, labels, declared symbol) in
    ``provenance["phases"]``.
    """
    from pymatgen.io.cif import CifFile

    source = str(path)
    try:
        cif = CifFile.from_str(read_text(path))
    except (ValueError, IndexError, KeyError) as exc:
        raise PatternError(source, f"not a readable CIF ({exc})") from exc
    found, calculated = _pattern_blocks(cif)
    if not found:
        raise PatternError(
            source, "no powder pattern loop (measured or calculated intensities) in any data block"
        )
    others = [(n, b.data) for n, b in cif.data.items() if "_simulated_" not in n]
    resolved = []
    for name, data, tag in found:
        blocks = [(name, data)] + [(n, d) for n, d in others if n != name]
        notes: list[str] = []
        file_wl, wl_tag = _wavelength(blocks)
        wl = resolve_wavelength(file_wl, wavelength, source, notes)
        if wl is None:
            raise WavelengthError(
                source,
                "the file gives no wavelength (_diffrn_radiation_wavelength / _pd_proc_wavelength); "
                "pass wavelength=... (e.g. 'CuKa1' or 0.7093)",
            )
        resolved.append((name, data, tag, blocks, notes, wl, wl_tag if file_wl is not None else "caller"))
    phases = [_parse_phase(name, block, source) for name, block in _phase_blocks(cif)]
    stem = Path(path).name.split(".")[0]
    patterns: list[ExperimentalPattern] = []
    for name, data, tag, blocks, notes, wl, wl_tag in resolved:
        y = _numbers(data[tag])
        tt, tt_tag = _two_theta(blocks, tag, y.size, source)
        good = np.isfinite(tt) & np.isfinite(y)
        if (~good).any():
            notes.append(f"{int((~good).sum())} point(s) with missing values ('.', '?') dropped")
        if calculated:
            notes.append(f"only calculated intensities ({tag}) in the file")
        labels: dict[str, Any] = {"n_phases": len(phases)}
        structure = None
        if len(phases) == 1 and phases[0].get("structure") is not None:
            structure = phases[0]["structure"]
            labels.update(phases[0]["labels"])
        elif len(phases) > 1:
            desc = ", ".join(f"{p['name']} ({p.get('declared_symbol', '?')})" for p in phases)
            notes.append(f"{len(phases)} phases: {desc}")
        provenance = {
            "path": source,
            "format": "pdcif",
            "block": name,
            "intensity_tag": tag,
            "two_theta_tag": tt_tag,
            "wavelength_tag": wl_tag,
            "phases": phases,
            "notes": notes,
        }
        pid = f"pdcif:{stem}" if len(found) == 1 else f"pdcif:{stem}:{name}"
        patterns.append(
            make_pattern(
                pid, tt[good], y[good], wl, labels=labels, structure=structure, provenance=provenance
            )
        )
    return patterns
