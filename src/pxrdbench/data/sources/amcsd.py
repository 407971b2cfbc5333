"""AMCSD: the American Mineralogist Crystal Structure Database shipped inside the ``larixite`` wheel.

9,275 experimental mineral structures (``larixite/amcsd_cif1.db``, sqlite), 2,787 partly disordered. The CIF
text of each entry is written by ``larixite.amcsd.AMCSD.get_cif(id).ciftext`` and parsed by pymatgen with the
tolerant retry of :mod:`pxrdbench.data.structure_io`; partial occupancies are kept.

Split group = the mineral name (lower case, whitespace collapsed), so a mineral's pressure/temperature series
never straddles two splits. Entries without a mineral name fall back to their formula title, as larixite does.
Pressure and temperature are read from the publication title notes (``P = 5.2 GPa``, ``T = 650 deg C``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from pxrdbench.data.records import SourceFailure
from pxrdbench.data.sources.base import SourceInfo, SourceItem, check_max_structures, parse_cif_entry
from pxrdbench.errors import DatasetError

SOURCE = "amcsd"
EXPECTED_COUNT = 9275
MISSING = "<missing>"

# Pressure units -> GPa and the patterns of AMCSD title notes ("P = 1 atm", "T = 298 K", "T = 650 deg C").
_PRESSURE_TO_GPA = {"gpa": 1.0, "mpa": 1e-3, "kpa": 1e-6, "kbar": 0.1, "bar": 1e-4, "atm": 1.01325e-4}
_PRESSURE_RE = re.compile(r"\bP\s*=\s*([-+]?\d+(?:\.\d+)?)\s*(GPa|MPa|kPa|kbar|bar|atm)\b", re.IGNORECASE)
_TEMPERATURE_RE = re.compile(r"\bT\s*=\s*([-+]?\d+(?:\.\d+)?)\s*(?:deg(?:rees?)?\.?\s*)?(K|C)\b")


def default_db_path() -> Path:
    """The sqlite file inside the installed ``larixite`` package (found without importing larixite)."""
    import importlib.util

    spec = importlib.util.find_spec("larixite")
    if spec is None or spec.origin is None:
        raise DatasetError("dataset 'amcsd' needs the larixite package: pip install 'larixite>=2026.1.0'")
    path = Path(spec.origin).parent / "amcsd_cif1.db"
    if not path.is_file():
        raise DatasetError(
            f"dataset 'amcsd': {path} is missing from the installed larixite package; reinstall it"
        )
    return path


def normalise_mineral_name(name: str) -> str:
    """Group key of a mineral name: lower case, stripped, inner whitespace collapsed to one space."""
    return " ".join(str(name).split()).lower()


def parse_conditions(text: str) -> dict[str, float]:
    """Pressure (GPa) and temperature (K) stated in an AMCSD title note, when present.

    Conversions: 1 kbar = 0.1 GPa, 1 bar = 1e-4 GPa, 1 atm = 1.01325e-4 GPa; T[K] = T[°C] + 273.15.
    """
    out: dict[str, float] = {}
    if match := _PRESSURE_RE.search(text or ""):
        out["pressure_gpa"] = float(match.group(1)) * _PRESSURE_TO_GPA[match.group(2).lower()]
    if match := _TEMPERATURE_RE.search(text or ""):
        value = float(match.group(1))
        out["temperature_k"] = value + 273.15 if match.group(2) == "C" else value
    return out


def list_entries(db_path: Path) -> list[tuple[int, str, str, str]]:
    """(AMCSD id, mineral name, formula title, publication title) of every entry, by id (read-only query)."""
    uri = f"file:{db_path}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute(
            "SELECT c.id, COALESCE(m.name, ?), COALESCE(c.formula_title, ?), COALESCE(c.pub_title, '') "
            "FROM cif c LEFT JOIN minerals m ON m.id = c.mineral_id ORDER BY c.id",
            (MISSING, MISSING),
        ).fetchall()
    return [(int(i), str(m), str(f), str(t)) for i, m, f, t in rows]


def group_key(amcsd_id: int, mineral: str, formula_title: str) -> str:
    """Split group: the mineral name, else the formula title, else the entry itself (a singleton group)."""
    for name in (mineral, formula_title):
        if name and name.strip() and name.strip() != MISSING:
            return normalise_mineral_name(name)
    return f"amcsd:{amcsd_id}"


def iter_amcsd(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """Yield the AMCSD entries in id order as records ``"amcsd:<id>"`` (or failures with the reason).

    Args:
        max_structures: stop after this many entries (records + failures); ``None`` = all 9,275.
        root: another larixite-format AMCSD sqlite file (default: the one inside the larixite wheel).
    """
    limit = check_max_structures(max_structures)
    db_path = Path(root) if root is not None else default_db_path()
    if not db_path.is_file():
        raise DatasetError(f"dataset 'amcsd': database {db_path} not found")
    entries = list_entries(db_path)
    if limit is not None:
        entries = entries[:limit]
    if not entries:
        return
    from larixite.amcsd import AMCSD

    db = AMCSD(str(db_path), read_only=True)  # read_only: never alter the packaged file
    for amcsd_id, mineral, formula_title, title in entries:
        record_id = f"amcsd:{amcsd_id}"
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stdout(chatter):
                text = db.get_cif(amcsd_id).ciftext
        except Exception as exc:  # larixite cannot write this entry's CIF
            note = chatter.getvalue().strip()
            yield SourceFailure(
                record_id, SOURCE, f"larixite get_cif failed: {type(exc).__name__}: {exc} {note}"
            )
            continue
        meta = {
            "amcsd_id": amcsd_id,
            "mineral": mineral if mineral != MISSING else "",
            "formula_title": formula_title if formula_title != MISSING else "",
            **parse_conditions(title),
        }
        yield parse_cif_entry(
            text, record_id, SOURCE, group=group_key(amcsd_id, mineral, formula_title), meta=meta
        )


def fingerprint_amcsd(root: str | os.PathLike[str] | None = None) -> str:
    """Content fingerprint: larixite version, entry count and id range.

    Not the file hash: larixite's ``AMCSD()`` (read_only=False) adds columns to the packaged file in place,
    which changes its bytes but not its structures.
    """
    from importlib.metadata import PackageNotFoundError, version

    db_path = Path(root) if root is not None else default_db_path()
    ids = [e[0] for e in list_entries(db_path)]
    try:
        lx = version("larixite")
    except PackageNotFoundError:
        lx = "unknown"
    return f"larixite={lx};n={len(ids)};ids={min(ids, default=0)}-{max(ids, default=0)}"


INFO = SourceInfo(
    name=SOURCE,
    iterate=iter_amcsd,
    fingerprint=fingerprint_amcsd,
    description="American Mineralogist Crystal Structure Database: experimental mineral structures (default)",
    expected_count=EXPECTED_COUNT,
    licence="larixite package MIT; AMCSD free for scientific use with credit to the original papers",
    provenance="PyPI larixite==2026.1.0, larixite/amcsd_cif1.db (from rruff.geo.arizona.edu/AMS/amcsd.php)",
    notes="2,787 entries partly disordered (occupancies kept); groups = mineral names (P/T series together)",
)
