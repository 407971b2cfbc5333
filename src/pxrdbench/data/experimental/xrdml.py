"""PANalytical XRDML scans (XML, namespaces ``http://www.xrdml.com/XRDMeasurement/<version>``).

Path: ``xrdMeasurements/xrdMeasurement/scan/dataPoints``. The 2θ axis is ``positions axis="2Theta"`` with
``startPosition`` / ``endPosition`` (points evenly spaced) or ``listPositions``; intensities are
``intensities`` (count rate) or ``counts`` (space-separated). When ``beamAttenuationFactors`` is present the
values are multiplied by it (the instrument inserted an attenuator for those points). The wavelength is
``usedWavelength``: ``kAlpha1``, ``kAlpha2`` and ``ratioKAlpha2KAlpha1`` give the doublet (λ₁, 1), (λ₂, ratio)
in Å.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.errors import PatternError
from pxrdbench.physics.wavelength import Wavelength

from .pattern import ExperimentalPattern, make_pattern, read_text, resolve_wavelength


def _local(tag: str) -> str:
    """Tag name without its ``{namespace}``."""
    return tag.rsplit("}", 1)[-1]


def _child(node: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in node if _local(c.tag) == name), None)


def _children(node: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in node if _local(c.tag) == name]


def _float(node: ET.Element | None) -> float | None:
    if node is None or node.text is None or not node.text.strip():
        return None
    return float(node.text)


def _values(node: ET.Element, source: str, what: str) -> np.ndarray:
    try:
        return np.array((node.text or "").split(), dtype=float)
    except ValueError as exc:
        raise PatternError(source, f"{what} holds non-numeric values ({exc})") from exc


def _used_wavelength(measurement: ET.Element, source: str) -> tuple[Wavelength | None, dict[str, Any]]:
    """Kα1/Kα2 doublet from ``usedWavelength`` (a single line when Kα2 or its ratio is absent or zero)."""
    used = _child(measurement, "usedWavelength")
    if used is None:
        return None, {}
    ka1, ka2 = _float(_child(used, "kAlpha1")), _float(_child(used, "kAlpha2"))
    ratio = _float(_child(used, "ratioKAlpha2KAlpha1"))
    info = {"intended": used.get("intended"), "kAlpha1": ka1, "kAlpha2": ka2, "ratioKAlpha2KAlpha1": ratio}
    if ka1 is None:
        return None, info
    if ka2 is None or not ratio:
        return Wavelength(f"{ka1:g}A", ((ka1, 1.0),)), info
    return Wavelength(f"{ka1:g}/{ka2:g}A", ((ka1, 1.0), (ka2, ratio))), info


def _scan_arrays(points: ET.Element, source: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """2θ and intensity of one ``dataPoints`` element, plus what was read (units, counting time)."""
    axis = next((p for p in _children(points, "positions") if p.get("axis") == "2Theta"), None)
    if axis is None:
        raise PatternError(source, 'no <positions axis="2Theta"> in <dataPoints>')
    data = _child(points, "intensities")
    if data is None:
        data = _child(points, "counts")
    if data is None:
        raise PatternError(source, "no <intensities> or <counts> in <dataPoints>")
    y = _values(data, source, f"<{_local(data.tag)}>")
    attenuation = _child(points, "beamAttenuationFactors")
    info: dict[str, Any] = {"intensity_kind": _local(data.tag), "unit": data.get("unit")}
    if attenuation is not None and (attenuation.text or "").strip():
        factors = _values(attenuation, source, "<beamAttenuationFactors>")
        if factors.size != y.size:
            raise PatternError(source, f"{factors.size} attenuation factors for {y.size} intensities")
        y = y * factors
        info["attenuation_applied"] = True
    listed = _child(axis, "listPositions")
    if listed is not None:
        tt = _values(listed, source, "<listPositions>")
    else:
        start, end = _float(_child(axis, "startPosition")), _float(_child(axis, "endPosition"))
        if start is None or end is None:
            raise PatternError(source, "2Theta axis has neither listPositions nor start/endPosition")
        tt = np.linspace(start, end, y.size) if y.size > 1 else np.array([start])
    if tt.size != y.size:
        raise PatternError(source, f"{tt.size} 2θ positions for {y.size} intensities")
    counting = _float(_child(points, "commonCountingTime"))
    if counting is not None:
        info["counting_time_s"] = counting
    return tt, y, info


def load_xrdml(
    path: str | Path, *, wavelength: Wavelength | float | str | None = None
) -> list[ExperimentalPattern]:
    """Every scan of an XRDML file as a pattern (id ``"xrdml:<stem>"``, ``":<k>"`` appended for scan k ≥ 1).

    Wavelength: the file's ``usedWavelength`` doublet, else the caller's, else None.
    """
    source = str(path)
    try:
        root = ET.fromstring(read_text(path).encode("utf-8"))
    except ET.ParseError as exc:
        raise PatternError(source, f"not well-formed XML ({exc})") from exc
    if _local(root.tag) != "xrdMeasurements":
        raise PatternError(source, f"root element is <{_local(root.tag)}>, expected <xrdMeasurements>")
    sample = _child(root, "sample")
    sample_id = _child(sample, "id") if sample is not None else None
    patterns: list[ExperimentalPattern] = []
    for measurement in _children(root, "xrdMeasurement"):
        file_wl, wl_info = _used_wavelength(measurement, source)
        for scan in _children(measurement, "scan"):
            points = _child(scan, "dataPoints")
            if points is None:
                continue
            tt, y, info = _scan_arrays(points, source)
            notes: list[str] = []
            wl = resolve_wavelength(file_wl, wavelength, source, notes)
            k = len(patterns)
            provenance = {
                "path": source,
                "format": "xrdml",
                "namespace": root.tag[1:].split("}")[0] if root.tag.startswith("{") else None,
                "scan_index": k,
                "scan_mode": scan.get("mode"),
                "sample_id": sample_id.text if sample_id is not None else None,
                "used_wavelength": wl_info,
                **info,
                "notes": notes,
            }
            pid = f"xrdml:{Path(path).stem}" + (f":{k}" if k else "")
            patterns.append(make_pattern(pid, tt, y, wl, provenance=provenance))
    if not patterns:
        raise PatternError(source, "no <scan> with <dataPoints> found")
    return patterns
