"""Helpers every structure source shares: source metadata, data-file resolution, verified downloads, CIF rows.

A source is a function ``iter_<name>(*, max_structures=None, root=None, ...)`` that yields
:class:`~pxrdbench.data.records.StructureRecord` or :class:`~pxrdbench.data.records.SourceFailure`; one bad
entry becomes a failure with its id and reason and never stops the iteration.

Data files are looked up in this order: an explicit ``root`` argument, ``$PXRDBENCH_DATA``, then the
``shared/data`` folder beside the project checkout (``<repo>/../shared/data``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.errors import DatasetError, InputError

SourceItem = StructureRecord | SourceFailure
DATA_ENV = "PXRDBENCH_DATA"


@dataclass(frozen=True)
class SourceInfo:
    """A registered structure source and what the docs say about it.

    Attributes:
        name: registry name (``"amcsd"``).
        iterate: ``iterate(*, max_structures=None, root=None, **kw)`` yielding records and failures.
        fingerprint: ``fingerprint(root=None) -> str``; changes when the source content changes (cache keys).
        description: one line for the docs.
        expected_count: entries the full source yields (``None`` when it depends on arguments).
        licence: licence of the data.
        provenance: where the data comes from (URL / repository and commit).
        notes: caveats (missing splits, optional packages).
    """

    name: str
    iterate: Callable[..., Iterator[SourceItem]]
    fingerprint: Callable[..., str]
    description: str
    expected_count: int | None
    licence: str
    provenance: str
    notes: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def check_max_structures(max_structures: int | None) -> int | None:
    """Validate the ``max_structures`` argument (``None`` = all; otherwise an integer >= 0)."""
    if max_structures is None:
        return None
    if isinstance(max_structures, bool) or not isinstance(max_structures, int) or max_structures < 0:
        raise InputError("max_structures", f"must be None or an integer >= 0, got {max_structures!r}")
    return max_structures


def repo_shared_data() -> Path:
    """The ``shared/data`` folder beside the project checkout (``<repo>/../shared/data``; may not exist)."""
    repo_root = Path(__file__).resolve().parents[4]
    return repo_root.parent / "shared" / "data"


def data_search_roots(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for data files, in order: ``root``, ``$PXRDBENCH_DATA``, ``<repo>/../shared/data``."""
    roots: list[Path] = []
    if root is not None:
        roots.append(Path(root).expanduser())
    env = os.environ.get(DATA_ENV)
    if env:
        roots.append(Path(env).expanduser())
    roots.append(repo_shared_data())
    return roots


def resolve_data_file(
    relative: str,
    root: str | os.PathLike[str] | None = None,
    *,
    dataset: str,
    origin: str,
) -> Path:
    """Find ``relative`` (e.g. ``"mp-cgcnn/structures.csv.gz"``) under the data roots.

    ``root`` may also point straight at the file. Raises DatasetError naming every place searched, where to
    put the file and where it originally comes from (``origin``).
    """
    if root is not None and Path(root).expanduser().is_file():
        return Path(root).expanduser()
    searched = []
    for base in data_search_roots(root):
        candidate = base / relative
        searched.append(str(candidate))
        if candidate.is_file():
            return candidate
    raise DatasetError(
        f"dataset {dataset!r}: {relative} not found (searched: {', '.join(searched)}). Put the file at "
        f"$PXRDBENCH_DATA/{relative} or pass root=<folder>. Original source: {origin}"
    )


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, memoised on (path, size, modification time) so cache keys stay cheap."""
    st = os.stat(path)
    return _cached_sha256(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def download_verified(url: str, dest: str | os.PathLike[str], sha256: str, *, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` and keep it only if its SHA-256 equals ``sha256``.

    The bytes go to a temporary file beside ``dest`` that replaces ``dest`` atomically after the check, so a
    failed or corrupt download never leaves a file that looks valid. Any network failure or checksum mismatch
    raises DatasetError naming the URL.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256.lower():
            raise DatasetError(
                f"download {url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}; "
                "file discarded"
            )
        os.replace(tmp, dest)
        return dest
    except DatasetError:
        raise
    except (OSError, ValueError) as exc:
        raise DatasetError(f"download {url} failed ({type(exc).__name__}: {exc}); no network?") from exc
    finally:
        tmp.unlink(missing_ok=True)


_DEFER_PARSING: ContextVar[bool] = ContextVar("defer_cif_parsing", default=False)
CIF_TEXT_KEY = "_cif_text"


@contextmanager
def deferred_parsing() -> Iterator[None]:
    """Within this block, :func:`parse_cif_entry` yields records whose ``structure`` is None and whose
    ``meta[CIF_TEXT_KEY]`` holds the CIF text, so a parallel builder can parse in its worker processes."""
    token = _DEFER_PARSING.set(True)
    try:
        yield
    finally:
        _DEFER_PARSING.reset(token)


def parse_cif_entry(
    text: Any, record_id: str, source: str, *, group: str = "", meta: dict[str, Any] | None = None
) -> SourceItem:
    """Parse one CIF text into a StructureRecord, or a SourceFailure with the reason (no raise on bad CIF).

    Uses :func:`pxrdbench.data.structure_io.read_cif_text` (pymatgen CifParser with a tolerant retry; the
    structure it returns is already validated for diffraction).
    """
    from pxrdbench.data.structure_io import read_cif_text
    from pxrdbench.errors import PxrdbenchError

    if not isinstance(text, str) or not text.strip():
        return SourceFailure(record_id, source, "empty or missing CIF text")
    if _DEFER_PARSING.get():
        return StructureRecord(record_id, None, source, group, {**(meta or {}), CIF_TEXT_KEY: text})
    try:
        structure = read_cif_text(text, record_id)
    except PxrdbenchError as exc:
        return SourceFailure(record_id, source, str(getattr(exc, "reason", exc)))
    except Exception as exc:  # a library failure on one entry is that entry's failure, not the source's
        return SourceFailure(record_id, source, f"{type(exc).__name__}: {exc}")
    return StructureRecord(record_id, structure, source, group, dict(meta or {}))


def iter_csv_rows(path: Path, columns: list[str], *, chunksize: int = 2000) -> Iterator[dict[str, Any]]:
    """Stream the rows of a (possibly gzipped) CSV as dicts holding ``columns``, ``chunksize`` rows at a time.

    Raises DatasetError when a required column is missing.
    """
    import pandas as pd

    with pd.read_csv(path, chunksize=chunksize, dtype={"material_id": str}) as reader:
        for chunk in reader:
            missing = [c for c in columns if c not in chunk.columns]
            if missing:
                raise DatasetError(f"{path}: missing column(s) {missing}; found {list(chunk.columns)}")
            for row in chunk[columns].to_dict("records"):
                yield {k: (None if _is_missing(v) else v) for k, v in row.items()}


def _is_missing(value: Any) -> bool:
    return isinstance(value, float) and value != value  # NaN from pandas


def plain_meta(values: dict[str, Any]) -> dict[str, Any]:
    """Copy of ``values`` with numpy scalars turned into Python numbers (JSON-friendly meta)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        out[key] = value.item() if hasattr(value, "item") and callable(value.item) else value
    return out
