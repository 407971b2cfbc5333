"""MP-CGCNN: the Materials Project formation-energy set of CGCNN (36,737 structures, ca. 2018).

One gzipped CSV, ``mp-cgcnn/structures.csv.gz``, columns ``material_id, formation_energy_per_atom, cif``; the
CIFs are P1 files written by pymatgen, so the space group is recomputed downstream (spglib). Found under an
explicit ``root``, ``$PXRDBENCH_DATA`` or ``<repo>/../shared/data``; when absent and a download URL is
configured (``url=`` or ``$PXRDBENCH_MP_CGCNN_URL``), it is downloaded once and kept only if its SHA-256
matches.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from pxrdbench.data.sources.base import (
    DATA_ENV,
    SourceInfo,
    SourceItem,
    check_max_structures,
    download_verified,
    file_fingerprint,
    iter_csv_rows,
    parse_cif_entry,
    resolve_data_file,
)
from pxrdbench.errors import DatasetError

SOURCE = "mp_cgcnn"
RELATIVE_PATH = "mp-cgcnn/structures.csv.gz"
SHA256 = "33aef63389abe9f7950068884d1756ea2299b87a8429197cd1fd1827e7144d9a"
EXPECTED_COUNT = 36737
URL_ENV = "PXRDBENCH_MP_CGCNN_URL"
ORIGIN = (
    "GitHub kdmsit/crysxpp data/*.cif + data/material_id_hash.csv + data/id_prop.csv at commit b12e52b8 "
    "(same files in kdmsit/MEGNet), packed as one CSV (material_id, formation_energy_per_atom, cif) with "
    f"SHA-256 {SHA256}"
)


def download_dir() -> Path:
    """Where a downloaded copy goes: ``$PXRDBENCH_DATA`` if set, else the user data folder of pxrdbench."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("pxrdbench"))


def locate(
    root: str | os.PathLike[str] | None = None, *, url: str | None = None, timeout: float = 60.0
) -> Path:
    """Path of ``structures.csv.gz``: found locally, else downloaded (checksum-verified) if a URL is set.

    Raises DatasetError saying where to put the file and where it comes from.
    """
    try:
        return resolve_data_file(RELATIVE_PATH, root, dataset=SOURCE, origin=ORIGIN)
    except DatasetError as missing:
        url = url or os.environ.get(URL_ENV)
        if not url:
            raise
        dest = download_dir() / RELATIVE_PATH
        try:
            return download_verified(url, dest, SHA256, timeout=timeout)
        except DatasetError as failed:
            raise DatasetError(f"{missing}. Download attempt: {failed}") from failed


def iter_mp_cgcnn(
    *,
    max_structures: int | None = None,
    root: str | os.PathLike[str] | None = None,
    url: str | None = None,
) -> Iterator[SourceItem]:
    """Yield the MP-CGCNN structures in file order; record id = the Materials Project id (``"mp-1234"``).

    Args:
        max_structures: stop after this many rows (records + failures); ``None`` = all 36,737.
        root: a folder holding ``mp-cgcnn/structures.csv.gz``, or the file itself.
        url: download URL used only when the file is not found locally.
    """
    limit = check_max_structures(max_structures)
    path = locate(root, url=url)
    rows = iter_csv_rows(path, ["material_id", "formation_energy_per_atom", "cif"])
    for index, row in enumerate(islice(rows, limit)):
        record_id = str(row["material_id"] or f"{SOURCE}:row{index}")
        energy = row["formation_energy_per_atom"]
        meta = {"formation_energy_per_atom": None if energy is None else float(energy)}
        yield parse_cif_entry(row["cif"], record_id, SOURCE, meta=meta)


def fingerprint_mp_cgcnn(root: str | os.PathLike[str] | None = None) -> str:
    """SHA-256 of the CSV file (raises DatasetError when it is absent)."""
    return file_fingerprint(resolve_data_file(RELATIVE_PATH, root, dataset=SOURCE, origin=ORIGIN))


INFO = SourceInfo(
    name=SOURCE,
    iterate=iter_mp_cgcnn,
    fingerprint=fingerprint_mp_cgcnn,
    description="Materials Project structures of the CGCNN formation-energy set (DFT-relaxed, ca. 2018)",
    expected_count=EXPECTED_COUNT,
    licence="repository MIT; data Materials Project CC BY 4.0",
    provenance=ORIGIN,
    notes="P1 CIFs: the space group is recomputed with spglib when labels are built",
)
