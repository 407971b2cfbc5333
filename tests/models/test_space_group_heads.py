"""Tests for DIFCON's conditional symmetry heads (CS, per-system SG, EG)."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.heads.space_group_heads import SPACE_GROUPS_BY_SYSTEM, ConditionalSymmetryHeads
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, crystal_system_index

IN_DIM = 12


def _heads(**kwargs) -> ConditionalSymmetryHeads:
    torch.manual_seed(0)
    return ConditionalSymmetryHeads(IN_DIM, hidden=(16,), num_extinction_groups=9, **kwargs)


def test_partition_sizes_follow_crystal_system_order():
    assert CRYSTAL_SYSTEMS == (
        "triclinic",
        "monoclinic",
        "orthorhombic",
        "tetragonal",
        "trigonal",
        "hexagonal",
        "cubic",
    )
    assert tuple(len(groups) for groups in SPACE_GROUPS_BY_SYSTEM) == (2, 13, 59, 68, 25, 27, 36)
    assert sorted(n for groups in SPACE_GROUPS_BY_SYSTEM for n in groups) == list(range(1, 231))
    heads = _heads()
    assert [h.out_dim for h in heads.space_group_heads] == [2, 13, 59, 68, 25, 27, 36]
    assert len(list(heads.children())) == 3 and len(heads.space_group_heads) == 7  # 1 + 7 + 1 MLPs


def test_output_shapes_and_kinds():
    out = _heads()(torch.randn(5, IN_DIM))
    assert out["crystal_system"].shape == (5, 7)
    assert out["space_group"].shape == (5, 230)
    assert out["extinction_group"].shape == (5, 9)
    # logits are not normalised; the SG output is
    assert not torch.allclose(out["crystal_system"].exp().sum(-1), torch.ones(5))
    assert ConditionalSymmetryHeads(IN_DIM)(torch.randn(2, IN_DIM))["extinction_group"].shape == (2, 112)


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_space_group_output_is_a_distribution_over_all_230_groups(scale: float):
    features = scale * torch.randn(6, IN_DIM)
    log_probs = _heads()(features)["space_group"]
    assert torch.isfinite(log_probs).all()  # P(g) > 0 for every group
    torch.testing.assert_close(
        log_probs.double().exp().sum(-1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-6
    )
    heads64 = _heads().double()
    log_probs64 = heads64(features.double())["space_group"]
    torch.testing.assert_close(
        log_probs64.exp().sum(-1), torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-12
    )


def test_mass_of_each_system_equals_crystal_system_probability():
    heads = _heads().double()
    out = heads(torch.randn(4, IN_DIM, dtype=torch.float64))
    cs_log_probs = F.log_softmax(out["crystal_system"], dim=-1)
    for s, groups in enumerate(SPACE_GROUPS_BY_SYSTEM):
        columns = torch.tensor(groups) - 1
        mass = out["space_group"][:, columns].logsumexp(dim=-1)
        torch.testing.assert_close(mass, cs_log_probs[:, s])


def test_column_k_is_space_group_k_plus_one():
    heads = _heads().double()
    features = torch.randn(3, IN_DIM, dtype=torch.float64)
    out = heads(features)
    cs_log_probs = F.log_softmax(out["crystal_system"], dim=-1)
    for number in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 225, 230):
        s = crystal_system_index(number)
        within = F.log_softmax(heads.space_group_heads[s](features), dim=-1)
        position = SPACE_GROUPS_BY_SYSTEM[s].index(number)
        torch.testing.assert_close(
            out["space_group"][:, number - 1], cs_log_probs[:, s] + within[:, position]
        )


def test_cross_entropy_on_log_probs_equals_nll():
    out = _heads()(torch.randn(8, IN_DIM))
    target = torch.tensor([1, 2, 14, 15, 100, 150, 180, 224])
    torch.testing.assert_close(
        F.cross_entropy(out["space_group"], target), F.nll_loss(out["space_group"], target)
    )


def test_gradients_reach_every_parameter():
    heads = _heads(dropout=0.1)
    features = torch.randn(7, IN_DIM)
    out = heads(features)
    sg_target = torch.tensor([groups[0] - 1 for groups in SPACE_GROUPS_BY_SYSTEM])  # one group per system
    loss = (
        F.cross_entropy(out["crystal_system"], torch.arange(7))
        + F.cross_entropy(out["space_group"], sg_target)
        + F.cross_entropy(out["extinction_group"], torch.arange(7))
    )
    loss.backward()
    for name, param in heads.named_parameters():
        assert param.grad is not None and torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, name


def test_space_group_nll_alone_trains_the_crystal_system_head():
    heads = _heads()
    out = heads(torch.randn(3, IN_DIM))
    F.nll_loss(out["space_group"], torch.tensor([0, 100, 229])).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in heads.crystal_system_head.parameters())
    assert all(p.grad is None for p in heads.extinction_group_head.parameters())


def test_given_system_restricts_to_that_system():
    heads = _heads().double()
    features = torch.randn(4, IN_DIM, dtype=torch.float64)
    for s, groups in enumerate(SPACE_GROUPS_BY_SYSTEM):
        log_probs = heads.space_group_log_probs_given_system(features, s)
        inside = torch.zeros(230, dtype=torch.bool)
        inside[torch.tensor(groups) - 1] = True
        assert torch.isneginf(log_probs[:, ~inside]).all() and torch.isfinite(log_probs[:, inside]).all()
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(4, dtype=torch.float64))
        predicted = heads.predict_space_group_given_system(features, CRYSTAL_SYSTEMS[s])
        assert all(int(n) in groups for n in predicted)
    per_row = heads.predict_space_group_given_system(features, torch.tensor([0, 6, 3, 1]))
    assert [crystal_system_index(int(n)) for n in per_row] == [0, 6, 3, 1]
    best = heads.predict_space_group(features)
    assert ((best >= 1) & (best <= 230)).all()


def test_bad_configuration_raises_config_error():
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="in_dim"):
            ConditionalSymmetryHeads(bad)
    with pytest.raises(ConfigError, match="num_extinction_groups"):
        ConditionalSymmetryHeads(IN_DIM, num_extinction_groups=0)
    with pytest.raises(ConfigError, match="hidden"):
        ConditionalSymmetryHeads(IN_DIM, hidden=(0,))
    with pytest.raises(ConfigError, match="dropout"):
        ConditionalSymmetryHeads(IN_DIM, dropout=1.0)
    with pytest.raises(ConfigError, match="activation"):
        ConditionalSymmetryHeads(IN_DIM, activation="gleu")


def test_bad_inputs_raise_input_error():
    heads = _heads()
    with pytest.raises(InputError, match="features"):
        heads(torch.randn(IN_DIM))
    with pytest.raises(InputError, match="features"):
        heads(torch.randn(3, IN_DIM + 1))
    features = torch.randn(3, IN_DIM)
    for bad in (7, -1, "rhombohedral", torch.tensor([0, 1]), torch.tensor([0.0, 1.0, 2.0])):
        with pytest.raises(InputError, match="system"):
            heads.space_group_log_probs_given_system(features, bad)
