"""The RRUFF ↔ training-split overlap of the ``experimental_rruff908`` task.

AMCSD, the default training data, is the RRUFF project's own structure database: most
RRUFF minerals have a structure in the AMCSD training split, so this task measures the transfer from simulated
to measured patterns of largely *seen* minerals, not generalisation to unseen ones (a lookup over training
patterns, ``pattern_nn``, scores about as well here as on the held-out simulated test split). The file carries no
RRUFF ids, names or cells, so an overlap-free subset cannot be built from it. The overlap is measured instead,
method-independently, in the data module's view (:func:`training_overlap`):

- the **max train similarity** of a pattern: its highest cosine similarity to any training-split simulated
  pattern, both as dense patterns of the view (the training patterns rendered with the evaluation pipeline and
  the data module's seed, exactly the bank ``pattern_nn`` is fitted on), average-pooled to
  :data:`OVERLAP_POOL_LENGTH` bins like ``pattern_nn``, over the bins the measured pattern covers (bins outside
  its measured range, which the conversion masks, count for neither side). Every view renders a dense pattern
  (a view needs exactly one ``Render`` step; peak tokens are picked from that pattern), so no fallback view is
  needed. The held-out simulated **test** split is measured the same way, as the reference of "structures
  absent from the training split" (AMCSD is split by (formula, space group) group, so a pressure/temperature
  series stays in one split). In a view whose evaluation pipeline adds noise (``alphadiffract``: Poisson +
  Gaussian noise, min-max normalised) simulated patterns share a noise floor that inflates their mutual
  similarity (the test split's median is 0.97 there), so the reference compares with RRUFF only in noise-free
  views (``xccp_dual``, ``difcon``).
- a pattern counts as **low overlap** when its max train similarity is below :data:`OVERLAP_THRESHOLD`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pxrdbench.tasks.base import Block

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor

BATCH = 64
"""Measured patterns per batch."""
OVERLAP_THRESHOLD = 0.7
"""Max train similarity below which a pattern counts as low overlap (``low_overlap/…``).

A fixed value, so that subsets compare between runs, chosen from the distributions measured on the full AMCSD
cache (7,404 training structures, seed 0) in three views (docs/METHODS.md, "RRUFF ↔ AMCSD overlap"):

- it is the median max train similarity of the held-out simulated test split (structures absent from the
  training split) in the noise-free Cu Kα view ``xccp_dual`` (0.69): a pattern below it is no closer to the
  training set than a typical unseen structure's clean simulated pattern;
- below it a lookup over training patterns largely stops working on RRUFF: the nearest training pattern's
  crystal system / space group is right for 24 / 13 % (``alphadiffract``), 35 / 17 % (``xccp_dual``),
  39 / 23 % (``difcon``) of the patterns below, against 48 / 37 %, 80 / 70 %, 89 / 82 % at or above;
- it keeps 45–67 % of the 454 patterns (204, 235, 305 in those views) in the subset, enough for intervals.

