"""Reference baselines with the methods' prediction API (no gradient training): chance, majority class and
pattern NN.

Both are LightningModules (so a config instantiates them like any method) without trainable parameters;
they are fitted by the ``FitBaseline`` recipe of :mod:`pxrdbench.run.recipes`, one pass over training batches (the batch contract's dicts: ``pattern`` and optional
labels ``crystal_system``, ``space_group``, ``extinction_group``, ``lattice``; −1 or an absent key = missing)
and then answer ``predict_proba`` / ``predict_lattice`` (and, for the pattern NN, ``embed``) like a trained
method.

- :class:`MajorityBaseline`: the most frequent training class per classification task, with probability 1
  (ties: the lowest class index); lattice = the per-parameter training median (the constant that minimises the
  MAE of each parameter; the six medians together need not be one consistent cell).
- :class:`ChanceBaseline`: what a method that learned nothing scores — uniform class probabilities, one
  embedding for everything (every retrieval candidate ties), the training median lattice.
- :class:`PatternNNBaseline`: cosine similarity of raw rendered patterns. Each pattern is average-pooled to
  ``pool_length`` bins (adaptive pooling: bin i averages points ⌊iN/L⌋ … ⌈(i+1)N/L⌉ − 1; skipped when
  N ≤ ``pool_length``), to bound the bank's memory, then L2-normalised. A query takes the labels of its most
  similar training pattern (per task, among the patterns labelled for that task). ``embed`` is the pooled,
  normalised pattern, so for retrieval a query is matched against the candidates' simulated patterns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.methods.base import DataRequirements, predict_everything
from pxrdbench.models.heads.symmetry import valid_lattice_rows

CLASSIFICATION_TASKS: tuple[str, ...] = ("crystal_system", "space_group", "extinction_group")
DEFAULT_NUM_CLASSES: dict[str, int] = {"crystal_system": 7, "space_group": 230}


class _FittedBaseline(L.LightningModule):
    """Shared bookkeeping: class counts per task, fitted state, zero trainable parameters."""

    tasks: ClassVar[tuple[str, ...]] = ()
    family: ClassVar[str] = "baseline"  # fitted in one pass; no training budget
    num_parameters: int = 0

    def __init__(self, num_extinction_groups: int | None = None) -> None:
        super().__init__()
        self.run_config: dict[str, Any] = {}
        self.num_classes: dict[str, int] = dict(DEFAULT_NUM_CLASSES)
        if num_extinction_groups is not None:
            self.num_classes["extinction_group"] = int(num_extinction_groups)
        self.fitted_tasks: set[str] = set()

    def serves(self, task: str) -> bool:
        """Whether the baseline serves ``task``."""
        return task in self.tasks

    def data_requirements(self) -> DataRequirements:
        """The rendered pattern and its labels."""
        return DataRequirements()

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Everything predicted for a rendered batch (:func:`~pxrdbench.methods.base.predict_everything`)."""
        return predict_everything(self, batch)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        """Baselines are not trained by gradient steps: ``pxrdbench bench`` fits them (recipe FitBaseline)."""
        raise ConfigError(
            f"{type(self).__name__} is fitted by one pass over the training split, not by a Trainer: "
            "run `pxrdbench bench --model <name>` (its recipe is FitBaseline)"
        )

    def configure_optimizers(self) -> None:
        """No optimiser: nothing is trained by gradients."""
        return None

    def _resolve_classes(self, task: str, labels: Tensor) -> int:
        """The class count of ``task``; without a configured one, max label + 1 (extinction groups)."""
        observed = int(labels.max()) + 1
        n_classes = self.num_classes.setdefault(task, observed)
        if observed > n_classes:
            raise InputError(f"train_batches[{task!r}]", f"label {observed - 1} outside 0..{n_classes - 1}")
        return n_classes

    def _require(self, task: str) -> None:
        """Raise if the baseline was not fitted with labels for ``task``."""
        if task not in self.fitted_tasks:
            raise InputError(
                task, f"{type(self).__name__} was not fitted with {task} labels (call fit first)"
            )

    @staticmethod
    def _labels(batch: Mapping[str, Any], task: str, size: int) -> Tensor:
        """Long[B] labels of ``task`` (−1 where absent)."""
        value = batch.get(task)
        if value is None:
            return torch.full((size,), -1, dtype=torch.long)
        return torch.as_tensor(value).reshape(-1).long().cpu()

    @staticmethod
    def _lattice(batch: Mapping[str, Any], size: int) -> Tensor:
        """Float[B, 6] lattices (NaN rows where absent or invalid)."""
        value = batch.get("lattice")
        if value is None:
            return torch.full((size, 6), float("nan"))
        lattice = torch.as_tensor(value).reshape(size, 6).float().cpu().clone()
        lattice[~valid_lattice_rows(lattice)] = float("nan")
        return lattice


