"""AlphaDiffract: the tiny twin's losses, gradients, batch-in predictions and the paper's optimiser in a
Trainer; learning a toy task; ensembles; the registered configuration (paper settings, parameter count)."""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from pxrdbench.errors import ConfigError
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.ensemble import EnsembleClassifier
from pxrdbench.methods.registry import create_method, method_info, parse_method
from pxrdbench.methods.supervised import AlphaDiffract, masked_cross_entropy
from pxrdbench.models.heads.mlp import MLPHead
from pxrdbench.models.heads.symmetry import LatticeHead
from pxrdbench.models.xrd.convnext1d import ConvNeXt1D

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*self.log.*:UserWarning",
    "ignore:.*does not have many workers",
    "ignore:(?s).*Unable to serialize instance:UserWarning",  # jsonargparse cannot print the ring matrix
    "ignore::DeprecationWarning:lightning.pytorch.cli",
    "ignore:LightningCLI's args parameter:UserWarning",  # the registry parses configs under pytest's argv
)

N_POINTS = 8192  # the alphadiffract view's grid, which the registered twin is built for
# Hand-made 230 x 230 hop matrix (a ring of space groups): zero diagonal, non-negative.
RING_D = np.minimum(
    np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
    230 - np.abs(np.subtract.outer(np.arange(230), np.arange(230))),
)


def tiny_model(**init_args: object) -> AlphaDiffract:
    """The registry's tiny twin (on the view's 8,192 points) with the ring matrix instead of the subgroup graph."""
    return create_method("alphadiffract_tiny", space_group_distance=RING_D, **init_args)


def small_model(input_length: int, drop_path: float = 0.3, **init_args: object) -> AlphaDiffract:
    """The tiny twin's architecture built from the classes on a shorter grid (fast toy training)."""
    encoder = ConvNeXt1D(
        input_length=input_length,
        channels=8,
        kernel_sizes=(9, 5, 3),
        expansion=2,
        block_pool=2,
        drop_path=drop_path,
    )
    return AlphaDiffract(
        encoder=encoder,
        cs_head=functools.partial(MLPHead, hidden=(32,), out_dim=7),
        sg_head=functools.partial(MLPHead, hidden=(32,), out_dim=230),
        lattice_head=functools.partial(LatticeHead, hidden=(16,)),
        **{"space_group_distance": RING_D, **init_args},
    )


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


def n_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_tiny_twin_architecture() -> None:
    model = tiny_model()
    # 8192 -> 3 x (AvgPool 2, AvgPool(3, 2)) -> 127 positions x 8 channels
    assert model.encoder.output_dim == 127 * 8 and model.encoder.input_length == N_POINTS
    assert (model.num_crystal_systems, model.num_space_groups) == (7, 230)
    assert "encoder" not in model.hparams and "space_group_distance" not in model.hparams
    assert model.hparams["gemd_weight"] == 1.0 and model.hparams["lattice_weight"] == 1.0
    assert model.data_requirements() == DataRequirements()
    # the hand-built small model is the twin's architecture on another grid: same encoder, same head widths
    small = small_model(512)
    assert small.encoder.output_dim == 7 * 8
    assert n_parameters(small.encoder) == n_parameters(model.encoder)
    for head in ("cs_head", "sg_head", "lattice_head"):
        shapes = [tuple(p.shape[:-1]) for p in getattr(model, head).parameters()]
        assert shapes == [tuple(p.shape[:-1]) for p in getattr(small, head).parameters()], head


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
    manual_ce = torch.nn.functional.cross_entropy(outputs["crystal_system"], batch["crystal_system"])
    assert losses["loss_crystal_system"].item() == pytest.approx(manual_ce.item(), rel=1e-6)


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


def test_without_gemd_no_ground_distance_is_needed() -> None:
    model = small_model(256, gemd_weight=0.0, space_group_distance="unused when the weight is 0")
    batch = next(iter(DataLoader(TwoPeakPatterns(4, seed=0, n_points=256), batch_size=4)))
    losses = model.compute_losses(model(batch["pattern"]), batch)
    assert model.gemd is None and "loss_gemd" not in losses
    expected = losses["loss_crystal_system"] + losses["loss_space_group"] + losses["loss_lattice"]
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ConfigError, match="maximal_subgroup_hops"):
        small_model(256, space_group_distance="graph_hops")
    with pytest.raises(ConfigError, match="100x100 but the space-group head has 230"):
        small_model(256, space_group_distance=RING_D[:100, :100])


def test_the_default_ground_distance_is_the_subgroup_hop_matrix() -> None:
    model = create_method("alphadiffract_tiny")  # space_group_distance: maximal_subgroup_hops
    distance = model.gemd.distance
    assert distance.shape == (230, 230) and distance.max().item() == 6  # diameter of the t+k graph
    assert torch.equal(distance.diagonal(), torch.zeros(230, dtype=distance.dtype))
    assert model.space_group_distance is None  # held by the GEMD buffer only


