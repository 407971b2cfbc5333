"""Tests for the CSPNet crystal encoder (XtalNet CPCP structure side)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch, Data

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.crystal.cgcnn import mean_per_graph
from pxrdbench.models.crystal.cspnet import CSPNet


@pytest.fixture(autouse=True)
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


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


def to_data(structure: Structure, frac: np.ndarray | None = None, lattice: np.ndarray | None = None) -> Data:
    frac = structure.frac_coords if frac is None else frac
    lattice = structure.lattice.matrix if lattice is None else lattice
    return Data(
        x=torch.tensor(structure.atomic_numbers, dtype=torch.long),
        frac_coords=torch.tensor(np.asarray(frac)),
        lattice=torch.tensor(np.asarray(lattice)).unsqueeze(0),
    )


def encoder(seed: int = 0, **kwargs) -> CSPNet:
    torch.manual_seed(seed)
    options = dict(hidden=16, num_layers=2, num_frequencies=4, out_dim=8) | kwargs
    return CSPNet(**options).eval()


def embed(model: CSPNet, *data: Data) -> torch.Tensor:
    with torch.no_grad():
        return model(Batch.from_data_list(list(data)))


def test_defaults_shape_and_attributes():
    model = CSPNet()
    assert model.output_dim == 512 and CSPNet.graph_kind == "atoms"
    assert model.layers[0].edge_mlp[0].in_features == 512 + 512 + 9 + 768
    assert embed(encoder(), to_data(perovskite()), to_data(triclinic())).shape == (2, 8)


def test_single_data_without_batch_field():
    model, data = encoder(), to_data(triclinic())
    with torch.no_grad():
        assert torch.allclose(model(data), embed(model, data), atol=1e-12)


def test_permutation_invariance():
    model, s = encoder(), triclinic()
    shuffled = Structure.from_sites([s[i] for i in (2, 0, 3, 1)])
    assert torch.allclose(embed(model, to_data(s)), embed(model, to_data(shuffled)), atol=1e-10)


def test_translation_invariance_with_wrapping():
    model, s = encoder(), triclinic()
    moved = (s.frac_coords + np.array([0.37, -0.81, 0.55])) % 1.0
    assert torch.allclose(embed(model, to_data(s)), embed(model, to_data(s, frac=moved)), atol=1e-10)


def test_rotation_invariance():
    model, s = encoder(), triclinic()
    rotation, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    rotation *= np.sign(np.linalg.det(rotation))  # a proper rotation (det +1)
    rotated = s.lattice.matrix @ rotation.T
    assert not np.allclose(rotated, s.lattice.matrix)
    assert torch.allclose(embed(model, to_data(s)), embed(model, to_data(s, lattice=rotated)), atol=1e-10)


def test_supercell_changes_embedding():
    """Not cell-invariant: a 2×1×1 supercell changes the Gram matrix and the fractional coordinates."""
    model, s = encoder(), perovskite()
    supercell = s.copy()
    supercell.make_supercell([2, 1, 1])
    a, b = embed(model, to_data(s)), embed(model, to_data(supercell))
    assert (a - b).abs().max() > 1e-3


def reference_forward(model: CSPNet, data: Data) -> torch.Tensor:
    """A straightforward CSPNet forward for one crystal: explicit pairs and the concatenated edge input."""
    h = model.embedding(data.x)
    n = h.shape[0]
    i, j = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    gram = (data.lattice[0] @ data.lattice[0].T).reshape(1, 9).expand(n * n, 9)
    delta = (data.frac_coords[j] - data.frac_coords[i]).unsqueeze(-1) * model.frequencies
    phi = torch.cat([torch.sin(delta.flatten(1)), torch.cos(delta.flatten(1))], dim=1)
    for layer in model.layers:
        h_norm = layer.norm(h)
        messages = layer.edge_mlp(torch.cat([h_norm[i], h_norm[j], gram, phi], dim=1))
        mean = torch.zeros_like(h).index_add_(0, i, messages) / n
        h = h + layer.node_mlp(torch.cat([h_norm, mean], dim=1))
    return model.readout(mean_per_graph(model.final_norm(h), torch.zeros(n, dtype=torch.long)))


def test_split_first_layer_equals_concatenation():
    model = encoder(num_frequencies=6)
    for s in (perovskite(), triclinic()):
        data = to_data(s)
        with torch.no_grad():
            assert torch.allclose(model(data), reference_forward(model, data), atol=1e-12)


def test_batch_equals_each_alone():
    model = encoder()
    a, b = to_data(perovskite()), to_data(triclinic())
    both = embed(model, a, b)
    assert torch.allclose(both[0], embed(model, a)[0], atol=1e-12)
    assert torch.allclose(both[1], embed(model, b)[0], atol=1e-12)


def test_chunking_gives_same_outputs_and_gradients():
    data = [to_data(perovskite()), to_data(triclinic())]
    results = []
    for chunk in (10_000, 7):  # 41 pairs: one chunk, or six checkpointed chunks not aligned to crystals
        model = encoder(max_pairs_per_chunk=chunk).train()
        out = model(Batch.from_data_list(data))
        out.square().sum().backward()
        results.append((out.detach(), [p.grad for p in model.parameters()]))
    assert torch.allclose(results[0][0], results[1][0], atol=1e-12)
    assert all(
        torch.allclose(g0, g1, atol=1e-10) for g0, g1 in zip(results[0][1], results[1][1], strict=True)
    )


def test_crystal_over_max_atoms_gets_nan_row():
    model = encoder(max_atoms=5)
    big = perovskite()
    big.make_supercell([2, 1, 1])  # 10 atoms > 5
    a, b = to_data(perovskite()), to_data(triclinic())
    batch = Batch.from_data_list([a, to_data(big), b])
    assert model.embeddable(batch).tolist() == [True, False, True]
    out = embed(model, a, to_data(big), b)
    assert torch.isnan(out[1]).all() and torch.isfinite(out[[0, 2]]).all()
    assert torch.allclose(out[0], embed(model, a)[0], atol=1e-12)
    assert torch.allclose(out[2], embed(model, b)[0], atol=1e-12)
    assert torch.isnan(embed(model, to_data(big))).all()


def test_bad_inputs_raise_input_error():
    model, good = encoder(), to_data(triclinic())
    with pytest.raises(InputError, match="no atoms"):
        model(Data(x=torch.zeros(0, dtype=torch.long), frac_coords=torch.zeros(0, 3), lattice=good.lattice))
    with pytest.raises(InputError, match=r"1\.\.100"):
        model(Data(x=torch.tensor([0, 8, 8, 12]), frac_coords=good.frac_coords, lattice=good.lattice))
    with pytest.raises(InputError, match=r"1\.\.100"):
        model(Data(x=torch.tensor([101, 8, 8, 12]), frac_coords=good.frac_coords, lattice=good.lattice))
    with pytest.raises(InputError, match="frac_coords.*missing"):
        model(Data(x=good.x, lattice=good.lattice))
    with pytest.raises(InputError, match="lattice.*missing"):
        model(Data(x=good.x, frac_coords=good.frac_coords))
    with pytest.raises(InputError, match="frac_coords"):
        model(Data(x=good.x, frac_coords=good.frac_coords[:, :2], lattice=good.lattice))


@pytest.mark.parametrize(
    "kwargs", [{"hidden": 0}, {"num_layers": 0}, {"num_frequencies": -1}, {"out_dim": 0}, {"max_atoms": 0}]
)
def test_bad_config_raises_config_error(kwargs):
    with pytest.raises(ConfigError, match=f"{next(iter(kwargs))}="):
        CSPNet(**kwargs)


def test_gradients_reach_every_parameter():
    model = encoder().train()
    out = model(Batch.from_data_list([to_data(perovskite()), to_data(triclinic())]))
    out.square().sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name