class MajorityBaseline(_FittedBaseline):
    """Predicts the training split's most frequent class per task and the median lattice."""

    tasks: ClassVar[tuple[str, ...]] = (*CLASSIFICATION_TASKS, "lattice")

    def __init__(self, num_extinction_groups: int | None = None) -> None:
        super().__init__(num_extinction_groups)
        self.majority_class: dict[str, int] = {}
        self.lattice_median: Tensor | None = None
        self.memory_floats = 0

    def fit(self, train_batches: Iterable[Mapping[str, Any]]) -> MajorityBaseline:
        """Count labels over the batches; returns self."""
        labels: dict[str, list[Tensor]] = {task: [] for task in CLASSIFICATION_TASKS}
        lattices: list[Tensor] = []
        for batch in train_batches:
            size = int(torch.as_tensor(batch["pattern"]).shape[0])
            for task in CLASSIFICATION_TASKS:
                labels[task].append(self._labels(batch, task, size))
            lattices.append(self._lattice(batch, size))
        for task, parts in labels.items():
            values = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
            values = values[values >= 0]
            if values.numel():
                counts = torch.bincount(values, minlength=self._resolve_classes(task, values))
                self.majority_class[task] = int(torch.argmax(counts))  # first maximum = lowest class on ties
                self.fitted_tasks.add(task)
        lattice = torch.cat(lattices) if lattices else torch.empty(0, 6)
        lattice = lattice[torch.isfinite(lattice).all(dim=1)]
        if lattice.numel():
            self.lattice_median = lattice.median(dim=0).values
            self.fitted_tasks.add("lattice")
        if not self.fitted_tasks:
            raise InputError("train_batches", "no labelled samples to fit the majority baseline")
        self.memory_floats = len(self.majority_class) + (6 if self.lattice_median is not None else 0)
        return self

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """One-hot probabilities of the majority class {task: [B, K]} for every fitted classification task."""
        patterns = batch["pattern"]
        size = int(patterns.shape[0])
        result = {}
        for task, label in self.majority_class.items():
            probs = torch.zeros(size, self.num_classes[task], device=patterns.device)
            probs[:, label] = 1.0
            result[task] = probs
        return result

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        """The training median lattice, repeated [B, 6]."""
        patterns = batch["pattern"]
        self._require("lattice")
        assert self.lattice_median is not None
        return self.lattice_median.to(patterns.device).expand(int(patterns.shape[0]), 6).clone()

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """Not available: the majority baseline does not serve retrieval."""
        raise NotImplementedError("MajorityBaseline has no pattern embedding")


class ChanceBaseline(MajorityBaseline):
    """The level of a method that has learned nothing: uniform class probabilities, one identical embedding for
    every pattern (and hence every candidate), and the training median lattice.

    Scored through the same tasks as every method, it lands exactly on the analytic chance values: 100/C %
    accuracy (ties are broken uniformly at random in expectation), and for retrieval the expectation of a
    uniformly random ranking (``uniform_random/…``; ``element_random/…`` with the pre-screen). A method that
    collapses to constant outputs therefore scores chance, never 100 %.
    """

    tasks: ClassVar[tuple[str, ...]] = (*CLASSIFICATION_TASKS, "lattice", "retrieval")

    def __init__(self, num_extinction_groups: int | None = None) -> None:
        if num_extinction_groups is None:
            from pxrdbench.symmetry.extinction import n_extinction_groups

            num_extinction_groups = int(n_extinction_groups())
        super().__init__(num_extinction_groups)

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """Uniform probabilities 1/K {task: [B, K]} for every classification task."""
        patterns = batch["pattern"]
        size = int(patterns.shape[0])
        return {
            task: torch.full(
                (size, self.num_classes[task]), 1.0 / self.num_classes[task], device=patterns.device
            )
            for task in CLASSIFICATION_TASKS
            if task in self.num_classes
        }

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """The same unit vector [B, 2] for every pattern: every candidate ties with every other."""
        patterns = batch["pattern"]
        size = int(patterns.shape[0])
        return torch.full((size, 2), 2.0**-0.5, device=patterns.device)