def test_prediction_api() -> None:
    model = tiny_model().train()
    batch = {"pattern": synthetic_batch(4)["pattern"]}
    probs = model.predict_proba(batch)
    assert probs["crystal_system"].shape == (4, 7) and probs["space_group"].shape == (4, 230)
    assert torch.allclose(probs["space_group"].sum(-1), torch.ones(4))
    lattice = model.predict_lattice(batch)
    assert lattice.shape == (4, 6) and (lattice[:, :3] < 500).all() and (lattice[:, 3:] < 180).all()
    embedding = model.embed(batch)
    assert embedding.shape == (4, 1016) and torch.allclose(embedding.norm(dim=-1), torch.ones(4))
    assert torch.equal(embedding, model.embed(batch))  # eval mode inside: drop path off
    assert model.training
    predicted = model.predict(batch)
    assert set(predicted) == {"crystal_system", "space_group", "lattice", "embedding"}
    assert torch.equal(predicted["space_group"], probs["space_group"])
    step = model.predict_step({**batch, "index": torch.arange(4)}, 0)
    assert set(step) == {"crystal_system", "space_group", "lattice", "embedding", "index"}
    assert torch.allclose(step["embedding"], embedding, atol=1e-6) and torch.equal(step["lattice"], lattice)


def test_ensemble_averages_members() -> None:
    members = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # the Ensemble recipe seeds each member before building it
        members.append(tiny_model())
    assert not torch.equal(members[0].encoder.stem.weight, members[1].encoder.stem.weight)
    torch.manual_seed(1)
    assert torch.equal(tiny_model().encoder.stem.weight, members[0].encoder.stem.weight)
    ensemble = EnsembleClassifier(members)
    batch = {"pattern": synthetic_batch(3)["pattern"]}
    expected = (
        members[0].predict_proba(batch)["space_group"] + members[1].predict_proba(batch)["space_group"]
    ) / 2
    assert torch.allclose(ensemble.predict_proba(batch)["space_group"], expected)
    lattice = (members[0].predict_lattice(batch) + members[1].predict_lattice(batch)) / 2
    assert torch.allclose(ensemble.predict_lattice(batch), lattice)
    embedding = ensemble.embed(batch)
    assert torch.allclose(embedding.norm(dim=-1), torch.ones(3), atol=1e-6)
    cosines = [(m.embed(batch)[0] * m.embed(batch)[1]).sum() for m in members]
    assert (embedding[0] * embedding[1]).sum().item() == pytest.approx(float(sum(cosines) / 2), abs=1e-5)
    assert ensemble.num_parameters == 2 * members[0].num_parameters
    assert ensemble.tasks == AlphaDiffract.tasks and ensemble.serves("lattice")
    assert ensemble.data_requirements() == members[0].data_requirements()
    with pytest.raises(ConfigError, match="at least one member"):
        EnsembleClassifier([])


def test_trainer_fit_uses_adamw_and_the_cyclic_schedule() -> None:
    torch.manual_seed(0)
    model = tiny_model()  # the twin's schedule: cyclic_triangular2, 10 % -> 100 % over 1 epoch and back
    assert model.hparams["scheduler"] == {
        "name": "cyclic_triangular2",
        "base_lr_fraction": 0.1,
        "step_epochs": 1,
    }
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
    model = small_model(256, drop_path=0.0)  # 256 points: 3 positions x 8 channels, fast on CPU
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
    predicted = model.predict_proba({"pattern": held_out.patterns})["crystal_system"].argmax(-1)
    assert (predicted == held_out.labels).float().mean() > 0.9


def test_registered_config_has_the_paper_settings() -> None:
    config = parse_method("alphadiffract").config
    assert (config.data.view, config.data.batch_size, config.trainer.max_epochs) == ("alphadiffract", 64, 60)
    assert config.recipe.class_path.endswith(".Ensemble") and config.recipe.init_args.members == 10
    init = config.model.init_args
    assert init.encoder.init_args.input_length == N_POINTS  # from the view
    assert (init.gemd_weight, init.lattice_weight) == (1.0, 1.0)
    assert init.space_group_distance == "maximal_subgroup_hops"
    assert init.optimizer == {"name": "AdamW", "lr": 2e-4, "weight_decay": 0.01}
    assert init.scheduler == {"name": "cyclic_triangular2", "base_lr_fraction": 0.1, "step_epochs": 6}
    assert parse_method("alphadiffract_tiny").config.recipe.class_path.endswith(".SingleFit")


def test_registered_parameter_count() -> None:
    info = method_info("alphadiffract")
    assert info["parameters"] == 8_735_229
    assert info["tasks"] == ["crystal_system", "space_group", "lattice", "retrieval"]
    assert info["class_path"] == "pxrdbench.methods.supervised.AlphaDiffract"


@pytest.mark.slow
def test_full_size_training_step() -> None:
    model = create_method("alphadiffract", space_group_distance=RING_D)
    batch = {
        "pattern": 100 * torch.rand(2, 8192),
        "crystal_system": torch.tensor([0, 6]),
        "space_group": torch.tensor([0, 224]),
        "lattice": torch.tensor([[5.0, 6, 7, 90, 100, 90], [4, 4, 4, 90, 90, 90]]),
    }
    loss = model.training_step(batch, 0)
    loss.backward()
    assert torch.isfinite(loss) and model.encoder.output_dim == 560
