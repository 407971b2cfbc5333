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

Inputs: a dense pattern encoder reads ``batch["pattern"]``; an encoder whose ``input_kind`` is
``"peak_tokens"`` reads the view's peak tokens (``peak_positions``, ``peak_intensities``, ``peak_mask``). The
crystal encoder's ``graph_kind`` names the graphs the data module attaches. A crystal the encoder cannot embed
(NaN row, e.g. CSPNet over 400 atoms) is left out of the loss with its pattern and counted (``unembeddable``).

Configurations (``configs/methods/``):

- ``eacnn`` (paper 001): a 140-point ResNet → 384-d; the ACE crystal encoder (``models/crystal/ace.py``);
  CLIP loss with a learnable τ (τ₀ = 0.07);
- ``xtalnet_cpcp`` (paper 003): the peak-token transformer → 512-d; CSPNet → 512-d; learnable scale
  exp(s), s₀ = 1; negatives gathered over the global batch;

XCCP (paper 000; 64-d embeddings, CGCNN crystal encoder, batch 128):

- ``den_kan``: small-angle + wide-angle ResNet branches (:class:`XCCPEncoder`) → :class:`KANHead`;
- ``wa_kan``: the wide-angle branch only (points from the 10° split on) → the same KAN head;
- ``den_mlp``: both branches → an MLP head with the KAN head's parameter count (:class:`MatchedMLPHead`).

