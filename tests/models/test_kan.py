"""Tests for the B-spline KAN layer, the KAN head and the parameter-matched MLP head."""

from __future__ import annotations

import math

import pytest
import torch

from pxrdbench.errors import ConfigError
from pxrdbench.models.heads.kan import (
    KAN,
    KANHead,
    KANLinear,
    bspline_bases,
    kan_parameter_count,
    uniform_knots,
)
from pxrdbench.models.heads.projection import (
    MatchedMLPHead,
    MLPProjection,
    matched_hidden_width,
    matched_mlp,
    mlp_parameter_count,
)


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_knots_extend_the_grid_by_the_spline_order():
    knots = uniform_knots(5, 3, (-1.0, 1.0))
    assert knots.shape == (12,)
    assert torch.allclose(knots[[0, 3, 8, 11]], torch.tensor([-2.2, -1.0, 1.0, 2.2]))


def test_bases_are_a_partition_of_unity_inside_the_grid_and_vanish_outside():
    knots = uniform_knots(5, 3, (-1.0, 1.0))
    x = torch.linspace(-1.0, 1.0, 401, dtype=torch.float64).unsqueeze(-1)
    bases = bspline_bases(x, knots.double(), 3)
    assert bases.shape == (401, 1, 8)
    assert torch.allclose(bases.sum(-1), torch.ones(401, 1, dtype=torch.float64), atol=1e-12)
    assert (bases >= -1e-15).all()
    outside = bspline_bases(torch.tensor([[-2.3], [2.2], [5.0]]), knots, 3)
    assert torch.count_nonzero(outside) == 0


def test_cubic_basis_matches_the_closed_form_cardinal_spline():
    # on unit-spaced knots the cubic B-spline starting at t_j is the cardinal B-spline M4(x - t_j):
    # M4(u) = u³/6 on [0,1], (-3u³+12u²-12u+4)/6 on [1,2], symmetric; peak 2/3 at u = 2
    knots = torch.arange(0.0, 10.0, dtype=torch.float64)
    u = torch.tensor([0.5, 1.5, 2.0, 2.5, 3.5], dtype=torch.float64)
    values = bspline_bases(u.unsqueeze(-1), knots, 3)[:, 0, 0]
    expected = torch.tensor([0.5**3 / 6, (-3 * 1.5**3 + 12 * 1.5**2 - 12 * 1.5 + 4) / 6, 2 / 3, 0.0, 0.0])
    expected[3] = expected[1]
    expected[4] = expected[0]
    assert torch.allclose(values, expected.double(), atol=1e-12)


def test_kan_linear_formula_shape_and_gradients():
    torch.manual_seed(0)
    layer = KANLinear(3, 2)
    x = torch.rand(5, 3) * 2 - 1
    out = layer(x)
    assert out.shape == (5, 2)
    manual = torch.nn.functional.silu(x) @ layer.base_weight.t()
    bases = bspline_bases(x, layer.knots, 3)  # [5, 3, 8]
    manual = manual + torch.einsum("bik,iko->bo", bases, layer.spline_weight.view(3, 8, 2))
    assert torch.allclose(out, manual, atol=1e-6)
    out.sum().backward()
    assert layer.base_weight.grad.abs().sum() > 0 and layer.spline_weight.grad.abs().sum() > 0
    assert layer(torch.rand(4, 6, 3)).shape == (4, 6, 2)


def test_kan_stack_shapes_parameter_count_and_norm_placement():
    kan = KAN([16, 8, 4])
    assert kan(torch.randn(7, 16)).shape == (7, 4) and kan.output_dim == 4
    assert sum(p.numel() for p in kan.parameters()) == kan_parameter_count([16, 8, 4])
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in kan.modules()) == 2
    assert sum(isinstance(m, torch.nn.LayerNorm) for m in KAN([1, 4, 1]).modules()) == 1


def test_kan_fits_a_smooth_function():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 128).unsqueeze(-1)
    y = torch.sin(math.pi * x)
    kan = KAN([1, 8, 1])
    optimiser = torch.optim.Adam(kan.parameters(), lr=0.03)
    for _ in range(150):
        optimiser.zero_grad()
        loss = torch.mean((kan(x) - y) ** 2)
        loss.backward()
        optimiser.step()
    assert loss.item() < 1e-3, loss.item()  # var(sin) = 0.5 at the start


