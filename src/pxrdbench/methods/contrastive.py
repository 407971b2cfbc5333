"""CLIP-style pattern ↔ structure contrastive method, and XCCP's DEN-KAN, WA-KAN and DEN-MLP (paper 000).

A pattern encoder + projection head map a pattern [B, N] to z_xrd [B, D]; a crystal encoder (+ optional head)
maps the batch's crystal graphs to z_c [B, D]. Training minimises the symmetric InfoNCE of the pairs
(XCCP eq. 5)

    L = ½ [CE(S, I) + CE(Sᵀ, I)],   S_ij = û_xrd,i · û_c,j / τ,   û = z / ‖z‖,

with τ = 0.07 fixed (XCCP) or learnable (CLIP: log(1/τ) a parameter, 1/τ ≤ 100). Negatives are the other pairs
of the **local** batch by default (``gather_negatives=False``): that is what XCCP (batch 128) and XtalNet
("each GPU's own batch") train with, and it makes one device's step identical to single-process training at
the same per-device batch. With ``gather_negatives=True`` the batches of all DDP ranks are concatenated
(:func:`~pxrdbench.losses.distributed.all_gather_with_grad`, gradient rescaled so DDP's mean all-reduce gives
the single-process gradient of the concatenated batch).

Retrieval API: :meth:`ContrastiveMethod.embed` (unit pattern embedding) and
:meth:`ContrastiveMethod.embed_structures` (unit crystal embedding); candidates are ranked by cosine
similarity. Training metric: in-batch top-1 retrieval accuracy pattern → structure (a fraction; chance level
= 1/batch size).

Registered models (64-d embeddings, CGCNN crystal encoder, batch 128 in ``configs/bench``):

- ``den_kan``: small-angle + wide-angle ResNet branches (:class:`DualExpertEncoder`) → KAN head;
- ``wa_kan``: the wide-angle branch only (points from the 10° split on) → the same KAN head;
- ``den_mlp``: both branches → an MLP head with the KAN head's parameter count (:func:`matched_mlp`).

Choices where the paper is silent (also in ``configs/models/*.yaml`` and docs/METHODS.md): branch ResNets
widths (32, 64, 128, 256) × 2 blocks, kernel 7; KAN head widths [F, 128, 64], grid 5, cubic splines with a
LayerNorm before each layer; CGCNN width 64, 3 convolutions; Adam lr 1e-3; MultiStepLR ×0.1 at epochs 60 and
80 of 100 (CGCNN's public training script, which XCCP's "modified CGCNN" derives from, uses MultiStepLR ×0.1).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from pxrdbench.errors import ConfigError, InputError, did_you_mean
from pxrdbench.losses.infonce import InfoNCELoss
from pxrdbench.methods.base import PXRDMethod
from pxrdbench.models.crystal.cgcnn import CGCNN
from pxrdbench.models.heads.kan import KAN, kan_parameter_count
from pxrdbench.models.heads.projection import matched_mlp
from pxrdbench.models.registry import register_model
from pxrdbench.models.xrd.dual_expert import WIDE_ANGLE_POOL, DualExpertEncoder
from pxrdbench.models.xrd.resnet1d import ResNet1D

XCCP_PAPER = (
    "KAN-enhanced contrastive learning: the accelerator of crystal structure identification from XRD "
    "patterns (Xu et al., npj Comput Mater 2026, doi:10.1038/s41524-026-02015-y)"
)
HEADS = ("kan", "mlp")


class ContrastiveMethod(PXRDMethod):
    """Pattern ↔ structure contrastive pre-training (symmetric InfoNCE on L2-normalised embeddings).

    Args:
        pattern_encoder: pattern [B, N] → features [B, F].
        pattern_head: features F → embedding D (KAN or MLP).
        crystal_encoder: torch_geometric Batch → [B, D'] (e.g. :class:`CGCNN`).
        crystal_head: optional D' → D map (None: the crystal encoder's output is the embedding).
        temperature: τ of the InfoNCE (XCCP: 0.07); the initial τ when learnable.
        learnable_temperature: learn log(1/τ) (CLIP-style, 1/τ clamped at 100).
        gather_negatives: use the pairs of all DDP ranks as negatives (see the module docstring).
        optimizer, scheduler: configs (see :mod:`pxrdbench.methods.base`).
    """

    tasks = ("retrieval",)
    hparams_ignore = ("pattern_encoder", "pattern_head", "crystal_encoder", "crystal_head")

    def __init__(
        self,
        pattern_encoder: nn.Module,
        pattern_head: nn.Module,
        crystal_encoder: nn.Module,
        crystal_head: nn.Module | None = None,
        temperature: float = 0.07,
        learnable_temperature: bool = False,
        gather_negatives: bool = False,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
    ) -> None:
        components = {
            "pattern_encoder": pattern_encoder,
            "pattern_head": pattern_head,
            "crystal_encoder": crystal_encoder,
            "crystal_head": crystal_head if crystal_head is not None else nn.Identity(),
        }
        super().__init__(optimizer=optimizer, scheduler=scheduler, components=components)

    def configure_losses(self) -> None:
        """Symmetric InfoNCE with a fixed or learnable temperature."""
        self.gather_negatives = bool(self.hparams["gather_negatives"])
        self.infonce = InfoNCELoss(
            temperature=float(self.hparams["temperature"]),
            learnable=bool(self.hparams["learnable_temperature"]),
        )

    def configure_metrics(self) -> None:
        """In-batch top-1 retrieval accuracy, pattern → structure (fraction of the batch)."""
        self.set_task_metrics({"retrieval": MetricCollection({"retrieval_top1": MeanMetric()})})

    def forward(self, patterns: Tensor) -> Tensor:
        """patterns [B, N] → raw (unnormalised) pattern embeddings [B, D]."""
        return self.pattern_head(self.pattern_encoder(patterns))

    def encode_structures(self, graph: Any) -> Tensor:
        """A torch_geometric Batch of crystal graphs → raw crystal embeddings [G, D]."""
        return self.crystal_head(self.crystal_encoder(graph))

    def forward_batch(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Pattern and crystal embeddings of a batch (the batch must carry ``graph``)."""
        graph = batch.get("graph")
        if graph is None:
            raise InputError(
                "batch['graph']",
                f"{type(self).__name__} needs crystal graphs: run the data module with with_graphs='cgcnn'",
            )
        pattern_embedding = self(batch["pattern"])
        crystal_embedding = self.encode_structures(graph)
        if pattern_embedding.shape != crystal_embedding.shape:
            raise ConfigError(
                f"{type(self).__name__}: pattern embedding {tuple(pattern_embedding.shape)} and crystal "
                f"embedding {tuple(crystal_embedding.shape)} differ (check the heads' output sizes)"
            )
        return {"pattern_embedding": pattern_embedding, "crystal_embedding": crystal_embedding}

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """{"loss": symmetric InfoNCE}; the current τ is reported as ``temperature`` when learnable."""
        loss = self.infonce(
            outputs["pattern_embedding"], outputs["crystal_embedding"], gather=self.gather_negatives
        )
        losses = {"loss": loss}
        if self.infonce.learnable:
            losses["temperature"] = 1.0 / self.infonce.logit_scale().detach()
        return losses

    def update_metrics(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str) -> set[str]:
        """In-batch top-1: share of patterns whose most similar crystal in the batch is their own."""
        hits = in_batch_top1(outputs["pattern_embedding"], outputs["crystal_embedding"])
        self.stage_metrics(stage)["retrieval"]["retrieval_top1"].update(hits)
        return {"retrieval"}

    def embed(self, patterns: Tensor) -> Tensor:
        """L2-normalised pattern embeddings [B, D] (eval mode, no gradients)."""
        with self.evaluating():
            return F.normalize(self(patterns.to(self.device)), dim=-1)

    def embed_structures(self, graph: Any) -> Tensor:
        """L2-normalised crystal embeddings [G, D] of a torch_geometric Batch (eval mode, no gradients)."""
        with self.evaluating():
            return F.normalize(self.encode_structures(graph.to(self.device)), dim=-1)


