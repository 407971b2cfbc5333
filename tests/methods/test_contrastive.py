"""XCCP contrastive methods (den_kan, wa_kan, den_mlp): one training step on real crystal graphs, the
temperature options, the batch-in retrieval API and the registered configurations (paper settings, parameter
counts). The tiny twins read the xccp_dual view's grid (4,000 points, 2θ = 10° at index 500)."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from pxrdbench.data.graphs import cgcnn_graph
from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.infonce import symmetric_infonce
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.contrastive import ContrastiveMethod, in_batch_top1
from pxrdbench.methods.registry import create_method, method_info, parse_method
from pxrdbench.models.crystal.cgcnn import CGCNN
from pxrdbench.models.heads.kan import KANHead, kan_parameter_count
from pxrdbench.models.heads.mlp import MLPHead
from pxrdbench.models.heads.projection import MatchedMLPHead
from pxrdbench.models.xrd.dual_expert import XCCPEncoder
from pxrdbench.views.spec import load_view

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:lightning.pytorch.cli",
    "ignore:LightningCLI's args parameter:UserWarning",  # the registry parses configs under pytest's argv
)

TINY = ("den_kan_tiny", "wa_kan_tiny", "den_mlp_tiny")
N_POINTS, SPLIT = 4000, 500  # the xccp_dual view's grid, which the tiny twins are built for


def four_structures() -> list[Structure]:
    """Rock salt, caesium chloride, bcc iron and a triclinic SiO2-like cell (1–8 atoms)."""
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    return [
        Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4, np.vstack([fcc, fcc + 0.5]) % 1.0),
        Structure(Lattice.cubic(4.11), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(Lattice.cubic(2.87), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
        Structure(
            Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 103.0),
            ["Si", "O", "O"],
            [[0.1, 0.2, 0.3], [0.45, 0.1, 0.7], [0.8, 0.6, 0.15]],
        ),
    ]


@pytest.fixture(scope="module")
def graph_batch() -> Batch:
    return Batch.from_data_list([cgcnn_graph(s) for s in four_structures()])


def synthetic_batch(graph: Batch, seed: int = 0, n_points: int = N_POINTS) -> dict[str, object]:
    """Four max-normalised patterns of a few Gaussian peaks (one pattern per structure of ``graph``)."""
    generator = torch.Generator().manual_seed(seed)
    grid = torch.arange(n_points, dtype=torch.float32)
    centres = torch.randint(10, n_points - 10, (4, 6), generator=generator).float()
    heights = torch.rand(4, 6, generator=generator)
    width = 2.0 * n_points / 400  # the peak width relative to the grid of the old 400-point twins
    patterns = (heights[..., None] * torch.exp(-0.5 * ((grid - centres[..., None]) / width) ** 2)).sum(1)
    return {"pattern": patterns / patterns.amax(dim=1, keepdim=True), "graph": graph}


@pytest.mark.parametrize("name", TINY)
def test_one_training_step_gives_finite_loss_and_gradients_everywhere(name: str, graph_batch: Batch) -> None:
    torch.manual_seed(0)
    model = create_method(name)
    assert isinstance(model, ContrastiveMethod) and model.tasks == ("retrieval",)
    assert model.data_requirements() == DataRequirements(graphs="cgcnn")
    assert (model.pattern_encoder.n_points, model.pattern_encoder.split_index) == (N_POINTS, SPLIT)
    model.train()
    batch = synthetic_batch(graph_batch)
    outputs = model.forward_batch(batch)
    assert outputs["pattern_embedding"].shape == outputs["crystal_embedding"].shape == (4, 16)
    loss = model.compute_losses(outputs, batch)["loss"]
    assert torch.isfinite(loss) and loss.item() > 0
    expected = symmetric_infonce(outputs["pattern_embedding"], outputs["crystal_embedding"], temperature=0.07)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_variants_differ_as_the_paper_describes() -> None:
    den, wa, mlp = (create_method(name) for name in TINY)
    assert den.pattern_encoder.small_angle is not None and mlp.pattern_encoder.small_angle is not None
    assert wa.pattern_encoder.small_angle is None and wa.pattern_encoder.wide_angle_only
    assert isinstance(den.pattern_head, KANHead) and isinstance(wa.pattern_head, KANHead)
    assert isinstance(mlp.pattern_head, MatchedMLPHead)
    assert den.pattern_head.widths == [den.pattern_encoder.output_dim, 16] == [16, 16]  # heads built on F
    assert wa.pattern_head.widths == [wa.pattern_encoder.output_dim, 16] == [8, 16]
    kan_params = sum(p.numel() for p in den.pattern_head.parameters())
    assert kan_params == kan_parameter_count([16, 16])
    mlp_params = sum(p.numel() for p in mlp.pattern_head.parameters())
    per_hidden_unit = den.pattern_encoder.output_dim + 1 + 16
    assert abs(kan_params - mlp_params) <= per_hidden_unit // 2 + 1
    # identical encoders: the variants differ only in the head
    assert sum(p.numel() for p in den.pattern_encoder.parameters()) == sum(
        p.numel() for p in mlp.pattern_encoder.parameters()
    )


def test_learnable_temperature_is_a_trained_parameter(graph_batch: Batch) -> None:
    overrides = ["--model.init_args.learnable_temperature", "true", "--model.init_args.temperature", "0.1"]
    model = create_method("den_kan_tiny", overrides)
    assert model.hparams["learnable_temperature"] and model.hparams["temperature"] == 0.1
    names = [n for n, _ in model.named_parameters()]
    assert "infonce.log_scale" in names
    batch = synthetic_batch(graph_batch)
    losses = model.compute_losses(model.forward_batch(batch), batch)
    assert losses["temperature"].item() == pytest.approx(0.1, rel=1e-5)
    losses["loss"].backward()
    assert model.infonce.log_scale.grad is not None and model.infonce.log_scale.grad.abs() > 0
    optimizer = model.configure_optimizers()
    optimizer = optimizer["optimizer"] if isinstance(optimizer, dict) else optimizer
    assert any(p is model.infonce.log_scale for g in optimizer.param_groups for p in g["params"])
    fixed = create_method("den_kan_tiny")
    assert "temperature" not in fixed.compute_losses(fixed.forward_batch(batch), batch)
    assert not any(n.startswith("infonce.") for n, _ in fixed.named_parameters())


def test_training_on_one_batch_aligns_patterns_with_their_structures(graph_batch: Batch) -> None:
    torch.manual_seed(1)
    model = create_method("den_kan_tiny")
    batch = synthetic_batch(graph_batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(25):
        optimizer.zero_grad()
        loss = model.compute_losses(model.forward_batch(batch), batch)["loss"]
        first = loss.item() if first is None else first
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
    with torch.no_grad():  # train mode: batch-norm statistics of this batch, as in the steps above
        outputs = model.forward_batch(batch)
    assert in_batch_top1(outputs["pattern_embedding"], outputs["crystal_embedding"]).mean().item() == 1.0


def test_retrieval_api_returns_unit_embeddings_and_restores_the_mode(graph_batch: Batch) -> None:
    model = create_method("wa_kan_tiny")
    model.train()
    batch = synthetic_batch(graph_batch)
    z = model.embed(batch)
    c = model.embed_structures(batch)
    assert z.shape == c.shape == (4, 16) and not z.requires_grad
    assert torch.allclose(z.norm(dim=1), torch.ones(4), atol=1e-5)
    assert torch.allclose(c.norm(dim=1), torch.ones(4), atol=1e-5)
    assert model.training  # the previous mode comes back
    assert model.serves("retrieval") and not model.serves("crystal_system")
    assert torch.equal(model.embed({"pattern": batch["pattern"]}), z)  # the pattern alone suffices
    assert torch.allclose(model.predict(batch)["embedding"], z) and set(model.predict(batch)) == {"embedding"}
    with pytest.raises(InputError, match="graph"):
        model.embed_structures({"pattern": batch["pattern"]})


def test_in_batch_top1_counts_rows_whose_best_match_is_their_own() -> None:
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    c = torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, 1.0]])  # row 2's best match is crystal 0
    assert in_batch_top1(p, c).tolist() == [1.0, 1.0, 0.0]


def test_metrics_update_and_missing_graphs_are_reported(graph_batch: Batch) -> None:
    model = create_method("den_mlp_tiny")
    batch = synthetic_batch(graph_batch)
    assert model.update_metrics(model.forward_batch(batch), batch, "val") == {"retrieval"}
    value = model.val_metrics["retrieval"].compute()["val_retrieval_top1"]
    assert 0.0 <= float(value) <= 1.0
    with pytest.raises(InputError, match="graph"):
        model.forward_batch({"pattern": batch["pattern"]})


def test_a_method_built_from_the_classes_builds_its_heads_on_the_encoders() -> None:
    torch.manual_seed(0)
    model = ContrastiveMethod(
        pattern_encoder=XCCPEncoder(
            split_index=50, input_length=400, widths=(4, 8), blocks=(1, 1), kernel_size=3
        ),
        pattern_head=partial(KANHead, hidden=(), out_dim=16),
        crystal_encoder=CGCNN(embedding_dim=8, n_conv=1, num_gaussians=9, out_dim=12),
        crystal_head=partial(MLPHead, hidden=(), out_dim=16),
    )
    assert model.pattern_head.widths == [16, 16] and model.crystal_head.in_dim == 12
    assert "pattern_encoder" not in model.hparams and model.hparams["temperature"] == 0.07
    graph = Batch.from_data_list([cgcnn_graph(s) for s in four_structures()])
    batch = synthetic_batch(graph, n_points=400)
    outputs = model.forward_batch(batch)
    assert outputs["pattern_embedding"].shape == outputs["crystal_embedding"].shape == (4, 16)
    assert torch.isfinite(model.compute_losses(outputs, batch)["loss"])
    mismatched = ContrastiveMethod(
        pattern_encoder=XCCPEncoder(
            split_index=50, input_length=400, widths=(4, 8), blocks=(1, 1), kernel_size=3
        ),
        pattern_head=KANHead(16, hidden=(), out_dim=16),  # a built module is used as it is
        crystal_encoder=CGCNN(embedding_dim=8, n_conv=1, num_gaussians=9, out_dim=12),
    )
    assert isinstance(mismatched.crystal_head, torch.nn.Identity)
    with pytest.raises(ConfigError, match="differ"):
        mismatched.forward_batch(batch)


@pytest.mark.parametrize("name", ("den_kan", "wa_kan", "den_mlp"))
def test_registered_configs_instantiate_with_the_paper_settings(name: str) -> None:
    cli = parse_method(name)
    config = cli.config
    view = load_view(config.data.view)
    assert (config.data.view, config.data.batch_size, config.trainer.max_epochs) == ("xccp_dual", 128, 100)
    assert config.recipe.class_path.endswith(".SingleFit")
    init = config.model.init_args
    encoder = init.pattern_encoder.init_args
    assert (encoder.input_length, encoder.split_index) == (view.n_points, view.split_index) == (4000, 500)
    assert encoder.wide_angle_only == (name == "wa_kan")
    assert init.temperature == 0.07 and not init.learnable_temperature and not init.gather_negatives
    assert init.optimizer == {"name": "Adam", "lr": 1e-3}
    assert init.scheduler == {"name": "multistep", "milestones": [60, 80], "gamma": 0.1}
    model = create_method(name)
    assert model.data_requirements().graphs == "cgcnn"
    assert model.pattern_head.output_dim == 64 and model.crystal_encoder.output_dim == 64
    head = MatchedMLPHead if name == "den_mlp" else KANHead
    assert type(model.pattern_head) is head
    z = model.embed({"pattern": torch.rand(2, 4000)})
    assert z.shape == (2, 64)


def test_registered_parameter_counts() -> None:
    counts = {name: method_info(name)["parameters"] for name in ("den_kan", "wa_kan", "den_mlp")}
    assert counts == {"den_kan": 5_110_080, "wa_kan": 2_630_560, "den_mlp": 5_109_886}
