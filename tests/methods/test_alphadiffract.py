"""AlphaDiffract (tiny twin): losses, gradients, the paper's optimiser in a Trainer, learning, ensembles."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from pxrdbench.methods.supervised import AlphaDiffract, EnsembleClassifier, masked_cross_entropy
from pxrdbench.models.registry import create_model

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*self.log.*:UserWarning", "ignore:.*does not have many workers"
)

N_POINTS = 512
# Hand-made 230 x 230 hop matrix (a ring of space groups): zero diagonal, non-negative.
RING_D = np.minimum(
    np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
    230 - np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
)


def tiny_model(**overrides: object) -> AlphaDiffract:
    """The registry's tiny twin with the ring matrix injected instead of the subgroup graph."""
    return create_model("alphadiffract_tiny", space_group_distance=RING_D, **overrides)


class TwoPeakPatterns(Dataset):
    """One Gaussian peak near 23 % (class 0) or 74 % (class 1) of the grid, scaled 0–100, plus noise."""

    def __init__(self, size: int, seed: int, n_points: int = N_POINTS) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.n_points = n_points
        self.labels = torch.randint(0, 2, (size,), generator=generator)
        grid = torch.arange(n_points, dtype=torch.float32)
        centres = torch.where(self.labels == 0, 0.23 * n_points, 0.74 * n_points)[:, None]
        centres = centres + torch.randint(-n_points // 64, n_points // 64 + 1, (size, 1), generator=generator)
        clean = torch.exp(-0.5 * ((grid - centres) / (n_points / 128)) ** 2)
        self.patterns = 100 * (clean + 0.02 * torch.rand(size, n_points, generator=generator))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        label = self.labels[index]
        return {
            "pattern": self.patterns[index],
            "pattern_mask": torch.ones(self.n_points, dtype=torch.bool),
            "crystal_system": label,
            "space_group": label * 200,  # SG 1 or 201
            "lattice": torch.tensor([5.0, 5.0, 5.0, 90.0, 90.0, 90.0])
            + label * torch.tensor([5.0, 0, 0, 0, 0, 30.0]),
            "index": torch.tensor(index),
        }


def synthetic_batch(size: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    dataset = TwoPeakPatterns(size, seed)
    return next(iter(DataLoader(dataset, batch_size=size)))


def test_tiny_twin_architecture() -> None:
    model = tiny_model()
    assert model.encoder.output_dim == 56 and model.encoder.input_length == N_POINTS
    assert (model.num_crystal_systems, model.num_space_groups) == (7, 230)
    assert "encoder" not in model.hparams and "space_group_distance" not in model.hparams
    assert model.hparams["gemd_weight"] == 1.0


def test_training_step_gives_finite_loss_and_gradients_everywhere() -> None:
    torch.manual_seed(0)
    model = tiny_model()
    loss = model.training_step(synthetic_batch(), 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_loss_is_the_sum_of_its_terms() -> None:
    torch.manual_seed(0)
    model = tiny_model(gemd_weight=2.0, lattice_weight=0.5).eval()
    batch = synthetic_batch()
    outputs = model(batch["pattern"])
    losses = model.compute_losses(outputs, batch)
    expected = (
        losses["loss_crystal_system"]
        + losses["loss_space_group"]
        + 2.0 * losses["loss_gemd"]
        + 0.5 * losses["loss_lattice"]
    )
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    probs = torch.softmax(outputs["space_group"], dim=-1)
    manual_gemd = (
        (probs * torch.as_tensor(RING_D, dtype=torch.float32)[:, batch["space_group"]].T).sum(1).mean()
    )
    assert losses["loss_gemd"].item() == pytest.approx(manual_gemd.item(), rel=1e-5)
    scale = torch.tensor([500.0] * 3 + [180.0] * 3)
    manual_mse = ((outputs["lattice"] - batch["lattice"]) / scale).pow(2).mean()
    assert losses["loss_lattice"].item() == pytest.approx(manual_mse.item(), rel=1e-4)


def test_missing_labels_are_ignored() -> None:
    model = tiny_model()
    batch = synthetic_batch()
    batch["space_group"] = torch.full_like(batch["space_group"], -1)
    batch["lattice"][:] = -1.0
    del batch["crystal_system"]
    losses = model.compute_losses(model(batch["pattern"]), batch)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss"].item() == 0.0
    assert masked_cross_entropy(torch.zeros(2, 3), torch.tensor([-1, 2])).item() == pytest.approx(np.log(3))


def test_prediction_api() -> None:
    model = tiny_model().train()
    patterns = synthetic_batch(4)["pattern"]
    probs = model.predict_proba(patterns)
    assert probs["crystal_system"].shape == (4, 7) and probs["space_group"].shape == (4, 230)
    assert torch.allclose(probs["space_group"].sum(-1), torch.ones(4))
    lattice = model.predict_lattice(patterns)
    assert lattice.shape == (4, 6) and (lattice[:, :3] < 500).all() and (lattice[:, 3:] < 180).all()
    embedding = model.embed(patterns)
    assert embedding.shape == (4, 56) and torch.allclose(embedding.norm(dim=-1), torch.ones(4))
    assert torch.equal(embedding, model.embed(patterns))  # eval mode inside: drop path off
    assert model.training
    step = model.predict_step({"pattern": patterns, "index": torch.arange(4)}, 0)
    assert set(step) == {"crystal_system", "space_group", "lattice", "embedding", "index"}
    assert torch.allclose(step["embedding"], embedding, atol=1e-6) and torch.equal(step["lattice"], lattice)


def test_ensemble_averages_members() -> None:
    members = [tiny_model(seed=1), tiny_model(seed=2)]
    assert not torch.equal(members[0].encoder.stem.weight, members[1].encoder.stem.weight)
    assert torch.equal(tiny_model(seed=1).encoder.stem.weight, members[0].encoder.stem.weight)
    ensemble = EnsembleClassifier(members)
    patterns = synthetic_batch(3)["pattern"]
    expected = (
        members[0].predict_proba(patterns)["space_group"] + members[1].predict_proba(patterns)["space_group"]
    ) / 2
    assert torch.allclose(ensemble.predict_proba(patterns)["space_group"], expected)
    embedding = ensemble.embed(patterns)
    assert torch.allclose(embedding.norm(dim=-1), torch.ones(3), atol=1e-6)
    cosines = [(m.embed(patterns)[0] * m.embed(patterns)[1]).sum() for m in members]
    assert (embedding[0] * embedding[1]).sum().item() == pytest.approx(float(sum(cosines) / 2), abs=1e-5)
    assert ensemble.num_parameters == 2 * members[0].num_parameters
    assert ensemble.tasks == AlphaDiffract.tasks


def test_trainer_fit_uses_adamw_and_the_cyclic_schedule() -> None:
    torch.manual_seed(0)
    model = tiny_model(scheduler={"name": "cyclic_triangular2", "base_lr_fraction": 0.1, "step_epochs": 1})
    loader = DataLoader(TwoPeakPatterns(48, seed=1), batch_size=8)
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        limit_train_batches=3,
        limit_val_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader, loader)
    optimizer = trainer.optimizers[0]
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == pytest.approx(2e-4) and optimizer.defaults["weight_decay"] == 0.01
    config = trainer.lr_scheduler_configs[0]
    assert isinstance(config.scheduler, torch.optim.lr_scheduler.CyclicLR) and config.interval == "step"
    assert config.scheduler.total_size == 6  # 3 steps per epoch up + 3 down
    # after 6 steps the first cycle has ended: lr is back at 10 % of the nominal value
    assert optimizer.param_groups[0]["lr"] == pytest.approx(2e-5)
    logged = trainer.callback_metrics
    for key in (
        "train_loss",
        "val_loss",
        "val_crystal_system_acc",
        "val_space_group_balanced_acc",
        "val_lattice_length_mae",
        "val_lattice_angle_mae",
    ):
        assert key in logged and torch.isfinite(logged[key]), key


def test_loss_decreases_on_a_learnable_toy() -> None:
    torch.manual_seed(0)
    model = tiny_model(drop_path=0.0, input_length=256)  # 256 points: 3 positions x 8 channels, fast on CPU
    data = TwoPeakPatterns(32, seed=3, n_points=256)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = next(iter(DataLoader(data, batch_size=32)))
    first = None
    for _ in range(25):
        loss = model.compute_losses(model(batch["pattern"]), batch)["loss"]
        first = loss.item() if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = model.compute_losses(model(batch["pattern"]), batch)["loss"].item()
    assert final < 0.5 * first
    held_out = TwoPeakPatterns(32, seed=4, n_points=256)
    predicted = model.predict_proba(held_out.patterns)["crystal_system"].argmax(-1)
    assert (predicted == held_out.labels).float().mean() > 0.9


@pytest.mark.slow
def test_full_size_training_step() -> None:
    model = create_model("alphadiffract", space_group_distance=RING_D)
    batch = {
        "pattern": 100 * torch.rand(2, 8192),
        "crystal_system": torch.tensor([0, 6]),
        "space_group": torch.tensor([0, 224]),
        "lattice": torch.tensor([[5.0, 6, 7, 90, 100, 90], [4, 4, 4, 90, 90, 90]]),
    }
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and model.encoder.output_dim == 560
