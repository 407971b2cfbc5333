"""A user's own structures: a folder of CIF files (``cif_dir``) or a CSV with a ``cif`` column (``cif_csv``).

``cif_dir``: every ``*.cif`` below the folder (recursive, sorted by relative path); record id = the relative
path without the suffix. ``cif_csv``: one row per structure; the id comes from the first of the columns
``material_id``, ``id``, ``name`` present (else ``row<n>``), an optional ``group`` column sets the split
group, and the other scalar columns go to ``meta``. Both take the path as the ``root`` argument or in the
dataset name: ``"cif_dir:<path>"``, ``"cif_csv:<path>"``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from itertools import islice
from pathlib import Path

from pxrdbench.data.records import SourceFailure
from pxrdbench.data.sources.base import (
    SourceInfo,
    SourceItem,
    check_max_structures,
    parse_cif_entry,
    sha256_file,
)
from pxrdbench.errors import DatasetError

ID_COLUMNS = ("material_id", "id", "name")  # the order structure_io uses, then "name"


def _require_root(root: str | os.PathLike[str] | None, name: str, kind: str) -> Path:
    if root is None:
        raise DatasetError(
            f"dataset {name!r} needs a {kind}: pass root=<path> or use the name '{name}:<path>'"
        )
    return Path(root).expanduser()


def cif_paths(folder: Path) -> list[Path]:
    """Every ``.cif`` file (any case) below ``folder``, sorted by relative path."""
    return sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() == ".cif"),
        key=lambda p: p.as_posix(),
    )


def iter_cif_dir(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """Yield one entry per CIF file below ``root`` (a folder); unreadable files become failures.

    Wraps :func:`pxrdbench.data.structure_io.iter_structure_inputs` (same ids, same parser) and labels the
    entries with this source's name.
    """
    from pxrdbench.data.structure_io import iter_structure_inputs

    limit = check_max_structures(max_structures)
    folder = _require_root(root, "cif_dir", "folder of CIF files")
    if not folder.is_dir():
        raise DatasetError(f"dataset 'cif_dir': {folder} is not a folder")
    if not cif_paths(folder):
        raise DatasetError(f"dataset 'cif_dir': {folder} holds no *.cif file")
    for item in islice(iter_structure_inputs(folder), limit):
        yield replace(item, source="cif_dir")


def iter_cif_csv(
    *, max_structures: int | None = None, root: str | os.PathLike[str] | None = None
) -> Iterator[SourceItem]:
    """Yield one entry per row of the CSV ``root`` (column ``cif`` required; may be gzipped)."""
    import pandas as pd

    limit = check_max_structures(max_structures)
    path = _require_root(root, "cif_csv", "CSV file with a 'cif' column")
    if not path.is_file():
        raise DatasetError(f"dataset 'cif_csv': {path} is not a file")
    seen: set[str] = set()
    index = 0
    with pd.read_csv(path, chunksize=1000, dtype=str, keep_default_na=False) as reader:
        for chunk in reader:
            if "cif" not in chunk.columns:
                raise DatasetError(f"{path}: no 'cif' column (found {list(chunk.columns)})")
            id_column = next((c for c in ID_COLUMNS if c in chunk.columns), None)
            for row in chunk.to_dict("records"):
                if limit is not None and index >= limit:
                    return
                record_id = (
                    str(row[id_column]).strip()
                    if id_column and str(row[id_column]).strip()
                    else f"row{index}"
                )
                index += 1
                if record_id in seen:
                    yield SourceFailure(
                        record_id, "cif_csv", f"{path} row {index}: duplicate id {record_id!r}"
                    )
                    continue
                seen.add(record_id)
                meta = {k: v for k, v in row.items() if k not in ("cif", "group", id_column)}
                yield parse_cif_entry(
                    row["cif"], record_id, "cif_csv", group=row.get("group", "") or "", meta=meta
                )


def fingerprint_cif_dir(root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 over the relative paths and contents of every CIF file."""
    import hashlib

    folder = _require_root(root, "cif_dir", "folder of CIF files")
    digest = hashlib.sha256()
    for path in cif_paths(folder):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + sha256_file(path).encode())
    return digest.hexdigest()


def fingerprint_cif_csv(root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 of the CSV file."""
    return sha256_file(_require_root(root, "cif_csv", "CSV file with a 'cif' column"))


CIF_DIR_INFO = SourceInfo(
    name="cif_dir",
    iterate=iter_cif_dir,
    fingerprint=fingerprint_cif_dir,
    description="your own CIF files: every *.cif below a folder (recursive)",
    expected_count=None,
    licence="yours",
    provenance="local folder",
)
CIF_CSV_INFO = SourceInfo(
    name="cif_csv",
    iterate=iter_cif_csv,
    fingerprint=fingerprint_cif_csv,
    description="your own structures: a CSV with a 'cif' column (optional id, material_id, name, group)",
    expected_count=None,
    licence="yours",
    provenance="local file",
)