Choices where the paper is silent (also in ``configs/methods/*.yaml`` and docs/METHODS.md): branch ResNets
widths (32, 64, 128, 256) × 2 blocks, kernel 7; KAN head widths [F, 128, 64], grid 5, cubic splines with a
LayerNorm before each layer; CGCNN width 64, 3 convolutions; Adam lr 1e-3; MultiStepLR ×0.1 at epochs 60 and
80 of 100 (CGCNN's public training script, which XCCP's "modified CGCNN" derives from, uses MultiStepLR ×0.1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.losses.infonce import InfoNCELoss
from pxrdbench.methods.base import DataRequirements, PXRDMethod

PEAK_TOKEN_KEYS = ("peak_positions", "peak_intensities", "peak_mask")
"""The batch keys a token pattern encoder reads, in its argument order (see views/peak_tokens.py)."""


class ContrastiveMethod(PXRDMethod):
    """Pattern ↔ structure contrastive pre-training (symmetric InfoNCE on L2-normalised embeddings).

    Args:
        pattern_encoder: pattern [B, N] → features [B, F] (with an ``output_dim`` attribute = F).
        pattern_head: ``F → module`` mapping features to the embedding D (a :class:`KANHead` or
            :class:`MatchedMLPHead` class path in a config; built on the encoder's ``output_dim``), a
            built module, or None (the encoder's features are the embedding, as in EACNN).
        crystal_encoder: torch_geometric Batch → [B, D'] (e.g. :class:`CGCNN`; its ``graph_kind`` attribute
            names the graphs the data module attaches, default ``"cgcnn"``).
        crystal_head: optional ``D' → module`` (None: the crystal encoder's output is the embedding).
        temperature: τ of the InfoNCE (XCCP: 0.07); the initial τ when learnable.
        learnable_temperature: learn log(1/τ) (CLIP-style, 1/τ clamped at 100).
        gather_negatives: use the pairs of all DDP ranks as negatives (see the module docstring).
        optimizer, scheduler: configs (see :mod:`pxrdbench.methods.base`).
    """

    tasks = ("retrieval",)
    hparams_ignore = ("pattern_encoder", "pattern_head", "crystal_encoder", "crystal_head")
    family = "contrastive"

    def __init__(
        self,
        pattern_encoder: nn.Module,
        pattern_head: Callable[[int], nn.Module] | None,
        crystal_encoder: nn.Module,
        crystal_head: Callable[[int], nn.Module] | None = None,
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
            "crystal_head": crystal_head,
        }
        super().__init__(optimizer=optimizer, scheduler=scheduler, components=components)

    def configure_models(self) -> None:
        """Build the heads on their encoders' feature sizes."""
        if self.pattern_head is None:
            self.pattern_head = nn.Identity()
        elif not isinstance(self.pattern_head, nn.Module):
            self.pattern_head = self.pattern_head(int(self.pattern_encoder.output_dim))
        if self.crystal_head is None:
            self.crystal_head = nn.Identity()
        elif not isinstance(self.crystal_head, nn.Module):
            self.crystal_head = self.crystal_head(int(self.crystal_encoder.output_dim))

    @property
    def reads_peak_tokens(self) -> bool:
        """Whether the pattern encoder reads peak tokens (its ``input_kind`` is ``"peak_tokens"``)."""
        return getattr(self.pattern_encoder, "input_kind", "pattern") == "peak_tokens"

    def data_requirements(self) -> DataRequirements:
        """The pattern (or its peak tokens), and the crystal graphs the crystal encoder reads."""
        return DataRequirements(
            graphs=getattr(self.crystal_encoder, "graph_kind", "cgcnn"), peak_tokens=self.reads_peak_tokens
        )

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
        """patterns [B, N] → raw (unnormalised) pattern embeddings [B, D] (dense pattern encoders)."""
        return self.pattern_head(self.pattern_encoder(patterns))

    def encode_patterns(self, batch: Mapping[str, Any]) -> Tensor:
        """Raw pattern embeddings [B, D] of a batch: from its ``pattern``, or from its peak tokens
        (``peak_positions``, ``peak_intensities``, ``peak_mask``) for a token encoder."""
        if not self.reads_peak_tokens:
            return self(batch["pattern"].to(self.device))
        missing = [key for key in PEAK_TOKEN_KEYS if key not in batch]
        if missing:
            raise InputError(
                "batch", f"{type(self).__name__} reads peak tokens, but the batch lacks {missing}"
            )
        tokens = [batch[key].to(self.device) for key in PEAK_TOKEN_KEYS]
        return self.pattern_head(self.pattern_encoder(*tokens))

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
        pattern_embedding = self.encode_patterns(batch)
        crystal_embedding = self.encode_structures(graph)
        if pattern_embedding.shape != crystal_embedding.shape:
            raise ConfigError(
                f"{type(self).__name__}: pattern embedding {tuple(pattern_embedding.shape)} and crystal "
                f"embedding {tuple(crystal_embedding.shape)} differ (check the heads' output sizes)"
            )
        embeddable = torch.isfinite(crystal_embedding).all(dim=1)
        outputs = {"unembeddable": (~embeddable).sum()}
        if not bool(embeddable.all()):  # e.g. CSPNet over its atom limit: the pair is not trained on
            pattern_embedding, crystal_embedding = (
                pattern_embedding[embeddable],
                crystal_embedding[embeddable],
            )
        return {**outputs, "pattern_embedding": pattern_embedding, "crystal_embedding": crystal_embedding}

    def compute_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """{"loss": symmetric InfoNCE}; also logged: ``unembeddable`` (pairs left out because the crystal
        encoder could not embed the structure), ``peaks_dropped`` (token encoders: peaks per pattern beyond the
        view's cap) and the current τ as ``temperature`` when learnable."""
        loss = self.infonce(
            outputs["pattern_embedding"], outputs["crystal_embedding"], gather=self.gather_negatives
        )
        losses = {"loss": loss, "unembeddable": outputs["unembeddable"].float()}
        if self.reads_peak_tokens and "peak_dropped" in batch:  # peaks the view's token cap left out
            losses["peaks_dropped"] = batch["peak_dropped"].float().mean()
        if self.infonce.learnable:
            losses["temperature"] = 1.0 / self.infonce.logit_scale().detach()
        return losses

    def update_metrics(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Any], stage: str) -> set[str]:
        """In-batch top-1: share of patterns whose most similar crystal in the batch is their own."""
        hits = in_batch_top1(outputs["pattern_embedding"], outputs["crystal_embedding"])
        self.stage_metrics(stage)["retrieval"]["retrieval_top1"].update(hits)
        return {"retrieval"}

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """L2-normalised pattern embeddings [B, D] of a rendered batch (eval mode, no gradients)."""
        with self.evaluating():
            return F.normalize(self.encode_patterns(batch), dim=-1)

    def embed_structures(self, batch: Mapping[str, Any]) -> Tensor:
        """L2-normalised crystal embeddings [G, D] of a batch's ``graph`` (eval mode, no gradients); NaN rows
        for crystals the encoder cannot embed (the retrieval metrics rank them last)."""
        graph = batch.get("graph")
        if graph is None:
            raise InputError("batch['graph']", f"{type(self).__name__} embeds structures from crystal graphs")
        with self.evaluating():
            return F.normalize(self.encode_structures(graph.to(self.device)), dim=-1)


def in_batch_top1(pattern_embedding: Tensor, crystal_embedding: Tensor) -> Tensor:
    """Float[B]: 1 where row i's most cosine-similar crystal in the batch is crystal i, else 0."""
    similarity = F.normalize(pattern_embedding, dim=-1) @ F.normalize(crystal_embedding, dim=-1).t()
    target = torch.arange(similarity.shape[0], device=similarity.device)
    return (similarity.argmax(dim=1) == target).float()