def in_batch_top1(pattern_embedding: Tensor, crystal_embedding: Tensor) -> Tensor:
    """Float[B]: 1 where row i's most cosine-similar crystal in the batch is crystal i, else 0."""
    similarity = F.normalize(pattern_embedding, dim=-1) @ F.normalize(crystal_embedding, dim=-1).t()
    target = torch.arange(similarity.shape[0], device=similarity.device)
    return (similarity.argmax(dim=1) == target).float()


def build_xccp(
    input_length: int = 4000,
    split_index: int | None = 500,
    wide_angle_only: bool = False,
    head: str = "kan",
    embedding_dim: int = 64,
    branch_widths: Sequence[int] = (32, 64, 128, 256),
    branch_blocks: Sequence[int] = (2, 2, 2, 2),
    kernel_size: int = 7,
    norm: str = "batch",
    kan_hidden: Sequence[int] = (128,),
    grid_size: int = 5,
    spline_order: int = 3,
    crystal_width: int = 64,
    crystal_convs: int = 3,
    crystal_gaussians: int = 41,
    crystal_cutoff: float = 8.0,
    temperature: float = 0.07,
    learnable_temperature: bool = False,
    gather_negatives: bool = False,
    seed: int | None = None,
    optimizer: Mapping[str, Any] | None = None,
    scheduler: Mapping[str, Any] | None = None,
) -> ContrastiveMethod:
    """An XCCP model: dual-expert (or WA-only) ResNet encoder → KAN / matched-MLP head, CGCNN crystal encoder.

    ``input_length`` and ``split_index`` (grid index of 2θ = 10°) come from the view (the runner passes them);
    ``head="mlp"`` sizes the MLP's hidden width so its parameter count matches the KAN head of the same
    widths. ``seed`` fixes the initial weights.
    """
    if head not in HEADS:
        raise did_you_mean(head, HEADS, "projection head")
    if split_index is None:
        raise ConfigError("XCCP models need split_index (the grid index of 2θ = 10°); the view has none")
    with torch.random.fork_rng(devices=[], enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)

        def branch(pool: tuple[int, int] | None) -> ResNet1D:
            return ResNet1D(widths=branch_widths, blocks_per_stage=branch_blocks, kernel_size=kernel_size,
                            pool_after_stage=pool, norm=norm)  # fmt: skip

        small = None if wide_angle_only else branch(None)
        encoder = DualExpertEncoder(
            split_index, small, branch(WIDE_ANGLE_POOL), wide_angle_only, input_length
        )
        widths = [encoder.output_dim, *(int(w) for w in kan_hidden), int(embedding_dim)]
        if head == "kan":
            projection: nn.Module = KAN(widths, grid_size=grid_size, spline_order=spline_order)
        else:
            budget = kan_parameter_count(widths, grid_size, spline_order)
            projection = matched_mlp(encoder.output_dim, int(embedding_dim), budget)
        crystal = CGCNN(embedding_dim=crystal_width, num_gaussians=crystal_gaussians, cutoff=crystal_cutoff,
                        n_conv=crystal_convs, out_dim=int(embedding_dim))  # fmt: skip
        return ContrastiveMethod(
            pattern_encoder=encoder,
            pattern_head=projection,
            crystal_encoder=crystal,
            temperature=temperature,
            learnable_temperature=learnable_temperature,
            gather_negatives=gather_negatives,
            optimizer=optimizer,
            scheduler=scheduler,
        )


