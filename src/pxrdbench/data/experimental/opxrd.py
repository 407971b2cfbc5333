"""opXRD JSON patterns (Hollarek et al., opXRD database; files written by the ``xrdpattern`` package).

A file is a JSON object with ``two_theta_values`` (degrees), ``intensities``, and ``label`` / ``metadata``,
which are themselves JSON *strings*. ``label`` holds ``phases`` (crystal phases, possibly empty),
``xray_info`` (again a JSON string: ``primary_wavelength``, ``secondary_wavelength`` in Å, numbers or numeric
strings), ``is_simulated``, ``crystallite_size_nm`` and ``temp_K``; ``metadata`` holds ``filename``,
``institution``, ``original_file_format`` and ``measurement_date``. The archive unpacks to
``opxrd_data/<INSTITUTION>/**/*.json``.

Phases are read tolerantly, since xrdpattern's phase schema changed across versions: a phase is a dict or a
JSON string with a lattice (``lattice`` as a 3×3 matrix, a pymatgen dict, or a/b/c/alpha/beta/gamma; or older
``lengths`` + ``angles``), atomic sites under ``basis`` / ``base`` (x, y, z, occupancy, ``symbol`` or
``species_str``), ``spacegroup`` and ``chemical_composition``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from pxrdbench.data.records import SourceFailure
from pxrdbench.errors import InputError, PatternError, PxrdbenchError
from pxrdbench.physics.wavelength import KA2_TO_KA1_RATIO, Wavelength

from .pattern import (
    ExperimentalPattern,
    crystal_system_index,
    make_pattern,
    read_text,
    resolve_wavelength,
    structure_labels,
)


def _decode(value: Any, what: str, source: str) -> Any:
    """A nested JSON string decoded (dicts and lists pass through; empty → {})."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise PatternError(source, f"{what} is not valid JSON ({exc.msg} at char {exc.pos})") from exc
    return value


def _number(value: Any) -> float | None:
    """A positive float from a number or numeric string, else None."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) and out > 0 else None


def _wavelength(xray: dict[str, Any], source: str) -> Wavelength | None:
    """Kα1(/Kα2) from ``xray_info``: a doublet, ratio ``primary_to_secondary_ratio`` or else 2:1."""
    primary = _number(xray.get("primary_wavelength", xray.get("wavelength")))
    if primary is None:
        return None
    secondary = _number(xray.get("secondary_wavelength"))
    if secondary is None:
        return Wavelength(f"{primary:g}A", ((primary, 1.0),))
    ratio = _number(xray.get("primary_to_secondary_ratio")) or KA2_TO_KA1_RATIO
    return Wavelength(f"{primary:g}/{secondary:g}A", ((primary, 1.0), (secondary, ratio)))


def _lattice(phase: dict[str, Any]) -> Lattice | None:
    """The phase's lattice from any of the schema variants, or None."""
    lat = phase.get("lattice")
    if isinstance(lat, str):
        lat = json.loads(lat)
    if isinstance(lat, dict) and "matrix" in lat:
        return Lattice(lat["matrix"])
    if isinstance(lat, (list, tuple)) and np.shape(lat) == (3, 3):
        return Lattice(lat)
    params = lat if isinstance(lat, dict) else {**(phase.get("lengths") or {}), **(phase.get("angles") or {})}
    keys = ("a", "b", "c", "alpha", "beta", "gamma")
    if params and all(_number(params.get(k)) for k in keys):
        return Lattice.from_parameters(*(float(params[k]) for k in keys))
    return None


def _phase_structure(phase: dict[str, Any]) -> Structure | None:
    """A pymatgen structure from a phase with a lattice and at least one real atomic site, else None."""
    lattice = _lattice(phase)
    sites = phase.get("basis", phase.get("base")) or []
    if isinstance(sites, dict):
        sites = sites.get("atoms", sites.get("atom_sites", []))
    species: list[dict[str, float]] = []
    coords: list[list[float]] = []
    for site in sites:
        s = json.loads(site) if isinstance(site, str) else site
        symbol = str(s.get("symbol", s.get("species_str", "")))
        xyz = [s.get("x"), s.get("y"), s.get("z")]
        if symbol in ("", "⊥", "*") or any(v is None for v in xyz):
            continue
        occ = s.get("occupancy")
        species.append({symbol: 1.0 if occ is None else float(occ)})
        coords.append([float(v) for v in xyz])
    if lattice is None or not species:
        return None
    return Structure(lattice, species, coords)


