"""Structure sources: registry (name -> source), merged datasets ("a+b+c") and their fingerprints.

A dataset name is one source name or several joined by ``+``; each part may carry an argument after a colon,
passed to the source as ``root`` (a path, or for ``synthetic`` the space groups, for ``mp_api`` a chemical
system): ``"amcsd"``, ``"mp_cgcnn+oqmd_icsd+amcsd"``, ``"cif_dir:/data/my_cifs"``, ``"synthetic:1-10"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from pxrdbench.data.records import SourceFailure
from pxrdbench.data.sources import amcsd, cdvae, cif_files, mp_api, mp_cgcnn, oqmd_icsd, synthetic
from pxrdbench.data.sources.base import SourceInfo, SourceItem, check_max_structures
from pxrdbench.errors import ConfigError, did_you_mean

SOURCES: dict[str, SourceInfo] = {
    info.name: info
    for info in (
        amcsd.INFO,
        mp_cgcnn.INFO,
        oqmd_icsd.INFO,
        cdvae.PEROV5_INFO,
        cdvae.CARBON24_INFO,
        cif_files.CIF_DIR_INFO,
        cif_files.CIF_CSV_INFO,
        synthetic.INFO,
        mp_api.INFO,
    )
}
DEFAULT_DATASET = "amcsd"

__all__ = [
    "DEFAULT_DATASET",
    "SOURCES",
    "SourceInfo",
    "get_source",
    "iter_dataset",
    "list_sources",
    "parse_dataset_name",
    "source_fingerprint",
]


def list_sources() -> list[str]:
    """Registered source names, sorted."""
    return sorted(SOURCES)


def get_source(name: str) -> SourceInfo:
    """The registered source ``name``; ConfigError with close matches when unknown."""
    try:
        return SOURCES[name]
    except KeyError:
        raise did_you_mean(name, list(SOURCES), "structure source") from None


def parse_dataset_name(dataset: str) -> list[tuple[str, str | None]]:
    """Split ``"a+b:arg"`` into ``[("a", None), ("b", "arg")]``, checking every source name."""
    if not isinstance(dataset, str) or not dataset.strip():
        raise ConfigError(f"dataset name must be a non-empty string, got {dataset!r}")
    parts: list[tuple[str, str | None]] = []
    for part in dataset.split("+"):
        name, sep, arg = part.strip().partition(":")
        get_source(name)
        parts.append((name, arg if sep else None))
    names = [p for p, _ in parts]
    if len(set(parts)) != len(parts):
        raise ConfigError(f"dataset {dataset!r} names a source twice: {names}")
    return parts


def iter_dataset(dataset: str, max_structures: int | None = None, **kw: Any) -> Iterator[SourceItem]:
    """Yield the records and failures of ``dataset`` (one source or a ``+`` merge), source by source.

    ``max_structures`` bounds the entries read (records + failures); a merge of k sources reads at most
    ceil(max_structures / k) from each. Keyword arguments go to the source; for a merge, pass them per source
    as ``source_name={...}``. An id seen twice becomes a SourceFailure (ids must be unique in a dataset).
    """
    limit = check_max_structures(max_structures)
    parts = parse_dataset_name(dataset)
    per_part = None if limit is None else math.ceil(limit / len(parts))
    if len(parts) > 1:
        unknown = sorted(set(kw) - {name for name, _ in parts})
        if unknown:
            raise ConfigError(
                f"dataset {dataset!r}: keyword(s) {unknown} must be source names with a dict of options"
            )
    seen: set[str] = set()
    emitted = 0
    for name, arg in parts:
        options = dict(kw) if len(parts) == 1 else dict(kw.get(name, {}))
        if arg is not None:
            options.setdefault("root", arg)
        for item in get_source(name).iterate(max_structures=per_part, **options):
            if limit is not None and emitted >= limit:
                return
            emitted += 1
            if item.id in seen:
                yield SourceFailure(item.id, item.source, f"duplicate id {item.id!r} in dataset {dataset!r}")
                continue
            seen.add(item.id)
            yield item


def source_fingerprint(dataset: str) -> str:
    """What the dataset's content depends on (file hashes, package versions), for cache keys.

    Raises DatasetError when a source's files are absent (the same message iterating it would give).
    """
    return "+".join(
        f"{name}={get_source(name).fingerprint(arg)}" for name, arg in parse_dataset_name(dataset)
    )
