"""GEMD: exact values on a hand-made path graph, gradients, ignore index and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pxrdbench.errors import InputError
from pxrdbench.losses.gemd import GEMDLoss, gemd_loss

# Path graph 0 - 1 - 2 - 3: hop distance |i - j|.
PATH_D = torch.tensor([[abs(i - j) for j in range(4)] for i in range(4)], dtype=torch.float32)


def test_zero_when_all_mass_is_on_the_true_class() -> None:
    probs = torch.eye(4)
    assert gemd_loss(probs, torch.arange(4), PATH_D, from_logits=False).item() == 0.0


@pytest.mark.parametrize(("k", "y"), [(0, 3), (1, 3), (2, 0), (3, 1)])
def test_one_hot_on_k_costs_d_k_y(k: int, y: int) -> None:
    probs = torch.nn.functional.one_hot(torch.tensor([k]), 4).float()
    loss = gemd_loss(probs, torch.tensor([y]), PATH_D, from_logits=False)
    assert loss.item() == pytest.approx(abs(k - y))


def test_spread_mass_and_batch_mean() -> None:
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75]])
    # sample 1: 0.5*3 + 0.5*2 = 2.5 (y = 3); sample 2: 0.25*2 + 0.75*3 = 2.75 (y = 0)
    loss = gemd_loss(probs, torch.tensor([3, 0]), PATH_D, from_logits=False)
    assert loss.item() == pytest.approx((2.5 + 2.75) / 2)


def test_logits_go_through_softmax_and_gradients_pull_toward_the_target() -> None:
    logits = torch.zeros(1, 4, requires_grad=True)
    loss = gemd_loss(logits, torch.tensor([0]), PATH_D)
    assert loss.item() == pytest.approx((0 + 1 + 2 + 3) / 4)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0, 0] < 0 < logits.grad[0, 3]  # descent raises the true class, lowers the far one
    with torch.no_grad():
        stepped = logits - 1.0 * logits.grad
    assert gemd_loss(stepped, torch.tensor([0]), PATH_D) < loss


def test_ignore_index_rows_do_not_count() -> None:
    probs = torch.tensor([[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    loss = gemd_loss(probs, torch.tensor([3, -1]), PATH_D, from_logits=False)
    assert loss.item() == pytest.approx(2.0)
    logits = torch.randn(3, 4, requires_grad=True)
    empty = gemd_loss(logits, torch.full((3,), -1), PATH_D)
    empty.backward()
    assert empty.item() == 0.0 and torch.equal(logits.grad, torch.zeros(3, 4))


def test_module_holds_the_matrix_as_a_buffer() -> None:
    module = GEMDLoss(np.abs(np.subtract.outer(np.arange(4), np.arange(4))))
    assert "distance" in module.state_dict() and module.num_classes == 4
    logits = torch.randn(5, 4)
    target = torch.tensor([0, 1, 2, 3, -1])
    assert module(logits, target).item() == pytest.approx(gemd_loss(logits, target, PATH_D).item())


def test_invalid_matrices_and_shapes_raise() -> None:
    with pytest.raises(InputError, match="diagonal"):
        GEMDLoss(torch.ones(3, 3))
    with pytest.raises(InputError, match="square"):
        GEMDLoss(torch.zeros(3, 4))
    with pytest.raises(InputError, match="non-negative"):
        GEMDLoss(-PATH_D)
    with pytest.raises(InputError, match="K=5"):
        gemd_loss(torch.zeros(2, 5), torch.tensor([0, 1]), PATH_D)
    with pytest.raises(InputError, match="out of range"):
        gemd_loss(torch.zeros(1, 4), torch.tensor([4]), PATH_D)
