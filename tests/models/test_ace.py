"""The ACE crystal encoder (EACNN): exact symmetry in float64, and its pieces against independent references.

Invariance of the pooled embedding (to 1e-9) under rotations, reflections, translations, site permutations and
equivalent cells; node features equivariant (e3nn's ``assert_equivariant``); the product basis equal to the
brute-force contraction of the atomic basis with e3nn's reduced basis; the edge convolution equal to e3nn's
``TensorProduct`` + scatter; the radial envelope's boundary conditions.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from e3nn.util.test import assert_equivariant
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation
from torch_geometric.data import Batch, Data

from pxrdbench.data.graphs import majority_atomic_numbers
from pxrdbench.errors import InputError, StructureError
from pxrdbench.models.crystal.ace import ACEEncoder
from pxrdbench.models.crystal.edge_convolution import ChannelwiseConvolution, uvu_paths
from pxrdbench.models.crystal.radial import RadialEmbedding, polynomial_envelope
from pxrdbench.models.crystal.symmetric_contraction import (
    SymmetricContraction,
    reduced_symmetric_basis,
    symmetric_formula,
)

CUTOFF = 5.0
TOLERANCE = 1e-9


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its coefficients in the default dtype
    yield
    torch.set_default_dtype(previous)


def olivine_like() -> Structure:
    """A low-symmetry 6-site triclinic cell (no two sites related by symmetry)."""
    return Structure(
        Lattice.from_parameters(4.8, 5.9, 6.4, 83.0, 95.0, 101.0),
        ["Mg", "Fe", "Si", "O", "O", "O"],
        [[0.1, 0.2, 0.3], [0.55, 0.15, 0.65], [0.8, 0.6, 0.1], [0.3, 0.75, 0.55], [0.62, 0.45, 0.88],
         [0.05, 0.9, 0.8]],
    )  # fmt: skip


def graph64(structure: Structure) -> Data:
    """The radius graph of ``structure`` with edge vectors in float64 (the cached graphs are float32)."""
    centre, neighbour, shift, _ = structure.get_neighbor_list(CUTOFF)
    frac, matrix = structure.frac_coords, structure.lattice.matrix
    edge_vec = (frac[neighbour] + shift - frac[centre]) @ matrix
    return Data(
        x=torch.as_tensor(majority_atomic_numbers(structure)),
        edge_index=torch.as_tensor(np.stack([neighbour, centre]), dtype=torch.long),
        edge_vec=torch.as_tensor(edge_vec, dtype=torch.float64),
        num_nodes=len(structure),
    )


def encoder(seed: int = 0) -> ACEEncoder:
    torch.manual_seed(seed)
    return ACEEncoder(channels=4, radial_hidden=(8,), out_dim=8).eval()


def embed(model: ACEEncoder, structure: Structure) -> torch.Tensor:
    with torch.no_grad():
        return model(Batch.from_data_list([graph64(structure)]))[0]


def transformed(structure: Structure, matrix: np.ndarray) -> Structure:
    """The same crystal with every Cartesian coordinate (lattice vectors included) mapped by ``matrix``."""
    return Structure(Lattice(structure.lattice.matrix @ matrix.T), structure.species, structure.frac_coords)


# ------------------------------------------------------------------------------------------- invariance
def test_embedding_is_invariant_under_rotation_and_reflection(float64) -> None:
    model, crystal = encoder(), olivine_like()
    reference = embed(model, crystal)
    rotation = Rotation.from_euler("zyx", [0.7, -1.1, 2.3]).as_matrix()
    mirror = np.diag([1.0, 1.0, -1.0]) @ rotation
    assert torch.allclose(embed(model, transformed(crystal, rotation)), reference, atol=TOLERANCE, rtol=0)
    assert torch.allclose(embed(model, transformed(crystal, mirror)), reference, atol=TOLERANCE, rtol=0)
    assert reference.abs().max() > 1e-3  # not trivially zero


def test_embedding_is_invariant_under_translation_and_permutation(float64) -> None:
    model, crystal = encoder(), olivine_like()
    reference = embed(model, crystal)
    shifted = Structure(crystal.lattice, crystal.species, (crystal.frac_coords + [0.31, -0.17, 0.58]) % 1.0)
    order = [4, 2, 0, 5, 1, 3]
    permuted = Structure(crystal.lattice, [crystal.species[i] for i in order], crystal.frac_coords[order])
    assert torch.allclose(embed(model, shifted), reference, atol=TOLERANCE, rtol=0)
    assert torch.allclose(embed(model, permuted), reference, atol=TOLERANCE, rtol=0)


def test_embedding_is_invariant_under_a_change_to_an_equivalent_cell(float64) -> None:
    model, crystal = encoder(), olivine_like()
    reference = embed(model, crystal)
    supercell = crystal.copy()
    supercell.make_supercell([2, 1, 1])
    basis_change = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 1]])  # det 1: the same lattice, other vectors
    other_basis = Structure(
        Lattice(basis_change @ crystal.lattice.matrix), crystal.species, crystal.cart_coords,
        coords_are_cartesian=True, to_unit_cell=True,
    )  # fmt: skip
    assert len(supercell) == 12
    assert torch.allclose(embed(model, supercell), reference, atol=TOLERANCE, rtol=0)
    assert torch.allclose(embed(model, other_basis), reference, atol=TOLERANCE, rtol=0)


def test_different_crystals_get_different_embeddings(float64) -> None:
    model, crystal = encoder(), olivine_like()
    strained = Structure(crystal.lattice.matrix * 1.03, crystal.species, crystal.frac_coords)
    substituted = crystal.copy()
    substituted.replace(1, "Ni")
    reference = embed(model, crystal)
    assert (embed(model, strained) - reference).abs().max() > 1e-3
    assert (embed(model, substituted) - reference).abs().max() > 1e-3


def test_node_features_are_equivariant(float64) -> None:
    model, graph = encoder(), graph64(olivine_like())
    hidden = model.layers[0].product.irreps_out

    def first_layer(edge_vec: torch.Tensor) -> torch.Tensor:
        return model.node_features(Data(x=graph.x, edge_index=graph.edge_index, edge_vec=edge_vec))[0]

    assert str(hidden) == "4x0e+4x1o"
    assert_equivariant(first_layer, args_in=[graph.edge_vec], irreps_in=["1o"], irreps_out=[hidden])


# ----------------------------------------------------------------------------------------------- pieces
def brute_force_contraction(
    module: SymmetricContraction, x: torch.Tensor, element: torch.Tensor
) -> torch.Tensor:
    """Σ_ν Σ_k w_{z,k,c} Σ_{j1..jν} U^{ν,L}_{k,M,j1..jν} Π A_{c,jt}, over the full D^ν index tuples."""
    a = module._per_channel(x)  # [N, C, D]
    letters = "pqr"
    outputs = []
    for weights, (_, ir) in zip(module.weights, module.out_irreps_per_channel, strict=True):
        parts = []
        for order in range(1, module.correlation + 1):
            u = reduced_symmetric_basis(str(module.per_channel), order, str(ir)).to(x.dtype)
            operands = ",".join(f"nc{letters[t]}" for t in range(order))
            parts.append(torch.einsum(f"km{letters[:order]},{operands}->nckm", u, *[a] * order))
        b = torch.cat(parts, dim=2)
        outputs.append(torch.einsum("nkc,nckm->ncm", weights[element], b).reshape(x.shape[0], -1))
    return torch.cat(outputs, dim=-1)


def test_symmetric_contraction_equals_the_brute_force_contraction(float64) -> None:
    torch.manual_seed(1)
    module = SymmetricContraction("3x0e+3x1o+3x2e+3x3o", "3x0e+3x1o", correlation=3, num_elements=5)
    x = torch.randn(4, module.irreps_in.dim)
    element = torch.tensor([0, 3, 3, 4])
    expected = brute_force_contraction(module, x, element)
    assert torch.allclose(module(x, element), expected, atol=1e-12, rtol=0)
    assert module.path_counts == [1 + 4 + 8, 1 + 3 + 12]  # 0e and 1o paths of orders 1, 2, 3 (e3nn's basis)


def test_symmetric_contraction_is_equivariant(float64) -> None:
    torch.manual_seed(2)
    module = SymmetricContraction("2x0e+2x1o+2x2e+2x3o", "2x0e+2x1o", correlation=3, num_elements=3)
    element = torch.tensor([0, 2, 1])
    assert_equivariant(
        lambda x: module(x, element), args_in=[torch.randn(3, module.irreps_in.dim)],
        irreps_in=[module.irreps_in], irreps_out=[module.irreps_out],
    )  # fmt: skip


def test_symmetric_formula_spans_the_symmetric_group() -> None:
    assert symmetric_formula(1) == "i"
    assert symmetric_formula(3) == "ijk=jik=ikj"


def test_edge_convolution_equals_e3nn_tensor_product_and_scatter(float64) -> None:
    torch.manual_seed(3)
    irreps_in, irreps_sh = o3.Irreps("3x0e+3x1o"), o3.Irreps.spherical_harmonics(3)
    keep = [ir for _, ir in irreps_sh]
    conv = ChannelwiseConvolution(irreps_in, irreps_sh, keep)
    irreps_mid, instructions = uvu_paths(irreps_in, irreps_sh, keep)
    reference = o3.TensorProduct(irreps_in, irreps_sh, irreps_mid, instructions, shared_weights=False,
                                 internal_weights=False)  # fmt: skip
    h, sh = torch.randn(5, irreps_in.dim), torch.randn(17, irreps_sh.dim)
    weights, edge_index = torch.randn(17, reference.weight_numel), torch.randint(0, 5, (2, 17))
    expected = torch.zeros(5, irreps_mid.dim).index_add_(
        0, edge_index[1], reference(h[edge_index[0]], sh, weights)
    )
    assert conv.weight_numel == reference.weight_numel
    assert torch.allclose(conv(h, sh, weights, edge_index), expected, atol=1e-12, rtol=0)


def test_envelope_and_its_derivatives_vanish_at_the_cutoff(float64) -> None:
    x = torch.tensor([0.0, 0.5, 1.0, 1.2], requires_grad=True)
    u = polynomial_envelope(x, p=5)
    (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (d2u,) = torch.autograd.grad(du.sum(), x)
    u = u.detach()
    assert u[0] == 1.0 and abs(float(u[2])) < 1e-12 and u[3] == 0.0
    assert abs(float(du[2])) < 1e-10 and abs(float(d2u[2])) < 1e-9
    radial = RadialEmbedding(cutoff=5.0, num_basis=8)(torch.tensor([1.0, 5.0, 6.0]))
    assert radial.shape == (3, 8) and radial[1:].abs().max() < 1e-12 and radial[0].abs().max() > 0.1


# ------------------------------------------------------------------------------------------- bad input
def test_bad_graphs_get_clear_errors() -> None:
    model = ACEEncoder(channels=2, radial_hidden=(4,), out_dim=4, max_edges=10)
    graph = graph64(olivine_like())
    graph.edge_vec = graph.edge_vec.float()
    with pytest.raises(InputError, match="max_edges=10"):
        model(graph)
    no_vectors = Data(x=graph.x, edge_index=graph.edge_index, num_nodes=graph.num_nodes)
    with pytest.raises(InputError, match="edge_vec"):
        ACEEncoder(channels=2, radial_hidden=(4,), out_dim=4)(no_vectors)
    collapsed = Data(
        x=graph.x[:2], edge_index=torch.tensor([[0], [1]]), edge_vec=torch.zeros(1, 3), num_nodes=2
    )
    with pytest.raises(StructureError, match="zero length"):
        ACEEncoder(channels=2, radial_hidden=(4,), out_dim=4)(collapsed)
