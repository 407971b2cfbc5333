"""Crystal graphs for structure encoders: periodic neighbour lists and torch_geometric ``Data`` objects.

Edges follow the torch_geometric convention ``edge_index = [source j, target i]``: messages flow from the
neighbour j (an atom in the cell at lattice offset ``cell_shift``) to the centre i, and encoders aggregate at
``edge_index[1]``. ``edge_vec`` points from the centre to the neighbour image:

    edge_vec = (f_j + cell_shift − f_i) · L   (Å; f fractional coordinates, L rows = lattice vectors).

Neighbours come from pymatgen's ``Structure.get_neighbor_list(r)`` (periodic images included, self at distance
0 excluded); ``pyg-lib``'s ``radius_graph`` is not installable here and would not handle periodicity anyway.

Choices (documented where the sources are silent or where we deviate):
- CGCNN graphs keep the ``max_neighbors`` nearest neighbours within ``radius``. Ties are broken by
  (distance rounded to 1e-6 Å, neighbour atomic number, neighbour index), so equivalent choices give identical
  features and the graph is invariant to site order and origin shifts.
- Atoms with fewer neighbours are padded to ``max_neighbors`` edges of distance ``pad_distance``
  (radius + 1 Å, as CGCNN's public code). CGCNN pads with atom index 0; we pad with a self-loop (j = i)
  instead, because index 0 depends on the site order and would break permutation invariance. The Gaussian
  expansion of radius + 1 Å is ≈ e^-25, so padded edges carry essentially no distance signal, as in CGCNN.
- A disordered site is represented by its majority species (largest occupancy; ties → larger Z). Vacancy
  fractions are ignored. Atomic numbers must lie in 1..100 (the encoders' embedding range).
"""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data import Data

from pxrdbench.errors import StructureError

MAX_ATOMIC_NUMBER = 100


def majority_atomic_numbers(structure: Structure) -> np.ndarray:
    """Atomic number of each site's majority species (largest occupancy, ties → larger Z); int64 [n_sites]."""
    if len(structure) == 0:
        raise StructureError("structure", "has no sites")
    numbers = np.empty(len(structure), dtype=np.int64)
    for index, site in enumerate(structure):
        candidates = []
        for species, occupancy in site.species.items():
            z = getattr(species, "Z", None)
            if z is None:
                raise StructureError(
                    f"site {index}", f"species {species} has no atomic number (dummy species)"
                )
            candidates.append((float(occupancy), int(z)))
        if not candidates:
            raise StructureError(f"site {index}", "has no species")
        z = max(candidates)[1]
        if not 1 <= z <= MAX_ATOMIC_NUMBER:
            raise StructureError(f"site {index}", f"atomic number {z} is outside 1..{MAX_ATOMIC_NUMBER}")
        numbers[index] = z
    return numbers


def _neighbor_list(structure: Structure, radius: float) -> tuple[np.ndarray, ...]:
    """(centre, neighbour, cell_shift [E,3], distance) of all periodic neighbours within ``radius`` (Å)."""
    if radius <= 0:
        raise StructureError("radius", f"must be > 0 Å, got {radius}")
    if len(structure) == 0:
        raise StructureError("structure", "has no sites")
    if not structure.volume > 1e-6:
        raise StructureError("structure", f"cell volume {structure.volume} Å³ is not positive")
    centre, neighbour, shift, distance = structure.get_neighbor_list(radius)
    return (
        np.asarray(centre, dtype=np.int64),
        np.asarray(neighbour, dtype=np.int64),
        np.asarray(shift, dtype=np.float64).reshape(-1, 3),
        np.asarray(distance, dtype=np.float64),
    )


