"""Tests for the CGCNN crystal encoder."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from pxrdbench.data.graphs import cgcnn_graph
from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.crystal.cgcnn import CGCNN, GaussianDistance, mean_per_graph


def perovskite() -> Structure:
    return Structure(
        Lattice.cubic(3.905),
        ["Sr", "Ti", "O", "O", "O"],
        [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]],
    )


def triclinic() -> Structure:
    return Structure(
        Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 103.0),
        ["Si", "O", "O", "Mg"],
        [[0.1, 0.2, 0.3], [0.45, 0.1, 0.7], [0.8, 0.6, 0.15], [0.3, 0.75, 0.55]],
    )


def encoder(seed: int = 0) -> CGCNN:
    torch.manual_seed(seed)
    return CGCNN(embedding_dim=16, n_conv=2, out_dim=8).eval()


def embed(model: CGCNN, structure: Structure) -> torch.Tensor:
    with torch.no_grad():
        return model(cgcnn_graph(structure))


def test_gaussian_expansion_formula():
    g = GaussianDistance(cutoff=8.0, num_gaussians=41, width=0.2)
    d = torch.tensor([0.0, 2.4, 9.0])  # centres every 0.2 Å: 2.4 Å is centre 12
    out = g(d)
    assert out.shape == (3, 41)
    assert torch.allclose(out[1, 12], torch.tensor(1.0)) and torch.isclose(
        out[1, 13], torch.exp(torch.tensor(-1.0))
    )
    assert out[2].max() < 1e-10  # CGCNN's padding distance (radius + 1 Å) carries no signal


def test_output_shape_and_parameter_count_default():
    model = CGCNN()
    assert model(cgcnn_graph(perovskite())).shape == (1, 64) and model.output_dim == 64
    assert sum(p.numel() for p in model.parameters()) > 50_000


def test_atom_permutation_invariance():
    model, s = encoder(), triclinic()
    shuffled = Structure.from_sites([s[i] for i in (2, 0, 3, 1)])
    assert torch.allclose(embed(model, s), embed(model, shuffled), atol=1e-5)


def test_origin_shift_and_supercell_invariance():
    model, s = encoder(), triclinic()
    shifted = s.copy()
    shifted.translate_sites(list(range(len(s))), [0.37, -0.21, 0.64], frac_coords=True, to_unit_cell=True)
    reference = embed(model, s)
    assert torch.allclose(reference, embed(model, shifted), atol=1e-5)
    p = perovskite()
    assert torch.allclose(embed(model, p), embed(model, p * (2, 1, 1)), atol=1e-5)


def test_embedding_distinguishes_structures():
    model = encoder()
    assert not torch.allclose(embed(model, triclinic()), embed(model, perovskite()), atol=1e-3)


def test_batch_of_two_equals_each_alone():
    model = encoder()
    graphs = [cgcnn_graph(triclinic()), cgcnn_graph(perovskite())]
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs))
        alone = torch.cat([model(g) for g in graphs])
    assert together.shape == (2, 8)
    assert torch.allclose(together, alone, atol=1e-5)


def test_gradients_flow_to_every_parameter_in_training_mode():
    model = encoder().train()
    batch = Batch.from_data_list([cgcnn_graph(triclinic()), cgcnn_graph(perovskite())])
    model(batch).pow(2).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
    assert model.convs[0].linear.weight.grad.abs().sum() > 0
    assert model.embedding.weight.grad[[8, 12, 14, 22, 38]].abs().sum() > 0


def test_edge_attr_column_is_accepted_and_mean_pooling():
    model, g = encoder(), cgcnn_graph(perovskite())
    alt = g.clone()
    del alt.edge_dist
    alt.edge_attr = alt.edge_attr.unsqueeze(1)
    with torch.no_grad():
        assert torch.allclose(model(g), model(alt))
    pooled = mean_per_graph(torch.tensor([[1.0], [3.0], [10.0]]), torch.tensor([0, 0, 1]))
    assert torch.equal(pooled, torch.tensor([[2.0], [10.0]]))


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="learned"):
        CGCNN(atom_features="learnd")
    g = cgcnn_graph(perovskite())
    g.x = g.x.clone()
    g.x[0] = 0
    with pytest.raises(InputError, match="graph.x"):
        encoder()(g)


def test_runs_under_bf16_autocast_and_stays_close_to_float32():
    """bf16-mixed (the GPU presets' precision) once failed in the message sum (bf16 messages into a float32
    accumulator); the sum is now accumulated in float32."""
    model = encoder()
    graph = Batch.from_data_list([cgcnn_graph(perovskite()), cgcnn_graph(triclinic())])
    reference = model(graph)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = model(graph)
    assert mixed.shape == reference.shape
    assert torch.allclose(mixed.float(), reference, atol=0.1, rtol=0.05)
