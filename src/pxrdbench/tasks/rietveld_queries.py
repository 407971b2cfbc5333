"""The queries of the Rietveld task: measured patterns of powder CIFs (``_pd_`` loops) and the structures refined
against them, and those structures processed like cache entries (labels, reflections, graphs) so they can hide
among the dataset's test split as candidates (:mod:`pxrdbench.tasks.rietveld`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pxrdbench.errors import DatasetError, PxrdbenchError

if TYPE_CHECKING:
    from pxrdbench.data.experimental.pattern import ExperimentalPattern

DEFAULT_FOLDER = "experimental/pdcif15"
"""Where the Rietveld CIFs are looked for under each data root (``$PXRDBENCH_DATA``, ``../shared/data``)."""


@dataclass
class RietveldQuery:
    """One measured pattern and the structures refined against it (``phases``: (name, pymatgen Structure))."""

    id: str
    pattern: ExperimentalPattern
    phases: list[tuple[str, Any]]


@dataclass
class HiddenSet:
    """The queries' refined structures, processed as cache entries; ``owner[k]`` = query index of item k."""

    items: list[dict[str, Any]] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def find_folder(folder: str | Path | None = None) -> Path:
    """``folder`` itself, or the first data root holding ``experimental/pdcif15``; DatasetError when none does."""
    from pxrdbench.data.sources.base import data_search_roots

    candidates = [Path(folder)] if folder is not None else [r / DEFAULT_FOLDER for r in data_search_roots()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(
        f"no Rietveld CIF folder (searched: {', '.join(map(str, candidates))}); put powder CIFs with "
        f"_pd_ loops in $PXRDBENCH_DATA/{DEFAULT_FOLDER}"
    )


def load_rietveld_queries(
    folder: str | Path | None = None,
) -> tuple[list[RietveldQuery], list[tuple[str, str]]]:
    """Every pattern of every ``*.cif`` in the folder with its phases; (queries, skipped (name, reason)).

    A file that cannot be read, or whose phases yield no structure, is skipped with its reason, never fatal.
    """
    from pxrdbench.data.experimental.rietveld_cif import load_rietveld_cif

    queries: list[RietveldQuery] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(find_folder(folder).glob("*.cif")):
        try:
            patterns = load_rietveld_cif(path)
        except PxrdbenchError as exc:
            skipped.append((path.name, str(getattr(exc, "reason", exc))))
            continue
        for pattern in patterns:
            phases = [
                (str(p["name"]), p["structure"])
                for p in pattern.provenance.get("phases", [])
                if p.get("structure") is not None
            ]
            if phases:
                queries.append(RietveldQuery(pattern.id, pattern, phases))
            else:
                skipped.append((pattern.id, "no phase of the file gives a structure"))
    return queries, skipped


def hidden_structures(queries: list[RietveldQuery], cache: Any, view: Any, graph: str | None) -> HiddenSet:
    """Process every phase like a cache entry; items in :class:`~pxrdbench.data.torch_dataset.
    ReflectionDataset` form, indexed after the cache's rows (so render seeds never collide with them)."""
    from pxrdbench.data.entry import MAX_Z, process_entry
    from pxrdbench.data.torch_dataset import graph_from_arrays, select_reflections

    hidden = HiddenSet()
    params = cache.params
    for qi, query in enumerate(queries):
        for name, structure in query.phases:
            result = process_entry(f"{query.id}#{name}", structure, params)
            if isinstance(result, str):
                hidden.skipped.append((f"{query.id}#{name}", result))
                continue
            refl, labels = result["reflections"], result["labels"]
            d, mf2 = select_reflections(refl["d"], refl["intensity"], view.d_min, view.max_peaks)
            elements = np.zeros(MAX_Z, dtype=bool)
            elements[np.asarray(result["elements"], dtype=int) - 1] = True
            item: dict[str, Any] = {
                "index": len(cache) + len(hidden.items),
                "d": d,
                "mf2": mf2,
                "crystal_system": int(labels["crystal_system_index"]),
                "space_group": int(labels["space_group_number"]) - 1,
                "extinction_group": int(labels["extinction_group"]),
                "lattice": np.asarray(labels["niggli"], dtype=np.float32),
                "elements": elements,
            }
            if graph is not None:
                arrays = {**result["atoms"], **(result[graph] if graph != "atoms" else {})}
                item["graph"] = graph_from_arrays(arrays)
            hidden.items.append(item)
            hidden.owner.append(qi)
    return hidden
