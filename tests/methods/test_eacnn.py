"""EACNN (paper 001): the registered configuration, and one CPU training step of the tiny twin on real crystal
graphs (the cached 5 Å radius graphs) and patterns rendered through the ``eacnn`` view (140 points)."""

from __future__ import annotations

import pytest
import torch

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.contrastive import ContrastiveMethod
from pxrdbench.methods.registry import create_method, method_info, parse_method
from pxrdbench.models.crystal.ace import ACEEncoder
from pxrdbench.models.xrd.resnet1d import ResNet1D
from pxrdbench.run.lightning_cli import configure_data_for
from pxrdbench.tasks.render import render_rows
from pxrdbench.views.spec import load_view

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:lightning.pytorch.cli",
    "ignore:LightningCLI's args parameter:UserWarning",
)


def test_registered_config_has_the_paper_settings() -> None:
    config = parse_method("eacnn").config
    view = load_view(config.data.view)
    assert view.n_points == 140  # 10–80° in bins of 0.5°
    assert view.bin_factor * view.grid.step == pytest.approx(0.5)
    assert (view.grid.start, view.grid.stop) == pytest.approx((10.025, 79.975))
    init = config.model.init_args
    assert init.pattern_head is None and init.learnable_temperature and init.temperature == 0.07
    ace = init.crystal_encoder.init_args
    assert (ace.cutoff, ace.num_radial, ace.envelope_p, ace.sh_lmax, ace.correlation, ace.num_layers) == (
        5.0, 8, 5, 3, 3, 2,
    )  # fmt: skip
    model = create_method("eacnn")
    assert isinstance(model.crystal_encoder, ACEEncoder) and isinstance(model.pattern_encoder, ResNet1D)
    assert model.data_requirements() == DataRequirements(graphs="radius")
    assert model.pattern_encoder.output_dim == model.crystal_encoder.output_dim == 384
    assert model.embed({"pattern": torch.rand(2, 140)}).shape == (2, 384)
    assert method_info("eacnn")["parameters"] == sum(p.numel() for p in model.parameters())


def test_tiny_twin_trains_one_step_on_real_graphs(cache: DatasetCache) -> None:
    torch.manual_seed(0)
    model = create_method("eacnn_tiny")
    assert isinstance(model, ContrastiveMethod)
    dm = SimulatedDataModule(cache, view="eacnn", batch_size=4, seed=0)
    configure_data_for(dm, model)
    assert dm.with_graphs == "radius"
    (batch,) = list(render_rows(dm, cache.split_indices("train")[:4], seed=0))
    assert batch["pattern"].shape == (4, 140) and batch["graph"].edge_vec.shape[1] == 3
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = model.compute_losses(model.forward_batch(batch), batch)
    assert "temperature" in losses and losses["temperature"] == pytest.approx(0.07, rel=1e-5)
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer.step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))