def _phase_labels(
    phases: list[Any], source: str, notes: list[str]
) -> tuple[dict[str, Any], Structure | None]:
    """Labels (and the structure, for one phase) from the label's phase list."""
    labels: dict[str, Any] = {}
    decoded = [json.loads(p) if isinstance(p, str) else p for p in phases]
    if len(decoded) > 1:
        labels["n_phases"] = len(decoded)
        notes.append(f"{len(decoded)} phases; structure not attached")
    if len(decoded) != 1:
        return labels, None
    phase = decoded[0]
    try:
        structure = _phase_structure(phase)
    except (ValueError, KeyError, TypeError) as exc:
        notes.append(f"phase not converted to a structure: {exc}")
        structure = None
    if structure is not None:
        labels.update(structure_labels(structure))
    sg = phase.get("spacegroup")
    if isinstance(sg, (int, float)) and 1 <= int(sg) <= 230:
        if "space_group" in labels and labels["space_group"] != int(sg):
            notes.append(f"label space group {int(sg)}, spglib finds {labels['space_group']}; label kept")
        labels["space_group"], labels["crystal_system"] = int(sg), crystal_system_index(int(sg))
    if phase.get("chemical_composition"):
        labels.setdefault("formula", phase["chemical_composition"])
    return labels, structure


def load_opxrd(
    path: str | Path, *, wavelength: Wavelength | float | str | None = None, institution: str | None = None
) -> list[ExperimentalPattern]:
    """Read one opXRD JSON file (wavelength from ``xray_info``, else the caller's, else None)."""
    source = str(path)
    try:
        doc = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise PatternError(source, f"not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(doc, dict):
        raise PatternError(source, "top level must be a JSON object")
    missing = [k for k in ("two_theta_values", "intensities") if k not in doc]
    if missing:
        raise PatternError(source, f"missing key(s) {missing}; found {sorted(doc)}")
    label = _decode(doc.get("label"), "label", source)
    metadata = _decode(doc.get("metadata"), "metadata", source)
    xray = _decode(label.get("xray_info"), "label.xray_info", source)
    notes: list[str] = []
    wl = resolve_wavelength(_wavelength(xray, source), wavelength, source, notes)
    labels, structure = _phase_labels(list(label.get("phases") or []), source, notes)
    if label.get("is_simulated"):
        notes.append("the file marks this pattern as simulated")
    try:
        tt = np.asarray(doc["two_theta_values"], dtype=float)
        y = np.asarray(doc["intensities"], dtype=float)
    except (TypeError, ValueError) as exc:
        raise PatternError(source, f"two_theta_values / intensities are not numeric lists ({exc})") from exc
    provenance = {
        "path": source,
        "format": "opxrd_json",
        "institution": institution or metadata.get("institution"),
        "original_file": metadata.get("filename"),
        "original_format": metadata.get("original_file_format"),
        "measurement_date": metadata.get("measurement_date"),
        "is_simulated": bool(label.get("is_simulated", False)),
        "notes": notes,
    }
    pid = f"opxrd:{institution}/{Path(path).stem}" if institution else f"opxrd:{Path(path).stem}"
    return [make_pattern(pid, tt, y, wl, labels=labels, structure=structure, provenance=provenance)]


def iter_opxrd_archive(
    root: str | Path, *, wavelength: Wavelength | float | str | None = None
) -> Iterator[ExperimentalPattern | SourceFailure]:
    """Walk ``<root>/<INSTITUTION>/**/*.json`` in sorted order, yielding patterns and failures.

    A file that cannot be read yields ``SourceFailure(id=<path>, source="opxrd", reason=<message>)`` and the
    walk goes on. A root that is not a directory raises :class:`InputError`.
    """
    base = Path(root)
    if not base.is_dir():
        raise InputError(
            str(base), "opXRD archive root is not a directory (expected <root>/<INSTITUTION>/...)"
        )
    for inst_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for file in sorted(inst_dir.rglob("*.json")):
            try:
                yield from load_opxrd(file, wavelength=wavelength, institution=inst_dir.name)
            except (PxrdbenchError, ValueError, KeyError, TypeError) as exc:
                yield SourceFailure(id=str(file), source="opxrd", reason=str(exc))