def _variant(name: str, **defaults: Any) -> Callable[..., ContrastiveMethod]:
    """A builder ``build_<name>``: :func:`build_xccp` with other defaults (and the same checked signature)."""

    def builder(**kwargs: Any) -> ContrastiveMethod:
        return build_xccp(**{**defaults, **kwargs})

    signature = inspect.signature(build_xccp)
    builder.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY, default=defaults.get(p.name, p.default))
            for p in signature.parameters.values()
        ]
    )
    builder.__name__ = builder.__qualname__ = f"build_{name}"
    builder.__doc__ = f"{name}: :func:`build_xccp` with {defaults or 'its defaults'}."
    return builder


build_den_kan = register_model(
    "den_kan",
    tasks=ContrastiveMethod.tasks,
    description="XCCP DEN-KAN: SA + WA 1D-ResNet branches, KAN head -> 64-d; CGCNN -> 64-d; InfoNCE tau 0.07",
    paper=XCCP_PAPER,
    tiny=True,
)(_variant("den_kan", wide_angle_only=False, head="kan"))
build_wa_kan = register_model(
    "wa_kan",
    tasks=ContrastiveMethod.tasks,
    description="XCCP WA-KAN: wide-angle (>= 10 deg) ResNet branch only, KAN head -> 64-d; CGCNN -> 64-d",
    paper=XCCP_PAPER,
    tiny=True,
)(_variant("wa_kan", wide_angle_only=True, head="kan"))
build_den_mlp = register_model(
    "den_mlp",
    tasks=ContrastiveMethod.tasks,
    description="XCCP DEN-MLP: SA + WA branches, MLP head with the KAN head's parameter count; CGCNN",
    paper=XCCP_PAPER,
    tiny=True,
)(_variant("den_mlp", wide_angle_only=False, head="mlp"))
