"""DIFCON's symmetry heads: crystal system, extinction group, and space group conditioned on the system.

DIFCON (Das et al. 2025) predicts the crystal system (CS, 7 classes), the extinction group (EG, E classes;
the project uses 112) and the space group (SG, 230), "the space-group prediction conditioned on the crystal
system (one SG head per crystal system)". The paper also speaks of "8 prediction heads, 7 for CS and SG, 1
for EG", which is ambiguous: one CS head plus seven per-system SG heads plus the EG head make 9. Our
reading has 9 small heads:

* one CS head with 7 logits (order of :data:`~pxrdbench.symmetry.spacegroups.CRYSTAL_SYSTEMS`);
* seven SG heads, head s giving logits only over the space groups of crystal system s (sizes 2, 13, 59, 68,
  25, 27, 36 for triclinic, monoclinic, orthorhombic, tetragonal, trigonal, hexagonal, cubic);
* one EG head with E logits.

The space-group distribution over all 230 groups is the product of the CS distribution and the
within-system distribution of the group's own system s(g):

    P(g) = P_CS(s(g)) · P_s(g | s(g)),
    log P(g) = log_softmax(CS logits)[s(g)] + log_softmax(logits of head s(g))[g within s(g)].

It sums to 1 over the 230 groups (Σ_s P_CS(s) Σ_{g∈s} P_s(g | s) = Σ_s P_CS(s) = 1), every group has
P(g) > 0, and the mass of system s is exactly P_CS(s). It is trained end-to-end by NLL (which also trains
the CS head through P_CS); at inference the prediction is argmax_g P(g), which may differ from first taking
the most likely system and then the most likely group within it.

Outputs of :meth:`ConditionalSymmetryHeads.forward`: ``crystal_system`` and ``extinction_group`` are LOGITS;
``space_group`` is LOG-PROBABILITIES. ``F.cross_entropy`` may be used on all three: on log-probabilities it
equals ``F.nll_loss``, since log_softmax of log-probabilities that already normalise is the identity.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.models.heads.mlp import MLPHead
from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, crystal_system_index

NUM_SPACE_GROUPS = 230
NUM_CRYSTAL_SYSTEMS = len(CRYSTAL_SYSTEMS)

#: Space-group numbers (1..230) of each crystal system, in the order of CRYSTAL_SYSTEMS.
SPACE_GROUPS_BY_SYSTEM: tuple[tuple[int, ...], ...] = tuple(
    tuple(n for n in range(1, NUM_SPACE_GROUPS + 1) if crystal_system_index(n) == s)
    for s in range(NUM_CRYSTAL_SYSTEMS)
)


def _check_positive_int(name: str, value: int) -> int:
    """Return ``value`` as int, raising ConfigError unless it is an integer ≥ 1 (bool rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"ConditionalSymmetryHeads: {name} must be an integer ≥ 1, got {value!r}.")
    return int(value)