@pytest.mark.parametrize("bad", [{"widths": [4]}, {"widths": [4, 0]}, {"widths": [4, 2], "norm": "batch"}])
def test_bad_kan_config_raises(bad):
    with pytest.raises(ConfigError):
        KAN(**bad)


def test_bad_grid_raises():
    with pytest.raises(ConfigError):
        KANLinear(2, 2, grid_range=(1.0, -1.0))


@pytest.mark.parametrize("widths", [[512, 64], [512, 128, 64], [256, 64], [32, 8]])
def test_mlp_head_matches_kan_parameter_count_within_ten_percent(widths):
    kan_params = sum(p.numel() for p in KAN(widths).parameters())
    mlp = matched_mlp(widths[0], widths[-1], kan_params)
    mlp_params = sum(p.numel() for p in mlp.parameters())
    assert mlp_params == mlp_parameter_count(widths[0], mlp.hidden, widths[-1])
    assert abs(mlp_params - kan_params) / kan_params < 0.10
    assert mlp(torch.randn(3, widths[0])).shape == (3, widths[-1])


def test_matched_width_is_exact_when_possible():
    target = mlp_parameter_count(100, 37, 10, input_norm=False)
    assert matched_hidden_width(100, 10, target, input_norm=False) == 37
    assert matched_hidden_width(100, 10, 1) == 1
    assert sum(p.numel() for p in MLPProjection(100, 37, 10, input_norm=False).parameters()) == target


@pytest.mark.parametrize(("in_dim", "hidden", "out_dim"), [(16, (8,), 4), (32, (), 8), (512, (128,), 64)])
def test_kan_head_is_the_kan_of_its_widths(in_dim, hidden, out_dim):
    torch.manual_seed(0)
    head = KANHead(in_dim, hidden, out_dim)
    reference = KAN([in_dim, *hidden, out_dim])
    assert head.widths == [in_dim, *hidden, out_dim] and head.output_dim == out_dim
    assert n_parameters(head) == n_parameters(reference) == kan_parameter_count([in_dim, *hidden, out_dim])
    head.load_state_dict(reference.state_dict())  # same layers, same names and shapes
    x = torch.randn(5, in_dim)
    assert torch.equal(head(x), reference(x))


def test_kan_head_passes_the_grid_and_norm_on():
    head = KANHead(16, (8,), 4, grid_size=3, spline_order=2, norm="none")
    assert n_parameters(head) == kan_parameter_count([16, 8, 4], grid_size=3, spline_order=2, norm="none")
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in head.modules())
    assert head.layers[0].n_bases == 5


@pytest.mark.parametrize(
    ("in_dim", "kan_hidden", "out_dim"), [(512, (128,), 64), (256, (128,), 64), (24, (), 16), (32, (8,), 8)]
)
def test_matched_mlp_head_has_the_parameter_count_of_its_kan_head(in_dim, kan_hidden, out_dim):
    head = MatchedMLPHead(in_dim, out_dim, kan_hidden)
    budget = kan_parameter_count([in_dim, *kan_hidden, out_dim])
    assert budget == n_parameters(KANHead(in_dim, kan_hidden, out_dim))
    params = n_parameters(head)
    assert params == mlp_parameter_count(in_dim, head.hidden, out_dim)
    # one hidden unit costs in + 1 + out parameters: the best width is within half a unit of the budget
    assert abs(params - budget) <= (in_dim + 1 + out_dim) / 2
    for other in (head.hidden - 1, head.hidden + 1):
        assert abs(params - budget) <= abs(mlp_parameter_count(in_dim, other, out_dim) - budget)
    assert head.output_dim == out_dim and head(torch.randn(3, in_dim)).shape == (3, out_dim)
    assert isinstance(head.net[0], torch.nn.LayerNorm) and isinstance(head.net[2], torch.nn.ReLU)


def test_matched_mlp_head_follows_the_kan_grid_and_activation():
    small, large = MatchedMLPHead(64, 16, (32,), grid_size=2, spline_order=1), MatchedMLPHead(64, 16, (32,))
    assert small.hidden < large.hidden
    assert abs(n_parameters(small) - kan_parameter_count([64, 32, 16], 2, 1)) <= (64 + 1 + 16) / 2
    assert isinstance(MatchedMLPHead(8, 4, (), activation="gelu").net[2], torch.nn.GELU)