def cgcnn_neighbors(
    structure: Structure,
    radius: float = 8.0,
    max_neighbors: int = 12,
    pad_distance: float | None = None,
    with_shift: bool = False,
) -> dict[str, np.ndarray]:
    """CGCNN neighbour graph: each atom's ``max_neighbors`` nearest periodic neighbours within ``radius``.

    Returns ``edge_index`` int64 [2, n·max_neighbors] (row 0 neighbour j, row 1 centre i; edges grouped by
    centre, nearest first) and ``distance`` float32 [E] in Å. Missing neighbours are self-loops at
    ``pad_distance`` (default radius + 1 Å). See the module docstring for the tie-break and padding choices.
    With ``with_shift``, also ``cell_shift`` float32 [E, 3]: the integer lattice offset of each neighbour image
    (0 0 0 for padding, so a padded edge is the only self-loop without offset; the dataset cache stores this).
    """
    if max_neighbors < 1:
        raise StructureError("max_neighbors", f"must be ≥ 1, got {max_neighbors}")
    pad = radius + 1.0 if pad_distance is None else float(pad_distance)
    numbers = majority_atomic_numbers(structure)
    centre, neighbour, shift, distance = _neighbor_list(structure, radius)
    # lexsort: last key is primary → centre, rounded distance, neighbour Z, neighbour index
    order = np.lexsort((neighbour, numbers[neighbour], np.round(distance, 6), centre))
    centre, neighbour, shift, distance = centre[order], neighbour[order], shift[order], distance[order]
    n = len(structure)
    sources = np.repeat(np.arange(n, dtype=np.int64), max_neighbors).reshape(n, max_neighbors)
    dists = np.full((n, max_neighbors), pad, dtype=np.float64)
    shifts = np.zeros((n, max_neighbors, 3), dtype=np.float64)
    starts = np.searchsorted(centre, np.arange(n), side="left")
    ends = np.searchsorted(centre, np.arange(n), side="right")
    for i in range(n):
        k = min(ends[i] - starts[i], max_neighbors)
        sources[i, :k] = neighbour[starts[i] : starts[i] + k]
        dists[i, :k] = distance[starts[i] : starts[i] + k]
        shifts[i, :k] = shift[starts[i] : starts[i] + k]
    targets = np.repeat(np.arange(n, dtype=np.int64), max_neighbors)
    edge_index = np.stack([sources.reshape(-1), targets])
    out = {"edge_index": edge_index, "distance": dists.reshape(-1).astype(np.float32)}
    if with_shift:
        out["cell_shift"] = shifts.reshape(-1, 3).astype(np.float32)
    return out


def radius_graph(structure: Structure, cutoff: float = 5.0) -> dict[str, np.ndarray]:
    """All periodic neighbour pairs within ``cutoff`` (Å), for equivariant encoders.

    Returns ``edge_index`` int64 [2, E] (row 0 neighbour j, row 1 centre i; sorted by centre then distance),
    ``distance`` float32 [E] (Å), ``edge_vec`` float32 [E, 3] = (f_j + shift − f_i)·L (Å, centre → neighbour)
    and ``cell_shift`` float32 [E, 3] (integer lattice offsets of the neighbour image).
    """
    centre, neighbour, shift, distance = _neighbor_list(structure, cutoff)
    order = np.lexsort((neighbour, np.round(distance, 6), centre))
    centre, neighbour, shift, distance = centre[order], neighbour[order], shift[order], distance[order]
    frac = structure.frac_coords
    edge_vec = (frac[neighbour] + shift - frac[centre]) @ structure.lattice.matrix
    return {
        "edge_index": np.stack([neighbour, centre]).astype(np.int64),
        "distance": distance.astype(np.float32),
        "edge_vec": edge_vec.astype(np.float32),
        "cell_shift": shift.astype(np.float32),
    }


def to_pyg(structure: Structure, neighbors: dict[str, np.ndarray]) -> Data:
    """A torch_geometric ``Data`` for one crystal from a :func:`cgcnn_neighbors` / :func:`radius_graph` dict.

    Fields: ``x`` Long[n] atomic numbers (majority species), ``frac_coords`` Float[n, 3], ``lattice``
    Float[1, 3, 3] (rows = lattice vectors, Å; batches to [n_graphs, 3, 3]), ``edge_index`` Long[2, E],
    ``edge_dist`` and ``edge_attr`` Float[E] (Å), plus ``edge_vec`` Float[E, 3] and ``cell_shift`` Float[E, 3]
    when the neighbour dict has them. Batch several with ``torch_geometric.data.Batch.from_data_list``.
    """
    numbers = majority_atomic_numbers(structure)
    edge_index = torch.as_tensor(np.asarray(neighbors["edge_index"]), dtype=torch.long)
    distance = torch.as_tensor(np.asarray(neighbors["distance"]), dtype=torch.float32)
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.shape[1] != distance.shape[0]:
        raise StructureError(
            "neighbors", f"edge_index {tuple(edge_index.shape)} and distance {tuple(distance.shape)} disagree"
        )
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= len(structure)):
        raise StructureError("neighbors", f"edge_index refers to atoms outside 0..{len(structure) - 1}")
    data = Data(
        x=torch.as_tensor(numbers, dtype=torch.long),
        edge_index=edge_index,
        edge_dist=distance,
        edge_attr=distance.clone(),
        frac_coords=torch.as_tensor(structure.frac_coords, dtype=torch.float32),
        lattice=torch.tensor(np.array(structure.lattice.matrix), dtype=torch.float32).unsqueeze(0),
        num_nodes=len(structure),
    )
    for key in ("edge_vec", "cell_shift"):
        if key in neighbors:
            data[key] = torch.as_tensor(np.asarray(neighbors[key]), dtype=torch.float32)
    return data


def cgcnn_graph(structure: Structure, radius: float = 8.0, max_neighbors: int = 12) -> Data:
    """Shortcut: ``to_pyg(structure, cgcnn_neighbors(structure, radius, max_neighbors))``."""
    return to_pyg(structure, cgcnn_neighbors(structure, radius, max_neighbors))