class ConditionalSymmetryHeads(nn.Module):
    """CS head, seven per-system SG heads and an EG head on a shared feature (see the module docstring).

    ``forward`` returns ``crystal_system`` logits [B, 7], ``space_group`` log-probabilities [B, 230]
    (column k is space group k + 1; log P(g) = log P_CS(s(g)) + log P_s(g | s(g))) and
    ``extinction_group`` logits [B, E].

    Args:
        in_dim: input feature size.
        hidden: hidden widths of each of the 9 MLP heads.
        num_extinction_groups: number E of extinction-group classes (project: 112).
        activation: hidden activation name (see :data:`~pxrdbench.models.heads.mlp.ACTIVATIONS`).
        dropout: dropout after each hidden activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int] = (512,),
        num_extinction_groups: int = 112,
        activation: str = "gelu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.in_dim = _check_positive_int("in_dim", in_dim)
        self.num_extinction_groups = _check_positive_int("num_extinction_groups", num_extinction_groups)
        widths = tuple(_check_positive_int("hidden width", h) for h in hidden)
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"ConditionalSymmetryHeads: dropout must be in [0, 1), got {dropout!r}.")

        def head(out_dim: int) -> MLPHead:
            return MLPHead(self.in_dim, widths, out_dim, activation=activation, dropout=dropout)

        self.crystal_system_head = head(NUM_CRYSTAL_SYSTEMS)
        self.space_group_heads = nn.ModuleList(head(len(groups)) for groups in SPACE_GROUPS_BY_SYSTEM)
        self.extinction_group_head = head(self.num_extinction_groups)

        # Columns of the concatenated per-system outputs, in system order, are these space-group numbers;
        # `column_of_group[g − 1]` is where group g sits there (identity for ITA numbering, kept general).
        concatenated = [n for groups in SPACE_GROUPS_BY_SYSTEM for n in groups]
        column_of_group = torch.empty(NUM_SPACE_GROUPS, dtype=torch.long)
        column_of_group[torch.tensor(concatenated) - 1] = torch.arange(NUM_SPACE_GROUPS)
        system_of_group = torch.tensor([crystal_system_index(n) for n in range(1, NUM_SPACE_GROUPS + 1)])
        self.register_buffer("column_of_group", column_of_group, persistent=False)
        self.register_buffer("system_of_group", system_of_group, persistent=False)

    def _check_features(self, features: Tensor) -> None:
        """Raise InputError unless ``features`` is [B, in_dim]."""
        if features.dim() != 2 or features.shape[1] != self.in_dim:
            raise InputError("features", f"expected [B, {self.in_dim}], got {tuple(features.shape)}")

    def _within_system_log_probs(self, features: Tensor) -> Tensor:
        """log P_s(g | s(g)) [B, 230]: each group's log-probability within its own system's head."""
        parts = [F.log_softmax(h(features), dim=-1) for h in self.space_group_heads]
        return torch.cat(parts, dim=-1).index_select(-1, self.column_of_group)

    def forward(self, features: Tensor) -> dict[str, Tensor]:
        """Map features [B, in_dim] to CS logits [B, 7], SG log-probabilities [B, 230], EG logits [B, E]."""
        self._check_features(features)
        cs_logits = self.crystal_system_head(features)
        cs_log_probs = F.log_softmax(cs_logits, dim=-1)
        sg_log_probs = cs_log_probs.index_select(-1, self.system_of_group) + self._within_system_log_probs(
            features
        )
        return {
            "crystal_system": cs_logits,
            "space_group": sg_log_probs,
            "extinction_group": self.extinction_group_head(features),
        }

    def _system_indices(self, system: int | str | Tensor, batch: int) -> Tensor:
        """Crystal-system indices [B] (0..6) from an index, a name or a [B] tensor of indices."""
        device = self.system_of_group.device
        if isinstance(system, str):
            if system not in CRYSTAL_SYSTEMS:
                raise InputError(
                    "system", f"unknown crystal system {system!r}; known: {', '.join(CRYSTAL_SYSTEMS)}"
                )
            system = CRYSTAL_SYSTEMS.index(system)
        index = torch.as_tensor(system, device=device)
        if index.dtype.is_floating_point or index.dtype == torch.bool or index.dim() > 1:
            raise InputError("system", f"expected an integer index or a [B] integer tensor, got {system!r}")
        index = index.long().expand(batch) if index.dim() == 0 else index.long()
        if index.shape != (batch,) or not bool(((index >= 0) & (index < NUM_CRYSTAL_SYSTEMS)).all()):
            raise InputError(
                "system",
                f"expected {batch} crystal-system indices in 0..{NUM_CRYSTAL_SYSTEMS - 1}, got {system!r}",
            )
        return index

    def space_group_log_probs_given_system(self, features: Tensor, system: int | str | Tensor) -> Tensor:
        """log P_s(g | s) [B, 230] for a given system s (teacher forcing); −inf for groups outside s.

        ``system`` is an index 0..6 (order of CRYSTAL_SYSTEMS), a system name, or a [B] tensor of indices.
        """
        self._check_features(features)
        index = self._system_indices(system, features.shape[0])
        within = self._within_system_log_probs(features)
        outside = self.system_of_group.unsqueeze(0) != index.unsqueeze(1)
        return within.masked_fill(outside, float("-inf"))

    def predict_space_group_given_system(self, features: Tensor, system: int | str | Tensor) -> Tensor:
        """Most likely space-group number (1..230) [B] within the given crystal system (teacher forcing)."""
        return self.space_group_log_probs_given_system(features, system).argmax(dim=-1) + 1

    def predict_space_group(self, features: Tensor) -> Tensor:
        """Most likely space-group number (1..230) [B] under P(g) = P_CS(s(g)) · P_s(g | s(g))."""
        return self.forward(features)["space_group"].argmax(dim=-1) + 1
