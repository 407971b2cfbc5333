"""XtalNet CPCP (paper 003): the registered configuration, one CPU training step of the tiny twin on real structures
(atoms-only graphs, the view's peak tokens), and structures the crystal encoder cannot embed."""

from __future__ import annotations

import math

import pytest
import torch

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.registry import create_method, parse_method
from pxrdbench.models.crystal.cspnet import CSPNet
from pxrdbench.models.xrd.peak_transformer import PeakTransformer
from pxrdbench.run.lightning_cli import configure_data_for
from pxrdbench.tasks.render import render_rows

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:lightning.pytorch.cli",
    "ignore:LightningCLI's args parameter:UserWarning",
)


def test_registered_config_has_the_reference_settings() -> None:
    config = parse_method("xtalnet_cpcp").config
    init = config.model.init_args
    assert init.optimizer == {
        "name": "Adam",
        "lr": 5e-4,
        "betas": [0.9, 0.99],
        "eps": 1e-6,
        "weight_decay": 1e-4,
    }
    assert (config.data.batch_size, config.trainer.max_epochs, config.trainer.gradient_clip_val) == (
        64,
        400,
        5.0,
    )
    assert init.gather_negatives and init.learnable_temperature
    assert math.log(1.0 / init.temperature) == pytest.approx(1.0)  # logits = exp(s)·P·Cᵀ, s₀ = 1
    model = create_method("xtalnet_cpcp")
    assert isinstance(model.pattern_encoder, PeakTransformer) and isinstance(model.crystal_encoder, CSPNet)
    assert model.data_requirements() == DataRequirements(graphs="atoms", peak_tokens=True)
    assert model.pattern_encoder.output_dim == model.crystal_encoder.output_dim == 512


@pytest.fixture(scope="module")
def token_batch(cache: DatasetCache) -> dict:
    model = create_method("xtalnet_cpcp_tiny")
    dm = SimulatedDataModule(cache, view="xtalnet", batch_size=4, seed=0)
    configure_data_for(dm, model)
    (batch,) = list(render_rows(dm, cache.split_indices("train")[:4], seed=0))
    return batch


def test_tiny_twin_trains_one_step_on_tokens_and_atoms(token_batch: dict) -> None:
    torch.manual_seed(0)
    model = create_method("xtalnet_cpcp_tiny").train()
    batch = token_batch
    assert batch["peak_mask"].any(dim=1).all() and batch["graph"].edge_index.shape[1] == 0
    losses = model.compute_losses(model.forward_batch(batch), batch)
    assert losses["unembeddable"] == 0 and "peaks_dropped" in losses
    assert losses["temperature"] == pytest.approx(math.exp(-1.0), rel=1e-5)
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_crystal_over_the_atom_limit_is_left_out_of_the_loss_and_counted(token_batch: dict) -> None:
    torch.manual_seed(0)
    model = create_method("xtalnet_cpcp_tiny", ["--model.init_args.crystal_encoder.init_args.max_atoms", "3"])
    sizes = torch.bincount(token_batch["graph"].batch)
    outputs = model.forward_batch(token_batch)
    assert int(outputs["unembeddable"]) == int((sizes > 3).sum()) > 0
    assert outputs["pattern_embedding"].shape[0] == int((sizes <= 3).sum())
    embedded = model.embed_structures(token_batch)
    assert torch.isnan(embedded[sizes > 3]).all() and torch.isfinite(embedded[sizes <= 3]).all()
