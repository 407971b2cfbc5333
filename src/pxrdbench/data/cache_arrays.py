"""The ``arrays.npz`` file of a dataset cache: what is stored for each structure, with compact crystal graphs.

Every per-structure array is ragged (``<name>.values`` and ``<name>.offsets``; item i is
``values[offsets[i]:offsets[i + 1]]``, see :mod:`pxrdbench.data.ragged`):

=========================  ===================  ==================================================================
name                       dtype [trailing]     per structure
=========================  ===================  ==================================================================
reflections.d              float64              d-spacings (Å), descending
reflections.intensity      float32              m·|F|²
reflections.hkl            int16 [3]            Miller indices
reflections.multiplicity   int32                multiplicity
atoms.z                    int16                majority atomic number of each site
atoms.frac                 float64 [3]          fractional coordinates exactly as parsed (not wrapped into [0, 1))
cgcnn.neighbor             uint8/uint16/uint32  neighbour j of each edge; the centre is implicit (``max_neighbors``
                                                edges per atom, in atom order)
cgcnn.image                int8 [3]             lattice offset of the neighbour image; a self-loop with offset
                                                0 0 0 is CGCNN's padding (distance ``cgcnn_radius`` + 1 Å)
radius.neighbor            uint8/uint16/uint32  neighbour j of each edge (edges grouped by centre, nearest first)
radius.image               int8 [3]             lattice offset of the neighbour image
radius.degree              uint8/uint16/uint32  number of edges of each centre atom (one value per site)
=========================  ===================  ==================================================================

plus ``atoms.lattice`` float64 [N, 3, 3] (rows = lattice vectors, Å). The unsigned index types are the smallest that
hold the dataset's largest value. Edge vectors and distances are not stored: :func:`decode_graph` rebuilds them
when an item is read, in float64 from the float64 atoms, ``edge_vec = (f_j + image − f_i) · L`` and
``distance = |edge_vec|``, then returns them as float32 (what the encoders get). The edge list itself (which pairs,
in which order) is the one :mod:`pxrdbench.data.graphs` computed at build time, so no neighbour search is repeated.
Five bytes per edge (four with uint8 indices) instead of 24 (radius graph) and 12 (CGCNN).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pxrdbench.data.ragged import pack, save_ragged
from pxrdbench.errors import StructureError

GRAPH_KINDS = ("cgcnn", "radius")

_FIXED = {
    "reflections.d": ("reflections", "d", np.float64, ()),
    "reflections.intensity": ("reflections", "intensity", np.float32, ()),
    "reflections.hkl": ("reflections", "hkl", np.int16, (3,)),
    "reflections.multiplicity": ("reflections", "multiplicity", np.int32, ()),
    "atoms.z": ("atoms", "z", np.int16, ()),
    "atoms.frac": ("atoms", "frac", np.float64, (3,)),
    "cgcnn.image": ("cgcnn", "image", np.int8, (3,)),
    "radius.image": ("radius", "image", np.int8, (3,)),
}
_INDEXED = {  # unsigned index arrays: dtype chosen per dataset
    "cgcnn.neighbor": ("cgcnn", "neighbor"),
    "radius.neighbor": ("radius", "neighbor"),
    "radius.degree": ("radius", "degree"),
}


def image_offsets(shift: np.ndarray) -> np.ndarray:
    """Periodic image offsets as int8 [E, 3]; StructureError when one is not an integer or exceeds ±127."""
    shift = np.asarray(shift, dtype=np.float64).reshape(-1, 3)
    rounded = np.rint(shift)
    if not np.array_equal(rounded, shift):
        raise StructureError("cell_shift", "a periodic image offset is not an integer")
    largest = int(np.abs(rounded).max()) if rounded.size else 0
    if largest > 127:
        raise StructureError(
            "cell_shift",
            f"periodic image offset {largest} exceeds the cache's int8 range (cell thinner than r/127)",
        )
    return rounded.astype(np.int8)


def compact_graphs(result: dict[str, Any]) -> dict[str, Any]:
    """Replace the graphs of a :func:`~pxrdbench.data.entry.process_entry` result by what the cache stores.

    ``cgcnn`` and ``radius`` become ``{"neighbor", "image"}`` (+ ``"degree"`` for radius), in place; the result
    is returned. Raises ValueError if a graph does not have the edge order that :func:`decode_graph` assumes.
    """
    n = len(result["atoms"]["z"])
    cg, rg = result["cgcnn"], result["radius"]
    j, i = np.asarray(cg["edge_index"]).reshape(2, -1)
    per_atom = len(i) // n
    if len(i) != n * per_atom or not np.array_equal(i, np.repeat(np.arange(n), per_atom)):
        raise ValueError(f"{result.get('id')}: CGCNN edges are not max_neighbors per atom in atom order")
    result["cgcnn"] = {"neighbor": j.astype(np.int64), "image": image_offsets(cg["cell_shift"])}
    j, i = np.asarray(rg["edge_index"]).reshape(2, -1)
    if np.any(np.diff(i) < 0):
        raise ValueError(f"{result.get('id')}: radius-graph edges are not grouped by centre")
    degree = np.bincount(i.astype(np.int64), minlength=n)
    result["radius"] = {
        "neighbor": j.astype(np.int64),
        "image": image_offsets(rg["cell_shift"]),
        "degree": degree,
    }
    return result


def smallest_uint(largest: int) -> type:
    """The smallest unsigned integer type holding ``largest``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if largest <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


