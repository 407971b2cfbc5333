"""Per-structure processing for the cache: labels, reflections, atoms and neighbour lists of one record.

Pure with respect to its inputs (a structure and :class:`BuildParams`), so the builder can run it in worker
processes. A failure is returned as a reason string, never raised, so one bad entry cannot abort a build.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MAX_Z = 100
"""Element multi-hot length: Z = 1..100."""

ZERO_INTENSITY = 1e-12
"""Reflections with m·|F|² below this fraction of the strongest are systematic absences (|F|² ~ 1e-28 from
rounding): they are not cached, since they render to nothing and would count against a view's ``max_peaks``."""


@dataclass(frozen=True)
class BuildParams:
    """Everything that determines the content of a cache (and therefore its hash).

    Attributes:
        d_min: smallest d-spacing kept (Å); the smallest any registered view needs (see ``views.required_d_min``).
        symprec, angle_tolerance: spglib tolerances for the labels (Å, degrees).
        ladder: symprec values (Å) across which the space group must not change for ``symprec_stable``.
        cgcnn_radius, cgcnn_max_neighbors: CGCNN neighbour lists (Å; count kept per atom).
        radius_cutoff: radius graph for equivariant encoders (Å).
        max_atoms: structures with more sites are skipped (reported), bounding memory of graphs and rendering.
    """

    d_min: float = 0.85
    symprec: float = 0.1
    angle_tolerance: float = 5.0
    ladder: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1)
    cgcnn_radius: float = 8.0
    cgcnn_max_neighbors: int = 12
    radius_cutoff: float = 5.0
    max_atoms: int = 500

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def majority_atomic_numbers(structure: Any) -> np.ndarray:
    """Atomic number of the majority species of each site (ties: heavier element); vacancies ignored."""
    out = np.empty(len(structure), dtype=np.int16)
    for i, site in enumerate(structure):
        items = sorted(site.species.items(), key=lambda kv: (kv[1], kv[0].Z))
        out[i] = items[-1][0].Z
    return out


def process_entry(
    record_id: str, structure: Any, params: BuildParams, cif_text: str | None = None
) -> dict[str, Any] | str:
    """Labels, reflections, atoms and graphs of one structure; a string (the reason) on failure.

    ``structure`` may be None with ``cif_text`` given: the structure is then parsed here (in a worker). Atoms are
    float64 (``frac``, ``lattice``); each graph (``cgcnn``, ``radius``) holds ``edge_index`` [2, E], ``distance``
    and ``cell_shift`` (int8 image offsets, see :mod:`pxrdbench.data.cache_arrays`), ``radius`` also ``edge_vec``.
    """
    from pxrdbench.data.cache_arrays import image_offsets
    from pxrdbench.data.graphs import cgcnn_neighbors, radius_graph
    from pxrdbench.data.structure_io import validate_structure
    from pxrdbench.errors import PxrdbenchError
    from pxrdbench.physics.reflections import compute_reflections
    from pxrdbench.symmetry.labels import symmetry_labels

    if structure is None:  # deferred parsing: the source handed over the CIF text (see sources.base)
        from pxrdbench.data.sources.base import parse_cif_entry

        parsed = parse_cif_entry(cif_text, record_id, "deferred")
        if not hasattr(parsed, "structure"):
            return f"parse: {parsed.reason}"
        structure = parsed.structure
    try:
        if len(structure) > params.max_atoms:
            return f"{len(structure)} sites > max_atoms={params.max_atoms}"
        validate_structure(structure, record_id)
        labels = symmetry_labels(
            structure,
            symprec=params.symprec,
            angle_tolerance=params.angle_tolerance,
            ladder=params.ladder,
            source=record_id,
        )
        refl = compute_reflections(structure, params.d_min, source=record_id)
        keep = refl.intensity > ZERO_INTENSITY * (refl.intensity.max() if len(refl) else 0.0)
        if not keep.any():
            return f"no reflection with d >= {params.d_min} Å"
        cg = cgcnn_neighbors(
            structure, radius=params.cgcnn_radius, max_neighbors=params.cgcnn_max_neighbors, with_shift=True
        )
        rg = radius_graph(structure, cutoff=params.radius_cutoff)
        cg_shift, rg_shift = image_offsets(cg["cell_shift"]), image_offsets(rg["cell_shift"])
    except PxrdbenchError as exc:
        return str(exc.reason if hasattr(exc, "reason") else exc)
    except Exception as exc:  # any library failure on one entry is reported, never fatal to the build
        return f"{type(exc).__name__}: {exc}"
    elements = sorted({el.Z for el in structure.composition.elements if 1 <= el.Z <= MAX_Z})
    comp = structure.composition
    return {
        "id": record_id,
        "labels": labels.to_dict(),
        "formula": comp.reduced_formula,
        "n_sites": len(structure),
        "volume": float(structure.volume),
        "elements": elements,
        "disordered": not structure.is_ordered,
        "reflections": {
            "d": refl.d[keep].astype(np.float64),
            "intensity": refl.intensity[keep].astype(np.float32),
            "hkl": refl.hkl[keep].astype(np.int16),
            "multiplicity": refl.multiplicity[keep].astype(np.int32),
        },
        "atoms": {
            "z": majority_atomic_numbers(structure),
            "frac": np.asarray(structure.frac_coords, dtype=np.float64),
            "lattice": np.asarray(structure.lattice.matrix, dtype=np.float64),
        },
        "cgcnn": {
            "edge_index": np.asarray(cg["edge_index"], dtype=np.int32),
            "distance": np.asarray(cg["distance"], dtype=np.float32),
            "cell_shift": cg_shift,
        },
        "radius": {
            "edge_index": np.asarray(rg["edge_index"], dtype=np.int32),
            "distance": np.asarray(rg["distance"], dtype=np.float32),
            "edge_vec": np.asarray(rg["edge_vec"], dtype=np.float32),
            "cell_shift": rg_shift,
        },
    }


def process_entry_compact(
    record_id: str, structure: Any, params: BuildParams, cif_text: str | None = None
) -> dict[str, Any] | str:
    """``process_entry`` with the graphs in the cache's compact form
    (:func:`pxrdbench.data.cache_arrays.compact_graphs`), as the cache builder keeps them."""
    from pxrdbench.data.cache_arrays import compact_graphs

    result = process_entry(record_id, structure, params, cif_text)
    return result if isinstance(result, str) else compact_graphs(result)


def process_entry_star(args: tuple[str, Any, BuildParams, str | None]) -> tuple[str, dict[str, Any] | str]:
    """:func:`process_entry_compact` for ``Pool.imap`` (one tuple argument); returns (id, result)."""
    record_id, structure, params, cif_text = args
    return record_id, process_entry_compact(record_id, structure, params, cif_text)