A higher value such as 0.9 leaves 93–100 % of RRUFF "low overlap" in every view and separates nothing. The
measure is indirect: a measured pattern of a seen mineral can fall below the threshold (preferred orientation,
impurities, another pressure or temperature) and an unseen mineral isostructural with a training one can lie
above it, so ``low_overlap`` means "no training pattern closely resembles it", not "an unseen mineral".
"""
OVERLAP_POOL_LENGTH = 1024
"""Bins the dense patterns are average-pooled to before the cosine (``pattern_nn``'s default ``pool_length``):
the similarity is the one a nearest-neighbour lookup over training patterns acts on."""
OVERLAP_CHUNK = 4096
"""Query rows and training rows per similarity block (a few ``OVERLAP_CHUNK²`` floats each). The training
patterns are streamed, never held all at once; only the pooled queries (the scored RRUFF patterns and the test
split, ``OVERLAP_POOL_LENGTH`` floats each) are kept."""
OVERLAP_BINS = 20
"""Bins of the stored histogram of max train similarities, equal widths on [0, 1]."""
SIMILARITY_PREFIX = "overlap/max_train_similarity/"
"""Key prefix of the RRUFF patterns' max-train-similarity entries."""
REFERENCE_PREFIX = "overlap/reference_test/max_train_similarity/"
"""Key prefix of the same entries for the held-out simulated test split."""
LOW_OVERLAP_PREFIX = "low_overlap/"
"""Key prefix of the classification blocks restricted to the low-overlap patterns."""


def histogram_key(prefix: str, k: int) -> str:
    """``<prefix>histogram/bin_<kk>/count``: the count of similarities in [k/B, (k+1)/B) (B = OVERLAP_BINS)."""
    return f"{prefix}histogram/bin_{k:02d}/count"


def pool_patterns(
    patterns: Tensor, masks: Tensor | None = None, pool_length: int | None = OVERLAP_POOL_LENGTH
) -> tuple[Tensor, Tensor]:
    """Patterns [B, N] average-pooled to ``pool_length`` bins (as ``pattern_nn``; kept when N ≤ pool_length),
    zero outside the valid bins, and the valid bins as a float 0/1 matrix (a bin is valid when every point it
    averages is unmasked; ``masks`` None: all valid)."""
    import torch
    import torch.nn.functional as F

    patterns = torch.as_tensor(patterns).float()
    valid = torch.ones_like(patterns) if masks is None else torch.as_tensor(masks).to(patterns)
    patterns = patterns * valid
    if pool_length is not None and patterns.shape[1] > pool_length:
        patterns = F.adaptive_avg_pool1d(patterns.unsqueeze(1), pool_length).squeeze(1)
        valid = (F.adaptive_avg_pool1d(valid.unsqueeze(1), pool_length).squeeze(1) > 1.0 - 1e-6).float()
    return patterns * valid, valid


def max_pooled_similarity(
    queries: Tensor, valid: Tensor, references: Iterable[Tensor], *, chunk_size: int = OVERLAP_CHUNK
) -> Tensor:
    """Highest cosine similarity [Q] of each pooled query to any pooled reference row, over the query's valid
    bins: q·r / (‖q‖ ‖r restricted to the valid bins‖); 0 where either side is all zero.

    ``references`` is streamed (any batch sizes; each is split into blocks of at most ``chunk_size`` rows, and
    the queries likewise), so memory stays within a few ``chunk_size²`` floats. Raises InputError when there
    is no reference row.
    """
    import torch

    from pxrdbench.errors import InputError

    q_norm = queries.norm(dim=1)
    best = torch.full((queries.shape[0],), float("-inf"), device=queries.device)
    seen = 0
    for batch in references:
        batch = torch.as_tensor(batch).float().to(queries.device)
        for r_start in range(0, batch.shape[0], chunk_size):
            block = batch[r_start : r_start + chunk_size]
            squared = (block * block).T
            seen += block.shape[0]
            for q_start in range(0, queries.shape[0], chunk_size):
                rows = slice(q_start, q_start + chunk_size)
                dots = queries[rows] @ block.T
                norms = q_norm[rows, None] * (valid[rows] @ squared).clamp_min(0.0).sqrt()
                sims = torch.where(norms > 0, dots / norms.clamp_min(1e-30), torch.zeros_like(dots))
                best[rows] = torch.maximum(best[rows], sims.amax(dim=1))
    if seen == 0:
        raise InputError("references", "no reference patterns to compare with")
    return best


def max_similarity(
    queries: Tensor,
    references: Iterable[Tensor] | Tensor,
    *,
    query_masks: Tensor | None = None,
    chunk_size: int = OVERLAP_CHUNK,
    pool_length: int | None = OVERLAP_POOL_LENGTH,
) -> np.ndarray:
    """Each query pattern's highest cosine similarity to any reference pattern (float64 [Q]), both pooled with
    :func:`pool_patterns`; ``references``: one [M, N] tensor or an iterable of [B, N] batches (streamed)."""
    import torch

    pooled, valid = pool_patterns(queries, query_masks, pool_length)
    batches = [references] if torch.is_tensor(references) else references
    refs = (pool_patterns(batch, None, pool_length)[0] for batch in batches)
    return max_pooled_similarity(pooled, valid, refs, chunk_size=chunk_size).double().cpu().numpy()


@dataclass(frozen=True)
class Overlap:
    """Max train similarities of the scored RRUFF patterns and of the held-out simulated test split.

    Attributes:
        rruff: (n,) one per scored RRUFF pattern, in file order.
        reference: (n_test,) one per test-split structure (None when the split is empty).
        n_train: training patterns compared with.
    """

    rruff: np.ndarray
    reference: np.ndarray | None
    n_train: int


def _masked(batch: dict[str, Any]) -> Tensor:
    """A rendered batch's ``pattern`` times its ``pattern_mask`` (as ``pattern_nn``'s bank)."""
    pattern = batch["pattern"].float()
    return pattern * batch["pattern_mask"].to(pattern) if "pattern_mask" in batch else pattern


def training_overlap(dm: Any, arrays: Any, n: int, *, device: str = "cpu") -> Overlap | None:
    """The max train similarities (see the module docstring) of the first ``n`` RRUFF patterns and of the test
    split, in ``dm``'s view; None when ``dm`` has no (or an empty) training split.

    One streamed pass over the training split's evaluation renderings (``dm.seed``, no peak tokens, no graphs);
    the RRUFF patterns are converted with :func:`~pxrdbench.tasks.render.measured_batch`.
    """
    import torch

    from pxrdbench.tasks.render import measured_batch, render_rows

    if not callable(getattr(dm, "split_dataset", None)):
        return None
    if dm.cache is None:
        dm.setup()
    train_rows = dm.cache.split_indices("train")
    if len(train_rows) == 0:
        return None
    pooled: list[Tensor] = []
    valid: list[Tensor] = []
    with torch.no_grad():
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            batch = measured_batch(dm.view, arrays.two_theta, arrays.intensity[start:stop], arrays.wavelength)
            p, v = pool_patterns(batch["pattern"].to(device), batch["pattern_mask"].to(device))
            pooled.append(p)
            valid.append(v)
        test_rows = dm.cache.split_indices("test")
        for batch in render_rows(dm, test_rows, seed=dm.seed, graphs=False, peak_tokens=False, device=device):
            p, v = pool_patterns(_masked(batch))
            pooled.append(p)
            valid.append(v)
        n_train = 0

        def references() -> Iterator[Tensor]:
            nonlocal n_train
            for batch in render_rows(
                dm, train_rows, seed=dm.seed, graphs=False, peak_tokens=False, device=device
            ):
                n_train += int(batch["pattern"].shape[0])
                yield pool_patterns(_masked(batch))[0]

        if not pooled:
            return None
        best = max_pooled_similarity(torch.cat(pooled), torch.cat(valid), references())
    best = best.double().cpu().numpy()
    return Overlap(best[:n], best[n:] if len(test_rows) else None, n_train)


def item_bootstrap_ci(
    values: np.ndarray, statistic: Any, *, n_boot: int, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile item-bootstrap interval of ``statistic(resample, axis=1)`` (``np.median``, ``np.mean``): the
    measured patterns carry no ids, so each is its own resampling unit. Resampled in chunks of at most a few
    million indices."""
    import numpy as np

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    rng = np.random.default_rng(seed)
    chunk = max(1, 4_000_000 // n)
    replicates = np.concatenate(
        [
            statistic(values[rng.integers(0, n, size=(min(chunk, n_boot - start), n))], axis=1)
            for start in range(0, n_boot, chunk)
        ]
    )
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def similarity_block(
    similarity: np.ndarray, prefix: str, *, threshold: float, n_boot: int, intervals: bool = True
) -> Block:
    """``<prefix>median``, ``<prefix>share_above_threshold`` (% ≥ threshold), ``<prefix>threshold`` and the
    :data:`OVERLAP_BINS`-bin histogram ``<prefix>histogram/bin_XX/count``; with ``intervals``, the median and
    the share carry item-bootstrap 95 % intervals (leave them out for items that are not independent, such as
    the test split's mineral series)."""
    import numpy as np

    from pxrdbench.tasks.metrics.bootstrap import metric_entry

    values = np.asarray(similarity, dtype=np.float64)
    n = len(values)
    if n == 0:
        return {}
    above = 100.0 * (values >= threshold)
    counts, _ = np.histogram(np.clip(values, 0.0, 1.0), bins=OVERLAP_BINS, range=(0.0, 1.0))
    median_ci = item_bootstrap_ci(values, np.median, n_boot=n_boot) if intervals else None
    share_ci = item_bootstrap_ci(above, np.mean, n_boot=n_boot) if intervals else None
    out: Block = {
        f"{prefix}median": metric_entry(float(np.median(values)), n, ci95=median_ci),
        f"{prefix}share_above_threshold": metric_entry(float(above.mean()), n, ci95=share_ci),
        f"{prefix}threshold": metric_entry(threshold, n),
    }
    out.update({histogram_key(prefix, k): metric_entry(int(c), n) for k, c in enumerate(counts)})
    return out


def overlap_block(overlap: Overlap, *, threshold: float = OVERLAP_THRESHOLD, n_boot: int) -> Block:
    """The ``overlap/…`` entries of the RRUFF patterns (with intervals) and of the test-split reference (point
    values: its items come in correlated mineral series)."""
    out = similarity_block(overlap.rruff, SIMILARITY_PREFIX, threshold=threshold, n_boot=n_boot)
    if overlap.reference is not None:
        reference = similarity_block(
            overlap.reference, REFERENCE_PREFIX, threshold=threshold, n_boot=n_boot, intervals=False
        )
        out.update({k: v for k, v in reference.items() if not k.endswith("/threshold")})
    return out
