"""Tests for the symmetric InfoNCE loss and its gathered (data-parallel) form."""

from __future__ import annotations

import faulthandler
import math
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.distributed import all_gather_with_grad, gather_sizes, scale_gradient_for_ddp_mean
from pxrdbench.losses.infonce import InfoNCELoss, symmetric_infonce


def test_random_embeddings_give_log_batch_size():
    torch.manual_seed(0)
    z_a, z_b = torch.randn(32, 1024), torch.randn(32, 1024)
    loss = symmetric_infonce(z_a, z_b, temperature=1.0)
    assert abs(loss.item() - math.log(32)) < 0.05


def test_aligned_separated_pairs_give_zero_and_swapped_pairs_are_penalised():
    z = torch.eye(8) * 3.0
    assert symmetric_infonce(z, z, temperature=0.01).item() < 1e-12
    assert symmetric_infonce(z, z.roll(1, dims=0), temperature=0.01).item() > 50


def test_loss_is_symmetric_and_scale_free():
    torch.manual_seed(1)
    z_a, z_b = torch.randn(6, 5), torch.randn(6, 5)
    loss = symmetric_infonce(z_a, z_b, temperature=0.07)
    assert torch.allclose(loss, symmetric_infonce(z_b, z_a, temperature=0.07))
    assert torch.allclose(loss, symmetric_infonce(3 * z_a, 0.5 * z_b, logit_scale=1 / 0.07))


def test_value_matches_explicit_formula():
    torch.manual_seed(2)
    z_a, z_b = torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    u_a, u_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
    s = u_a @ u_b.t() / 0.1
    rows = -sum(s[i, i] - torch.log(torch.exp(s[i]).sum()) for i in range(5)) / 5
    cols = -sum(s[j, j] - torch.log(torch.exp(s[:, j]).sum()) for j in range(5)) / 5
    assert torch.allclose(symmetric_infonce(z_a, z_b, temperature=0.1), 0.5 * (rows + cols))


def test_gradient_matches_manual_formula():
    torch.manual_seed(3)
    n, tau = 6, 0.2
    z_a = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(n, 4, dtype=torch.float64, requires_grad=True)
    symmetric_infonce(z_a, z_b, temperature=tau).backward()
    with torch.no_grad():
        u_a, u_b = F.normalize(z_a, dim=1), F.normalize(z_b, dim=1)
        s = u_a @ u_b.t() / tau
        eye = torch.eye(n, dtype=torch.float64)
        g = (torch.softmax(s, dim=1) - eye) / (2 * n) + (torch.softmax(s, dim=0) - eye) / (2 * n)  # ∂L/∂S
        grad_u_a, grad_u_b = g @ u_b / tau, g.t() @ u_a / tau

        def through_norm(z, u, grad_u):  # ∂u/∂z = (I − u uᵀ)/‖z‖
            return (grad_u - (grad_u * u).sum(1, keepdim=True) * u) / z.norm(dim=1, keepdim=True)

        assert torch.allclose(z_a.grad, through_norm(z_a, u_a, grad_u_a), atol=1e-12)
        assert torch.allclose(z_b.grad, through_norm(z_b, u_b, grad_u_b), atol=1e-12)


def test_module_fixed_and_learnable_temperature():
    torch.manual_seed(4)
    z_a, z_b = torch.randn(4, 3), torch.randn(4, 3)
    fixed = InfoNCELoss(temperature=0.07)
    assert not list(fixed.parameters()) and math.isclose(fixed.temperature, 0.07, rel_tol=1e-6)
    assert torch.allclose(fixed(z_a, z_b), symmetric_infonce(z_a, z_b, temperature=0.07))
    learnable = InfoNCELoss(learnable=True, init=0.1)
    assert math.isclose(learnable.temperature, 0.1, rel_tol=1e-5)
    learnable(z_a, z_b).backward()
    assert learnable.log_scale.grad is not None and learnable.log_scale.grad != 0
    with torch.no_grad():
        learnable.log_scale.fill_(10.0)
    assert math.isclose(learnable.temperature, 0.01, rel_tol=1e-6)  # clamped at max_scale = 100


def test_single_process_gather_is_a_no_op():
    z = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(z) is z and gather_sizes(3) == [3]
    loss = symmetric_infonce(z, z.detach() + 0.1, temperature=0.5)
    assert scale_gradient_for_ddp_mean(loss) is loss
    assert torch.allclose(symmetric_infonce(z, z.detach() + 0.1, temperature=0.5, gather=True), loss)