class PatternNNBaseline(_FittedBaseline):
    """Nearest training pattern by cosine similarity of pooled, L2-normalised raw patterns.

    Args:
        pool_length: bins after average pooling (None = keep the full grid).
        chunk_size: bank rows (and query rows) per similarity block, bounding memory to chunk² floats.
        num_extinction_groups: class count of the extinction-group task (default: inferred from labels).
    """

    tasks: ClassVar[tuple[str, ...]] = (*CLASSIFICATION_TASKS, "lattice", "retrieval")

    def __init__(
        self, pool_length: int | None = 1024, chunk_size: int = 4096, num_extinction_groups: int | None = None
    ) -> None:
        super().__init__(num_extinction_groups)
        if pool_length is not None and pool_length < 1:
            raise InputError("pool_length", f"must be positive or None, got {pool_length}")
        self.pool_length = pool_length
        self.chunk_size = int(chunk_size)
        self.bank = torch.empty(0, 0)
        self.labels: dict[str, Tensor] = {}
        self.lattices = torch.empty(0, 6)

    @property
    def memory_floats(self) -> int:
        """Floats held in the pattern bank (the baseline's 'model size')."""
        return int(self.bank.numel())

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """Pooled (to ``pool_length``) and L2-normalised patterns [B, L] of a batch's ``pattern``."""
        return self.pool(batch["pattern"])

    def pool(self, patterns: Tensor) -> Tensor:
        """Pooled (to ``pool_length``) and L2-normalised patterns [B, L]."""
        patterns = torch.as_tensor(patterns).float()
        if patterns.ndim != 2:
            raise InputError("patterns", f"expected [B, N], got shape {tuple(patterns.shape)}")
        if self.pool_length is not None and patterns.shape[1] > self.pool_length:
            patterns = F.adaptive_avg_pool1d(patterns.unsqueeze(1), self.pool_length).squeeze(1)
        return F.normalize(patterns, dim=-1)

    def fit(self, train_batches: Iterable[Mapping[str, Any]]) -> PatternNNBaseline:
        """Store the embedded training patterns with their labels; returns self."""
        bank, lattices = [], []
        labels: dict[str, list[Tensor]] = {task: [] for task in CLASSIFICATION_TASKS}
        for batch in train_batches:
            patterns = torch.as_tensor(batch["pattern"]).float()
            if "pattern_mask" in batch:
                patterns = patterns * torch.as_tensor(batch["pattern_mask"]).to(patterns.dtype)
            size = int(patterns.shape[0])
            bank.append(self.pool(patterns).cpu())
            for task in CLASSIFICATION_TASKS:
                labels[task].append(self._labels(batch, task, size))
            lattices.append(self._lattice(batch, size))
        if not bank:
            raise InputError("train_batches", "no batches to fit the pattern nearest-neighbour baseline")
        self.bank = torch.cat(bank)
        self.lattices = torch.cat(lattices)
        self.labels = {task: torch.cat(parts) for task, parts in labels.items()}
        self.fitted_tasks = {"retrieval"}
        for task, values in self.labels.items():
            if (values >= 0).any():
                self._resolve_classes(task, values[values >= 0])
                self.fitted_tasks.add(task)
        if torch.isfinite(self.lattices).all(dim=1).any():
            self.fitted_tasks.add("lattice")
        return self

    def nearest(
        self, patterns: Tensor, k: int = 1, candidates: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Top-k cosine similarities and bank indices [B, k], chunked (``candidates``: Bool[M] allowed)."""
        if self.bank.numel() == 0:
            raise InputError("patterns", "PatternNNBaseline is not fitted (call fit first)")
        queries = self.pool(patterns).to(self.bank.device)
        k = min(k, self.bank.shape[0])
        scores, indices = [], []
        for q_start in range(0, queries.shape[0], self.chunk_size):
            query = queries[q_start : q_start + self.chunk_size]
            best = torch.full((query.shape[0], 0), float("-inf"), device=query.device)
            best_index = torch.empty((query.shape[0], 0), dtype=torch.long, device=query.device)
            for start in range(0, self.bank.shape[0], self.chunk_size):
                block = query @ self.bank[start : start + self.chunk_size].T
                if candidates is not None:
                    block[:, ~candidates[start : start + self.chunk_size].to(block.device)] = float("-inf")
                top, where = block.topk(min(k, block.shape[1]), dim=1)
                merged = torch.cat([best, top], dim=1)
                merged_index = torch.cat([best_index, where + start], dim=1)
                best, order = merged.topk(min(k, merged.shape[1]), dim=1)
                best_index = merged_index.gather(1, order)
            scores.append(best)
            indices.append(best_index)
        return torch.cat(scores), torch.cat(indices)

    def _nearest_labelled(self, patterns: Tensor, valid: Tensor) -> Tensor:
        """Index [B] of the most similar bank pattern among rows where ``valid`` is True."""
        return self.nearest(patterns, k=1, candidates=None if bool(valid.all()) else valid)[1][:, 0].cpu()

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        """One-hot probabilities of the nearest labelled neighbour's class {task: [B, K]}."""
        patterns = batch["pattern"]
        result = {}
        shared: Tensor | None = None
        for task in CLASSIFICATION_TASKS:
            if task not in self.fitted_tasks:
                continue
            labels = self.labels[task]
            valid = labels >= 0
            if bool(valid.all()):
                shared = self._nearest_labelled(patterns, valid) if shared is None else shared
                index = shared
            else:
                index = self._nearest_labelled(patterns, valid)
            result[task] = F.one_hot(labels[index], self.num_classes[task]).float().to(patterns.device)
        return result

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        """Lattice [B, 6] of the nearest neighbour with a known lattice."""
        patterns = batch["pattern"]
        self._require("lattice")
        valid = torch.isfinite(self.lattices).all(dim=1)
        return self.lattices[self._nearest_labelled(patterns, valid)].to(patterns.device)
