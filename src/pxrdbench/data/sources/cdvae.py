"""CDVAE benchmark sets: ``perov5`` (5-atom perovskite cells), ``carbon24`` (carbon allotropes, 6–24 atoms).

Files ``cdvae/{perov_5,carbon_24}_{val,test}.csv.gz`` (columns ``material_id``, ``cif`` and the CDVAE property
columns), found under an explicit ``root``, ``$PXRDBENCH_DATA`` or ``<repo>/../shared/data``. Only the val and
test files are available offline (the train CSVs are not), so each source yields val then test; the original
CDVAE split is kept in ``meta["cdvae_split"]``. Record ids are ``"perov5:<material_id>"`` /
``"carbon24:<material_id>"`` (unique across the two files).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from pxrdbench.data.sources.base import (
    SourceInfo,
    SourceItem,
    check_max_structures,
    file_fingerprint,
    iter_csv_rows,
    parse_cif_entry,
    resolve_data_file,
)

ORIGIN = "GitHub txie-93/cdvae data/ at commit f857f598 (MIT)"
FILE_STEMS = {"perov5": "perov_5", "carbon24": "carbon_24"}
CDVAE_SPLITS = ("val", "test")
PROPERTY_COLUMNS = {"perov5": ("formula", "heat_ref", "heat_all"), "carbon24": ("energy_per_atom",)}
EXPECTED_COUNTS = {"perov5": 3787 + 3785, "carbon24": 2032 + 2030}


def cdvae_files(name: str, root: str | os.PathLike[str] | None = None) -> list[tuple[str, Path]]:
    """(CDVAE split, path) of the val and test CSVs of ``name`` (DatasetError when one is missing)."""
    stem = FILE_STEMS[name]
    return [
        (split, resolve_data_file(f"cdvae/{stem}_{split}.csv.gz", root, dataset=name, origin=ORIGIN))
        for split in CDVAE_SPLITS
    ]


def iter_cdvae(
    name: str, *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """Yield the entries of the CDVAE set ``name`` ("perov5" or "carbon24"): val file, then test file."""
    limit = check_max_structures(max_structures)
    columns = ["material_id", "cif", *PROPERTY_COLUMNS[name]]

    def rows() -> Iterator[tuple[str, dict]]:
        for split, path in cdvae_files(name, root):
            for row in iter_csv_rows(path, columns):
                yield split, row

    for index, (split, row) in enumerate(islice(rows(), limit)):
        record_id = f"{name}:{row['material_id']}" if row["material_id"] is not None else f"{name}:row{index}"
        meta = {"cdvae_split": split, **{c: row[c] for c in PROPERTY_COLUMNS[name]}}
        yield parse_cif_entry(row["cif"], record_id, name, meta=meta)


def iter_perov5(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """CDVAE perov_5 (val + test, 7,572 perovskites with 5-atom cells)."""
    return iter_cdvae("perov5", max_structures=max_structures, root=root)


def iter_carbon24(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """CDVAE carbon_24 (val + test, 4,062 carbon structures of 6–24 atoms)."""
    return iter_cdvae("carbon24", max_structures=max_structures, root=root)


def fingerprint_cdvae(name: str, root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 digests of the val and test files, joined."""
    return "+".join(file_fingerprint(path) for _, path in cdvae_files(name, root))


def _info(name: str, iterate, what: str) -> SourceInfo:
    return SourceInfo(
        name=name,
        iterate=iterate,
        fingerprint=lambda root=None: fingerprint_cdvae(name, root),
        description=f"CDVAE {FILE_STEMS[name]}: {what}",
        expected_count=EXPECTED_COUNTS[name],
        licence="MIT",
        provenance=ORIGIN,
        notes="val + test files only; the CDVAE train split is not available offline",
    )


PEROV5_INFO = _info("perov5", iter_perov5, "perovskites, 5-atom cells (val + test)")
CARBON24_INFO = _info("carbon24", iter_carbon24, "carbon allotropes, 6-24 atoms (val + test)")