def test_local_negatives_loss_and_gradients_are_unchanged():
    """gather=False (the default, XCCP's in-batch negatives): the plain formula, bit for bit, and the values
    this input gave before the gathered path's gradient scaling moved from the loss to the embeddings."""
    torch.manual_seed(7)
    z_a = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    z_b = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    module = InfoNCELoss(learnable=True, init=0.2).double()
    loss = module(z_a, z_b, gather=False)
    loss.backward()
    # the same computation written out: normalise, scale the cosine logits, average the two cross-entropies
    ref_a, ref_b = z_a.detach().clone().requires_grad_(True), z_b.detach().clone().requires_grad_(True)
    ref_log_scale = module.log_scale.detach().clone().requires_grad_(True)
    logits = ref_log_scale.exp().clamp(max=100.0) * (
        F.normalize(ref_a, dim=-1) @ F.normalize(ref_b, dim=-1).t()
    )
    labels = torch.arange(5)
    reference = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels))
    reference.backward()
    assert torch.equal(loss.detach(), reference.detach())
    assert torch.equal(z_a.grad, ref_a.grad) and torch.equal(z_b.grad, ref_b.grad)
    assert torch.equal(module.log_scale.grad, ref_log_scale.grad)
    # pinned values (float64) from before the change
    pinned = {
        "loss": (loss.item(), 3.200649206947979),
        "log_scale": (module.log_scale.grad.item(), 2.3829051225970255),
    }
    for name, (got, want) in pinned.items():
        assert math.isclose(got, want, rel_tol=1e-12), (name, got, want)
    z_a_row0 = [-0.2001899459468538, 0.07874173542034814, -0.07305577203493946, 0.1050937011885313]
    z_b_row4 = [0.3907512204089671, 0.32388942177401986, -0.18259456965707613, 0.14968368420465306]
    assert torch.allclose(z_a.grad[0], torch.tensor(z_a_row0, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    assert torch.allclose(z_b.grad[4], torch.tensor(z_b_row4, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def test_bad_arguments_raise():
    z = torch.randn(3, 2)
    with pytest.raises(ConfigError):
        symmetric_infonce(z, z)
    with pytest.raises(ConfigError):
        symmetric_infonce(z, z, temperature=0.1, logit_scale=10.0)
    with pytest.raises(ConfigError):
        symmetric_infonce(z, z, temperature=0.0)
    with pytest.raises(InputError, match="embeddings"):
        symmetric_infonce(z, torch.randn(4, 2), temperature=0.1)


# --- the gathered path under a real two-process gloo group -------------------------------------------

WORLD = 2
ROWS = (3, 2)  # unequal shard sizes on purpose


def _shared_problem() -> tuple[torch.nn.Linear, torch.Tensor, torch.Tensor]:
    """A tiny 'encoder' and paired inputs, identical in every process (fixed seed)."""
    torch.manual_seed(5)
    return (
        torch.nn.Linear(4, 3).double(),
        torch.randn(sum(ROWS), 4).double(),
        torch.randn(sum(ROWS), 3).double(),
    )


def _worker(rank: int, port: int, out_dir: str, learnable: bool) -> None:
    # a forked child must not enter the OpenMP pool the parent already started (libgomp hangs): one thread;
    # and a hang becomes a failure after 60 s instead of a stuck test run
    torch.set_num_threads(1)
    faulthandler.dump_traceback_later(60, exit=True)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        encoder, x, z_b = _shared_problem()
        infonce = InfoNCELoss(
            learnable=learnable, temperature=0.1
        ).double()  # learnable: log(1/τ) starts at log 10
        start = sum(ROWS[:rank])
        rows = slice(start, start + ROWS[rank])
        z_b_local = z_b[rows].clone().requires_grad_(True)
        loss = infonce(encoder(x[rows]), z_b_local, gather=True)
        loss.backward()
        for p in [
            *encoder.parameters(),
            *infonce.parameters(),
        ]:  # what DDP does: mean all-reduce of gradients
            dist.all_reduce(p.grad)
            p.grad /= WORLD
        result = {"loss": loss.detach(), "weight_grad": encoder.weight.grad, "z_b_grad": z_b_local.grad}
        if learnable:
            result["log_scale_grad"] = infonce.log_scale.grad
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs the fork start method (POSIX)")
@pytest.mark.parametrize("learnable", [False, True], ids=["fixed_tau", "learnable_tau"])
def test_gathered_loss_under_two_gloo_processes_equals_the_concatenated_batch(tmp_path, learnable):
    # fork, not spawn: spawned children re-import torch (~10-30 s on a loaded 2-core machine) and must import
    # this test module by a name pytest does not guarantee; forked children start in milliseconds
    mp.start_processes(
        _worker, args=(_free_port(), str(tmp_path), learnable), nprocs=WORLD, join=True, start_method="fork"
    )
    encoder, x, z_b = _shared_problem()
    infonce = InfoNCELoss(learnable=learnable, temperature=0.1).double()
    z_b = z_b.clone().requires_grad_(True)
    reference = infonce(encoder(x), z_b)
    reference.backward()
    for rank in range(WORLD):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        start = sum(ROWS[:rank])
        assert torch.allclose(result["loss"], reference.detach(), atol=1e-12)
        assert torch.allclose(result["weight_grad"], encoder.weight.grad, atol=1e-12)
        # the local shard receives W × its slice of the single-process gradient (undone by DDP's mean)
        assert torch.allclose(result["z_b_grad"], WORLD * z_b.grad[start : start + ROWS[rank]], atol=1e-12)
        if learnable:
            # the scale is held in full on every rank: after the mean, exactly the concatenated batch's ∂L/∂log s
            ratio = (result["log_scale_grad"] / infonce.log_scale.grad).item()
            assert math.isclose(ratio, 1.0, rel_tol=1e-5), f"log-scale gradient ratio ddp/single = {ratio}"