def write_arrays(path: Path, results: list[dict[str, Any]]) -> None:
    """Write ``arrays.npz`` from results passed through :func:`compact_graphs` (uncompressed, see module doc)."""
    store: dict[str, np.ndarray] = {}
    for name, (group, field, dtype, trailing) in _FIXED.items():
        save_ragged(
            store, name, pack([np.asarray(r[group][field]) for r in results], dtype=dtype, trailing=trailing)
        )
    for name, (group, field) in _INDEXED.items():
        arrays = [np.asarray(r[group][field]) for r in results]
        largest = max((int(a.max()) for a in arrays if a.size), default=0)
        save_ragged(store, name, pack(arrays, dtype=smallest_uint(largest)))
    store["atoms.lattice"] = np.stack([r["atoms"]["lattice"] for r in results]).astype(np.float64)
    with open(path, "wb") as fh:
        np.savez(fh, **store)


def decode_graph(
    kind: str,
    frac: np.ndarray,
    lattice: np.ndarray,
    neighbor: np.ndarray,
    image: np.ndarray,
    degree: np.ndarray | None = None,
    pad_distance: float | None = None,
) -> dict[str, np.ndarray]:
    """Rebuild one stored graph: ``edge_index`` int64 [2, E] (row 0 neighbour j, row 1 centre i),
    ``distance`` float32 [E] (Å), ``cell_shift`` int8 [E, 3] and, for ``radius``, ``edge_vec`` float32 [E, 3].

    Geometry in float64 from ``frac`` [n, 3] and ``lattice`` [3, 3] (rows = vectors): edge_vec = (f_j + image −
    f_i)·L, distance = |edge_vec|. ``cgcnn`` needs ``pad_distance`` (for self-loops with image 0 0 0);
    ``radius`` needs ``degree`` (edges per centre).
    """
    frac = np.asarray(frac, dtype=np.float64)
    n = len(frac)
    j = np.asarray(neighbor).astype(np.int64)
    if kind == "radius":
        if degree is None:
            raise ValueError("a radius graph needs the per-atom degree")
        i = np.repeat(np.arange(n, dtype=np.int64), np.asarray(degree).astype(np.int64))
    elif kind == "cgcnn":
        i = np.repeat(np.arange(n, dtype=np.int64), len(j) // n) if n else j
    else:
        raise ValueError(f"unknown graph kind {kind!r}; use one of {GRAPH_KINDS}")
    vec = (frac[j] + image - frac[i]) @ np.asarray(lattice, dtype=np.float64)
    distance = np.sqrt(np.einsum("ij,ij->i", vec, vec))
    out = {"edge_index": np.stack([j, i]), "cell_shift": np.asarray(image)}
    if kind == "cgcnn":
        if pad_distance is None:
            raise ValueError("a CGCNN graph needs the padding distance")
        distance[(j == i) & ~np.asarray(image).any(axis=1)] = pad_distance
    else:
        out["edge_vec"] = vec.astype(np.float32)
    out["distance"] = distance.astype(np.float32)
    return out
