"""Tests for crystal graph construction (CGCNN neighbour lists, radius graphs, torch_geometric Data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from pxrdbench.data.graphs import (
    cgcnn_graph,
    cgcnn_neighbors,
    majority_atomic_numbers,
    radius_graph,
    to_pyg,
)
from pxrdbench.errors import StructureError

A_NACL = 5.64


def rocksalt() -> Structure:
    """Conventional NaCl cell (8 atoms): Na–Cl 2.82 Å (×6), Na–Na 3.988 Å (×12)."""
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return Structure(Lattice.cubic(A_NACL), ["Na"] * 4 + ["Cl"] * 4, np.vstack([fcc, fcc + 0.5]) % 1.0)


def triclinic() -> Structure:
    return Structure(
        Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 103.0),
        ["Si", "O", "O"],
        [[0.1, 0.2, 0.3], [0.45, 0.1, 0.7], [0.8, 0.6, 0.15]],
    )


def test_rocksalt_twelve_nearest_are_six_cl_then_six_na():
    s = rocksalt()
    nb = cgcnn_neighbors(s)
    assert nb["edge_index"].shape == (2, 8 * 12) and nb["edge_index"].dtype == np.int64
    assert nb["distance"].dtype == np.float32
    d = nb["distance"].reshape(8, 12)
    assert np.allclose(d[:, :6], A_NACL / 2, atol=1e-5)
    assert np.allclose(d[:, 6:], A_NACL / np.sqrt(2), atol=1e-5)
    z = np.array([site.specie.Z for site in s])
    src, dst = nb["edge_index"]
    assert np.array_equal(dst, np.repeat(np.arange(8), 12))
    first_six = z[src.reshape(8, 12)[:, :6]]
    assert np.all(first_six != z[:, None])  # nearest shell is the other species
    assert np.all(z[src.reshape(8, 12)[:, 6:]] == z[:, None])


def test_too_few_neighbours_are_padded_with_self_loops_at_radius_plus_one():
    nb = cgcnn_neighbors(rocksalt(), radius=3.0, max_neighbors=12)
    d = nb["distance"].reshape(8, 12)
    src = nb["edge_index"][0].reshape(8, 12)
    assert np.allclose(d[:, :6], 2.82, atol=1e-5)
    assert np.allclose(d[:, 6:], 4.0)
    assert np.array_equal(src[:, 6:], np.repeat(np.arange(8)[:, None], 6, axis=1))
    custom = cgcnn_neighbors(rocksalt(), radius=3.0, pad_distance=9.0)
    assert np.allclose(custom["distance"].reshape(8, 12)[:, 6:], 9.0)


def test_neighbour_distances_match_pymatgen_brute_force():
    s = triclinic()
    nb = cgcnn_neighbors(s, radius=6.0, max_neighbors=5)
    for i in range(len(s)):
        brute = sorted(n.nn_distance for n in s.get_neighbors(s[i], 6.0))[:5]
        assert np.allclose(nb["distance"].reshape(3, 5)[i], brute, atol=1e-5)


def test_radius_graph_vectors_distances_and_symmetry():
    s = triclinic()
    g = radius_graph(s, cutoff=4.0)
    src, dst = g["edge_index"]
    assert np.allclose(np.linalg.norm(g["edge_vec"], axis=1), g["distance"], atol=1e-5)
    expected = (s.frac_coords[src] + g["cell_shift"] - s.frac_coords[dst]) @ s.lattice.matrix
    assert np.allclose(g["edge_vec"], expected, atol=1e-5)
    assert np.allclose(g["cell_shift"], np.round(g["cell_shift"]))
    assert g["distance"].max() <= 4.0
    # every edge j→i (vector v) has a reverse i→j with vector −v
    forward = {(a, b, *np.round(v, 4)) for a, b, v in zip(src, dst, g["edge_vec"], strict=True)}
    reverse = {(b, a, *np.round(-v, 4)) for a, b, v in zip(src, dst, g["edge_vec"], strict=True)}
    assert forward == reverse
    assert radius_graph(rocksalt(), cutoff=3.0)["edge_index"].shape == (2, 48)


def test_to_pyg_fields_and_batching():
    s, t = rocksalt(), triclinic()
    gs, gt = cgcnn_graph(s), to_pyg(t, radius_graph(t, 4.0))
    assert gs.x.dtype == torch.long and sorted(set(gs.x.tolist())) == [11, 17]
    assert gs.lattice.shape == (1, 3, 3) and gs.frac_coords.shape == (8, 3)
    assert torch.equal(gs.edge_dist, gs.edge_attr)
    assert gt.edge_vec.shape == (gt.edge_index.shape[1], 3)
    batch = Batch.from_data_list([gs, gs])
    assert batch.lattice.shape == (2, 3, 3)
    assert torch.equal(batch.edge_index[:, 96:], gs.edge_index + 8)
    assert torch.equal(batch.batch, torch.repeat_interleave(torch.tensor([0, 1]), 8))


def test_disordered_site_uses_majority_species():
    s = Structure(
        Lattice.cubic(3.0),
        [{"Fe": 0.6, "Ni": 0.4}, {"Cu": 0.5, "Au": 0.5}, {"O": 0.9}],
        [[0, 0, 0], [0.5] * 3, [0.5, 0, 0]],
    )
    assert majority_atomic_numbers(s).tolist() == [26, 79, 8]


def test_invalid_structures_raise_structure_error():
    with pytest.raises(StructureError, match="no sites"):
        cgcnn_neighbors(Structure(Lattice.cubic(3.0), [], []))
    heavy = Structure(Lattice.cubic(3.0), ["Md"], [[0, 0, 0]])
    with pytest.raises(StructureError, match="site 0"):
        cgcnn_graph(heavy)
    with pytest.raises(StructureError, match="radius"):
        radius_graph(rocksalt(), cutoff=0.0)
    nb = cgcnn_neighbors(rocksalt())
    nb["edge_index"] = nb["edge_index"] + 100
    with pytest.raises(StructureError, match="neighbors"):
        to_pyg(rocksalt(), nb)
