"""The dataset cache: labels, reflections, atoms, neighbour lists and splits of every structure, built once.

Layout of one cache directory ``$PXRDBENCH_CACHE/<dataset>-<hash>/`` (the hash covers the source files, the
build parameters, the structure limit, the code's cache format and the duplicate rule, so any change gives a new
directory):

- ``manifest.json``  what was built, how, counts, build time, split hash, and the SHA-256 of every other file;
- ``entries.csv``    one row per kept structure: id, source, group, split, formula, labels, Niggli cell,
  elements, duplicate set (within-source exact duplicates, :mod:`pxrdbench.data.duplicates`; "" when none);
- ``arrays.npz``     ragged reflections (d Å, m·|F|², hkl, multiplicity), atoms (Z, float64 fractional
  coordinates and lattice), CGCNN neighbour lists and radius graphs as neighbour indices + int8 image offsets,
  their geometry rebuilt on read (:mod:`pxrdbench.data.cache_arrays` has the full table);
- ``failures.csv``   every entry that was skipped, with its id, stage and reason;
- ``duplicates.csv`` entries dropped by cross-source deduplication (merged datasets only).

Writes go to a temporary sibling directory that is renamed into place when complete, so a reader never sees a
partial cache; every file is checked against the manifest on load, and a mismatch means rebuild, never read.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.data.cache_arrays import write_arrays
from pxrdbench.data.entry import BuildParams, process_entry_compact, process_entry_star
from pxrdbench.data.grouping import union_groups
from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.errors import CacheError

CACHE_FORMAT = 4
"""Bump when the on-disk layout or the meaning of a cached value changes (3: ``duplicate_set`` column; 4: compact
graphs, float64 atoms). The format is part of the cache hash, so a new format builds a new directory."""

DATA_FILES = ("entries.csv", "arrays.npz", "failures.csv", "duplicates.csv")


def cache_root() -> Path:
    """``$PXRDBENCH_CACHE`` if set, else the user cache directory (e.g. ``~/.cache/pxrdbench``)."""
    env = os.environ.get("PXRDBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("pxrdbench"))


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_key(
    dataset: str,
    params: BuildParams,
    max_structures: int | None,
    split_seed: int,
    fractions: tuple[float, ...],
) -> dict[str, Any]:
    """What the cache content depends on; its SHA-256 names the directory."""
    from pxrdbench.data.duplicates import RULE
    from pxrdbench.data.sources import source_fingerprint

    return {
        "cache_format": CACHE_FORMAT,
        "duplicate_rule": dict(RULE),
        "dataset": dataset,
        "source_fingerprint": source_fingerprint(dataset),
        "params": params.to_dict(),
        "max_structures": max_structures,
        "split_seed": split_seed,
        "fractions": list(fractions),
    }


def cache_hash(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def cache_dir_for(dataset: str, digest: str, root: Path | None = None) -> Path:
    """``<root>/<dataset>-<digest>``, the name made safe for any file system: ``+`` → ``-``; ``/``, ``\\`` and
    ``:`` → ``_``; cut to 96 characters (long paths in ``cif_dir:<path>``; the digest keeps names unique)."""
    safe = dataset.replace("+", "-").replace("/", "_").replace("\\", "_").replace(":", "_")[:96]
    return (root or cache_root()) / f"{safe}-{digest}"


def _iter_processed(
    records: Iterable[StructureRecord], params: BuildParams, workers: int
) -> Iterator[tuple[StructureRecord, dict[str, Any] | str]]:
    """Process records in order, in ``workers`` processes when > 1 (order preserved)."""
    from pxrdbench.data.sources.base import CIF_TEXT_KEY

    if workers <= 1:
        for rec in records:
            yield rec, process_entry_compact(rec.id, rec.structure, params, rec.meta.pop(CIF_TEXT_KEY, None))
        return
    import multiprocessing as mp

    pending: dict[str, StructureRecord] = {}

    def tasks() -> Iterator[tuple[str, Any, BuildParams, str | None]]:
        for rec in records:
            pending[rec.id] = rec
            yield rec.id, rec.structure, params, rec.meta.pop(CIF_TEXT_KEY, None)

    with mp.get_context("spawn").Pool(workers) as pool:
        for rec_id, result in pool.imap(process_entry_star, tasks(), chunksize=8):
            yield pending.pop(rec_id), result


def build_cache(
    dataset: str,
    *,
    max_structures: int | None = None,
    workers: int = 1,
    params: BuildParams | None = None,
    split_seed: int = 0,
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
    root: Path | None = None,
    force: bool = False,
    log: Any = None,
) -> Path:
    """Build (or find) the cache of ``dataset`` and return its directory.

    Every source entry is parsed, labelled and simulated once; failures are listed in ``failures.csv`` with
    their reason and counted in the manifest. An existing complete, verified cache with the same hash is
    reused unless ``force``; a corrupt one is removed and rebuilt.
    """
    from pxrdbench.data.sources import iter_dataset
    from pxrdbench.data.splits import make_splits, split_hash
    from pxrdbench.progress import progress_iter

    log = log or (lambda msg: print(msg, file=sys.stderr))
    params = params or BuildParams()
    key = cache_key(dataset, params, max_structures, split_seed, fractions)
    digest = cache_hash(key)
    final = cache_dir_for(dataset, digest, root)
    if final.exists() and not force:
        try:
            verify_cache(final)
            return final
        except CacheError as exc:
            log(f"cache {final} is corrupt ({exc}); rebuilding")
    t0 = time.perf_counter()
    failures: list[tuple[str, str, str, str]] = []
    ok: list[tuple[StructureRecord, dict[str, Any]]] = []
    n_seen = 0
    read_order: dict[str, int] = {}  # id -> position in the source, to list failures in source order

    def records() -> Iterator[StructureRecord]:
        nonlocal n_seen
        from pxrdbench.data.sources.base import deferred_parsing

        # With worker processes, CIF parsing moves into the workers (the main process only reads the source).
        with deferred_parsing() if workers > 1 else contextlib.nullcontext():
            for item in iter_dataset(dataset, max_structures=max_structures):
                n_seen += 1
                read_order[item.id] = n_seen
                if isinstance(item, SourceFailure):
                    failures.append((item.id, item.source, "parse", item.reason))
                else:
                    yield item

    processed = _iter_processed(records(), params, workers)
    for rec, result in progress_iter(processed, description=f"building {dataset}", total=max_structures):
        if isinstance(result, str):
            stage, reason = ("parse", result[7:]) if result.startswith("parse: ") else ("process", result)
            failures.append((rec.id, rec.source, stage, reason))
        else:
            ok.append((rec, result))
    # With workers > 1, source failures are recorded by the pool's feeder thread ahead of processing failures;
    # a stable sort by source position makes failures.csv identical for any number of workers.
    failures.sort(key=lambda f: read_order.get(f[0], 0))
    ok, duplicates = _deduplicate(dataset, ok)
    if not ok:
        raise CacheError(f"dataset {dataset!r}: no structure could be processed ({len(failures)} failed)")
    groups = union_groups(
        [(r.source, r.group) for r, _ in ok],
        [f"{res['formula']}|{res['labels']['space_group_number']}" for _, res in ok],
    )
    ids = [res["id"] for _, res in ok]
    strata = [int(res["labels"]["space_group_number"]) for _, res in ok]
    splits = make_splits(ids, groups, strata, fractions=fractions, seed=split_seed)
    split_of = {i: name for name, members in splits.items() for i in members}
    duplicate_set = _duplicate_sets(ok, log)
    tmp = final.with_name(final.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _write_entries(tmp / "entries.csv", ok, groups, split_of, duplicate_set)
    write_arrays(tmp / "arrays.npz", [res for _, res in ok])
    _write_rows(tmp / "failures.csv", ("id", "source", "stage", "reason"), failures)
    _write_rows(tmp / "duplicates.csv", ("id", "source", "duplicate_of"), duplicates)
    split_counts = {name: len(members) for name, members in splits.items()}
    manifest = {
        **key,
        "hash": digest,
        "pxrdbench_version": _version(),
        "counts": {
            "entries_seen": n_seen,
            "kept": len(ok),
            "failed": len(failures),
            "failed_parse": sum(1 for f in failures if f[2] == "parse"),
            "failed_process": sum(1 for f in failures if f[2] == "process"),
            "duplicates_dropped": len(duplicates),
            "duplicate_sets": len({d for d in duplicate_set if d}),
            "in_duplicate_sets": sum(1 for d in duplicate_set if d),
            "splits": split_counts,
        },
        "split_hash": split_hash(splits),
        "build_time_s": round(time.perf_counter() - t0, 2),
        "files": {name: sha256_file(tmp / name) for name in DATA_FILES},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    log(
        f"{dataset}: {n_seen} entries read, {len(ok)} kept, {len(failures)} failed "
        f"({manifest['counts']['failed_parse']} parse, {manifest['counts']['failed_process']} processing), "
        f"{len(duplicates)} duplicates dropped, {manifest['counts']['duplicate_sets']} duplicate sets "
        f"({manifest['counts']['in_duplicate_sets']} entries); splits {split_counts}; "
        f"{manifest['build_time_s']} s -> {final}"
    )
    return final


def _deduplicate(
    dataset: str, ok: list[tuple[StructureRecord, dict[str, Any]]]
) -> tuple[list[tuple[StructureRecord, dict[str, Any]]], list[tuple[str, str, str]]]:
    """Merged datasets ("a+b"): keep the first entry per (reduced formula, space group) in source order."""
    if "+" not in dataset:
        return ok, []
    from pxrdbench.data.dedup import deduplicate

    order = {name: i for i, name in enumerate(dataset.split("+"))}
    entries = [
        (res["id"], rec.source, f"{res['formula']}|{res['labels']['space_group_number']}") for rec, res in ok
    ]
    kept_ids, dropped = deduplicate(entries, source_priority=order)
    keep = set(kept_ids)
    source_of = {res["id"]: rec.source for rec, res in ok}
    return [x for x in ok if x[1]["id"] in keep], [(i, source_of[i], dup) for i, dup in dropped]


def _duplicate_sets(ok: list[tuple[StructureRecord, dict[str, Any]]], log: Any) -> list[str]:
    """Within-source exact-duplicate label per kept entry (:func:`pxrdbench.data.duplicates.duplicate_sets`).

    Structures are rebuilt from the cached atoms (majority species, fractional coordinates, cell; rounded to
    float32 as in cache formats ≤ 3, so the labels do not change), never from the parsed record, so the labels are
    the same for any number of build workers (which parse in the workers); partial occupancies still count
    through the formula, which must agree.
    """
    from pxrdbench.data.duplicates import DuplicateCandidate, duplicate_sets, structure_loader

    candidates = [
        DuplicateCandidate(
            id=res["id"],
            source=rec.source,
            formula=res["formula"],
            space_group=int(res["labels"]["space_group_number"]),
            lattice=tuple(res["labels"]["niggli"]),
            structure=structure_loader(
                res["atoms"]["z"],
                np.asarray(res["atoms"]["frac"], dtype=np.float32),
                np.asarray(res["atoms"]["lattice"], dtype=np.float32),
            ),
        )
        for rec, res in ok
    ]
    return duplicate_sets(candidates, log=log)


def _write_entries(
    path: Path, ok: list, groups: list[str], split_of: dict[str, str], duplicate_set: list[str]
) -> None:
    cols = (  # noqa: SIM905
        "index id source group split formula space_group space_group_symbol crystal_system laue_class "
        "extinction_group a b c alpha beta gamma n_sites volume elements disordered symprec_stable "
        "duplicate_set"
    ).split()
    rows = []
    for i, ((rec, res), group, dup) in enumerate(zip(ok, groups, duplicate_set, strict=True)):
        lab = res["labels"]
        a, b, c, al, be, ga = lab["niggli"]
        rows.append(
            (
                i, res["id"], rec.source, group, split_of[res["id"]], res["formula"],
                lab["space_group_number"], lab["space_group_symbol"], lab["crystal_system_index"],
                lab["laue_class"], lab["extinction_group"],
                a, b, c, al, be, ga, res["n_sites"], res["volume"], " ".join(map(str, res["elements"])),
                int(res["disordered"]), int(lab["symprec_stable"]), dup,
            )
        )  # fmt: skip
    _write_rows(path, cols, rows)


def _write_rows(path: Path, header: Iterable[str], rows: Iterable[Iterable[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def _version() -> str:
    from pxrdbench import __version__

    return __version__


def verify_cache(path: Path) -> dict[str, Any]:
    """Check that ``path`` is a complete cache whose files match the manifest; return the manifest."""
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise CacheError(f"{path}: no manifest.json (partial or foreign directory)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise CacheError(f"{manifest_path}: unreadable manifest ({exc})") from exc
    if manifest.get("cache_format") != CACHE_FORMAT:
        raise CacheError(
            f"{path}: cache format {manifest.get('cache_format')} != {CACHE_FORMAT} (written by another pxrdbench "
            f"version); rebuild it with `pxrdbench data build {manifest.get('dataset', '<dataset>')}`, which "
            "writes a new directory (this one can then be deleted)"
        )
    for name, digest in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise CacheError(f"{file}: missing")
        if sha256_file(file) != digest:
            raise CacheError(f"{file}: checksum mismatch (corrupt or modified)")
    if set(manifest.get("files", {})) != set(DATA_FILES):
        raise CacheError(
            f"{path}: manifest lists {sorted(manifest.get('files', {}))}, expected {list(DATA_FILES)}"
        )
    return manifest
