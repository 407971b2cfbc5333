"""Reading crystal structures from CIF text, CIF files, directories and CSV tables, with clear errors.

Every structure is parsed with pymatgen's CifParser (first structure of the file, cell as written, no
reduction to the primitive cell), first with default settings and, if that fails, with the tolerant settings
that parse 9,274 of 9,275 AMCSD entries (``occupancy_tolerance=10, site_tolerance=5e-3``), then validated for
diffraction (:func:`validate_structure`). Parser warnings are silenced; failures become a
:class:`~pxrdbench.errors.StructureError` with a short, specific cause. Iterating a collection never raises
for one bad entry: it yields a :class:`~pxrdbench.data.records.SourceFailure` naming the file or row and the
cause.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from pymatgen.core import Structure
from pymatgen.io.cif import CifParser

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.errors import InputError, StructureError
from pxrdbench.physics.scattering import scatterer_table

TOLERANT_CIF_SETTINGS = {"occupancy_tolerance": 10.0, "site_tolerance": 5e-3}
"""CifParser settings of the retry after a default parse fails."""

_INVALID_ELEMENT = re.compile(r"'([^']+)' is not a valid Element")


def validate_structure(structure: Structure, source: str) -> Structure:
    """Return ``structure`` if a diffraction pattern can be computed from it, else raise StructureError.

    Checks: at least one site, finite coordinates, finite cell volume > 1e-6 Å³, positive occupancies, and
    every element in the form-factor table (the same checks :func:`compute_reflections` relies on).
    """
    scatterer_table(structure, source=source)
    return structure


def _parse_once(text: str, settings: dict[str, float], caught: list[str]) -> Structure:
    """First structure of ``text`` with CifParser ``settings``; warning texts are appended to ``caught``."""
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            parser = CifParser.from_str(text, **settings)
            try:
                structures = parser.parse_structures(primitive=False, on_error="raise")
            except Exception:
                # Multi-block files (e.g. Rietveld CIFs: a pattern block, then one block per phase): take the
                # blocks that hold a structure; a single-block file re-raises its own error below.
                if len(parser._cif.data) < 2:
                    raise
                structures = parser.parse_structures(primitive=False, on_error="ignore")
        finally:
            caught.extend(str(r.message) for r in records)
    if not structures:
        raise ValueError("no structure could be built from the CIF")
    return structures[0]


def _short_cause(exc: Exception, caught: list[str]) -> str:
    """A one-line cause for a failed parse, preferring what the parser warned about."""
    for message in caught:
        if found := _INVALID_ELEMENT.search(message):
            return f"unknown element {found.group(1)!r}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    if "singular matrix" in text.lower():
        return "degenerate cell (zero volume: the lattice vectors are linearly dependent)"
    if "_atom_site" in text:
        return "no usable _atom_site loop (labels, symbols or coordinates missing)"
    return text[:200]


def read_cif_text(text: str, source: str) -> Structure:
    """Parse CIF ``text`` into a validated Structure (first data block with a structure); ``source`` names it.

    Raises StructureError(source, cause) with causes such as "empty file", "not a CIF (no data_ block)",
    "no _atom_site loop", "unknown element 'Xx'", or the parser's own one-line message.
    """
    if text is None or not str(text).strip():
        raise StructureError(source, "empty file")
    text = str(text)
    if not re.search(r"^\s*data_", text, flags=re.MULTILINE | re.IGNORECASE):
        raise StructureError(source, "not a CIF (no data_ block)")
    if "_atom_site_fract" not in text.lower() and "_atom_site_cartn" not in text.lower():
        raise StructureError(source, "no _atom_site loop with coordinates")
    caught: list[str] = []
    try:
        structure = _parse_once(text, {}, caught)
    except Exception:
        caught.clear()
        try:
            structure = _parse_once(text, dict(TOLERANT_CIF_SETTINGS), caught)
        except Exception as exc:
            raise StructureError(source, _short_cause(exc, caught)) from exc
    return validate_structure(structure, source)


def _read_text(path: Path) -> str:
    """File contents as text (UTF-8, undecodable bytes replaced)."""
    return path.read_bytes().decode("utf-8", errors="replace")


def _iter_cif_files(files: list[Path], root: Path) -> Iterator[StructureRecord | SourceFailure]:
    """One record or failure per CIF file; ids are paths relative to ``root`` without the suffix."""
    for file in files:
        record_id = file.relative_to(root).with_suffix("").as_posix() if root.is_dir() else file.stem
        try:
            structure = read_cif_text(_read_text(file), str(file))
        except (StructureError, OSError) as exc:
            yield SourceFailure(id=record_id, source="cif", reason=str(exc))
            continue
        yield StructureRecord(id=record_id, structure=structure, source="cif", meta={"path": str(file)})


def _iter_csv(path: Path) -> Iterator[StructureRecord | SourceFailure]:
    """One record or failure per row of a CSV (optionally gzipped) with a ``cif`` column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputError(str(path), f"cannot read as CSV: {' '.join(str(exc).split())[:200]}") from exc
    if "cif" not in frame.columns:
        raise InputError(str(path), f"no 'cif' column (columns: {', '.join(map(str, frame.columns))})")
    id_column = next((c for c in ("material_id", "id") if c in frame.columns), None)
    for row, (cif_text, raw_id) in enumerate(
        zip(frame["cif"], frame[id_column] if id_column else range(len(frame)), strict=True)
    ):
        record_id = str(raw_id).strip() or str(row)
        where = f"{path} row {row} (id {record_id})"
        try:
            structure = read_cif_text(cif_text, where)
        except StructureError as exc:
            yield SourceFailure(id=record_id, source="csv", reason=str(exc))
            continue
        yield StructureRecord(
            id=record_id, structure=structure, source="csv", meta={"path": str(path), "row": row}
        )


def iter_structure_inputs(path: str | Path) -> Iterator[StructureRecord | SourceFailure]:
    """Structures from a CIF file, a directory of CIFs (recursive, sorted) or a CSV/CSV.gz with a ``cif``
    column.

    CSV ids come from a ``material_id`` or ``id`` column, else the row number. Each bad entry is yielded as a
    SourceFailure naming the file/row and cause. A missing path, an empty directory, an unsupported file type
    or a CSV without a ``cif`` column raises InputError.
    """
    root = Path(path)
    if not root.exists():
        raise InputError(str(root), "path does not exist")
    if root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".cif")
        if not files:
            raise InputError(str(root), "directory contains no *.cif files")
        yield from _iter_cif_files(files, root)
        return
    name = root.name.lower()
    if name.endswith(".cif"):
        yield from _iter_cif_files([root], root)
    elif name.endswith(".csv") or name.endswith(".csv.gz"):
        yield from _iter_csv(root)
    else:
        raise InputError(
            str(root), "unsupported input: expected a .cif file, a directory of CIFs or a .csv/.csv.gz"
        )
