"""The retrieval task of one trained method: test-split patterns as queries against a pool of candidate
structures.

Queries: every test-split structure's pattern, rendered through the data module's view with the evaluation
pipeline (``render_batch(view, batch, train=False, seed=dm.seed)``, or a named perturbation set for
robustness).

Candidates, per pool (``test`` = the test split, as in XCCP's 27,060-structure pool; ``all`` = train + val +
test, reported as ``fullpool/…``):

- methods with ``embed_structures`` (contrastive, e.g. DEN-KAN): the crystal embeddings of the pool's
  structures, from the cached crystal graphs of the kind the data module was built with (``with_graphs``);
- pattern-only methods (any other method whose ``embed`` works, e.g. ``alphadiffract``, ``pattern_nn``): the
  method's embedding of each candidate's simulated reference pattern, rendered through the **same view's
  evaluation pipeline** with the fixed seed ``dm.seed + CANDIDATE_SEED_OFFSET``. A fixed Gaussian FWHM-0.1°
  render would be wrong for views that are not XCCP's; the view's own evaluation profile is what its method
  was trained to read. For a deterministic evaluation pipeline (XCCP's constant FWHM 0.1°) the true
  candidate's reference is then the query pattern itself, i.e. a database of clean simulated references; for a
  pipeline that samples profile parameters the offset makes the reference an independent draw, never the
  query's own rendering. The robustness sets (perturbed queries against the unperturbed references) are where
  such matching is tested.
- methods whose ``embed`` raises ``NotImplementedError`` (e.g. ``majority``) have no meaningful embedding and
  take no part: :func:`evaluate_retrieval` returns an empty dict for them.

Metrics (keys declared in :mod:`pxrdbench.tasks.specs`): ``top1/3/5/10``, ``mean_rank``, ``median_rank``;
``prescreen/…`` with XCCP's element pre-screen (candidates whose element set equals the query's); the exact
element-only random baseline ``element_random/top*``; ``space_group_via_top1/accuracy`` (space group of the
top-1 candidate; also under ``prescreen/``); the open-set test ``in_pool/*`` / ``removed/*`` on the queries
retrieved correctly without pre-screen in the test pool (as in XCCP); the same rank metrics with ``fullpool/``
and ``fullpool_prescreen/`` for the ``all`` pool. Hit rates, mean rank and SG accuracy carry 95 % bootstrap
intervals over queries. Robustness: ``<perturbation>/retrieval/{top*, mean_rank, prescreen/top*}`` on the test
pool.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures
from pxrdbench.errors import ConfigError
from pxrdbench.tasks.blocks import prefixed
from pxrdbench.tasks.metrics.bootstrap import mean_with_ci, metric_entry
from pxrdbench.tasks.metrics.retrieval import (
    element_prescreen,
    element_random_baseline,
    open_set_test,
    rank_of_true,
    topk_similarities,
)
from pxrdbench.views.render import render_batch

CANDIDATE_SEED_OFFSET = 7919
"""Added to the data module's seed when rendering candidate reference patterns (see the module docstring)."""
TOP_KS = (1, 3, 5, 10)
POOL_PREFIXES = {"test": ("", "prescreen/"), "all": ("fullpool/", "fullpool_prescreen/")}


def _batches(dm: Any, rows: np.ndarray, graph: str | None, device: str) -> Iterator[dict[str, Any]]:
    """Collated batches of cache ``rows`` (in order) with tensors on ``device`` (graphs when ``graph``)."""
    dataset = ReflectionDataset(dm.cache, rows, dm.view.d_min, dm.view.max_peaks, graph)
    loader = DataLoader(dataset, batch_size=dm.batch_size, shuffle=False, collate_fn=collate_structures)
    for batch in loader:
        yield {k: (v.to(device) if torch.is_tensor(v) or k == "graph" else v) for k, v in batch.items()}


@torch.no_grad()
def query_embeddings(
    method: Any, dm: Any, rows: np.ndarray, *, perturbation: str | None = None, device: str = "cpu"
) -> Tensor:
    """Unit pattern embeddings [len(rows), D] of the rows' evaluation renderings (or a perturbation set)."""
    parts = []
    for batch in _batches(dm, rows, None, device):
        rendered = render_batch(dm.view, batch, train=False, seed=dm.seed, perturbation=perturbation)
        parts.append(method.embed(rendered["pattern"].to(device)).float())
    return torch.cat(parts)


@torch.no_grad()
def candidate_embeddings(method: Any, dm: Any, rows: np.ndarray, *, device: str = "cpu") -> Tensor:
    """Unit candidate embeddings [len(rows), D]: crystal embeddings, or embedded reference patterns."""
    parts = []
    if hasattr(method, "embed_structures"):
        if dm.with_graphs is None:
            raise ConfigError(
                f"{type(method).__name__} embeds structures: build the data module with with_graphs "
                "(configs/bench/<model>.yaml: graphs)"
            )
        for batch in _batches(dm, rows, dm.with_graphs, device):
            parts.append(method.embed_structures(batch["graph"]).float())
    else:
        seed = dm.seed + CANDIDATE_SEED_OFFSET
        for batch in _batches(dm, rows, None, device):
            rendered = render_batch(dm.view, batch, train=False, seed=seed)
            parts.append(method.embed(rendered["pattern"].to(device)).float())
    return torch.cat(parts)


def rank_block(ranks: Tensor, prefix: str, *, n_boot: int) -> dict[str, dict[str, Any]]:
    """``{prefix}top{k}`` (%), ``{prefix}mean_rank`` with bootstrap CIs and ``{prefix}median_rank``."""
    r = ranks.detach().cpu().numpy().astype(np.float64)
    out = {f"{prefix}top{k}": mean_with_ci(r <= k, scale=100.0, n_boot=n_boot) for k in TOP_KS}
    out[f"{prefix}mean_rank"] = mean_with_ci(r, n_boot=n_boot)
    out[f"{prefix}median_rank"] = metric_entry(float(np.median(r)), len(r))
    return out


def pool_block(
    queries: Tensor,
    candidates: Tensor,
    true_index: Tensor,
    query_elements: Tensor,
    candidate_elements: Tensor,
    query_sg: Tensor,
    candidate_sg: Tensor,
    *,
    pool: str,
    n_boot: int,
    open_set: bool = False,
) -> dict[str, dict[str, Any]]:
    """All retrieval metrics of one candidate pool (see the module docstring for the keys)."""
    plain, screened = POOL_PREFIXES[pool]
    screen = element_prescreen(query_elements, candidate_elements)
    ranks = rank_of_true(queries, candidates, true_index)
    screened_ranks = rank_of_true(queries, candidates, true_index, allowed=screen)
    out = {**rank_block(ranks, plain, n_boot=n_boot), **rank_block(screened_ranks, screened, n_boot=n_boot)}
    n = int(queries.shape[0])
    baseline = element_random_baseline(query_elements, candidate_elements, true_index, TOP_KS)
    out.update({f"{plain}element_random/{key}": metric_entry(value, n) for key, value in baseline.items()})
    for prefix, mask in ((plain, None), (screened, screen)):
        top1 = topk_similarities(queries, candidates, 1, candidate_mask=mask)[1][:, 0].cpu()
        predicted = torch.where(top1 >= 0, candidate_sg[top1.clamp(min=0)], torch.full_like(top1, -1))
        correct = (predicted == query_sg).double().numpy()
        out[f"{prefix}space_group_via_top1/accuracy"] = mean_with_ci(correct, scale=100.0, n_boot=n_boot)
    hits = ranks == 1
    if open_set and int(hits.sum()) > 0 and candidates.shape[0] >= 2:
        stats = open_set_test(queries[hits], candidates, true_index[hits])
        n_hits = int(stats.pop("n"))
        out.update({key: metric_entry(float(value), n_hits) for key, value in stats.items()})
    return out


def evaluate_retrieval(
    method: Any,
    dm: Any,
    *,
    n_boot: int,
    pools: Sequence[str] = ("test", "all"),
    perturbations: Sequence[str] = (),
    device: str = "cpu",
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"retrieval": block, "robustness": {"<pert>/retrieval/<metric>": …}}``; {} if it cannot embed.

    ``pools``: any of ``test`` and ``all``; ``perturbations``: names of :data:`~pxrdbench.views.augment.
    PERTURBATION_SETS` rendered for the queries (candidates stay unperturbed).
    """
    unknown = set(pools) - set(POOL_PREFIXES)
    if unknown:
        raise ConfigError(f"retrieval pools {sorted(unknown)}: use any of {sorted(POOL_PREFIXES)}")
    if dm.cache is None:
        dm.setup()
    if isinstance(method, torch.nn.Module):
        method.to(device).eval()
    cache = dm.cache
    test_rows = cache.split_indices("test")
    if len(test_rows) == 0 or not pools:
        return {}
    try:
        queries = query_embeddings(method, dm, test_rows, device=device)
    except NotImplementedError:
        return {}  # no meaningful embedding (e.g. the majority baseline): the method takes no part
    pool_rows = {pool: cache.split_indices(pool) for pool in pools}
    needed = np.unique(np.concatenate(list(pool_rows.values())))
    embedded = candidate_embeddings(method, dm, needed, device=device)
    elements = torch.as_tensor(cache.element_multi_hot)
    space_groups = torch.as_tensor(cache.labels["space_group"] + 1)  # 1-based; 0 = unknown never matches
    query_elements, query_sg = elements[test_rows], space_groups[test_rows]
    block: dict[str, dict[str, Any]] = {}
    for pool, rows in pool_rows.items():
        true_index = torch.as_tensor(np.searchsorted(rows, test_rows), device=queries.device)
        candidates = embedded[torch.as_tensor(np.searchsorted(needed, rows), device=embedded.device)]
        pool_metrics = pool_block(
            queries, candidates, true_index, query_elements, elements[rows], query_sg, space_groups[rows],
            pool=pool, n_boot=n_boot, open_set=pool == "test",
        )  # fmt: skip
        block.update(pool_metrics)
    robustness: dict[str, dict[str, Any]] = {}
    if perturbations:
        rows = test_rows
        candidates = embedded[torch.as_tensor(np.searchsorted(needed, rows), device=embedded.device)]
        true_index = torch.arange(len(rows), device=queries.device)
        screen = element_prescreen(query_elements, query_elements)
        for name in perturbations:
            perturbed = query_embeddings(method, dm, rows, perturbation=name, device=device)
            ranks = rank_of_true(perturbed, candidates, true_index)
            screened = rank_of_true(perturbed, candidates, true_index, allowed=screen)
            metrics = {
                **rank_block(ranks, "", n_boot=n_boot),
                **rank_block(screened, "prescreen/", n_boot=n_boot),
            }
            robustness.update(prefixed(f"{name}/retrieval", metrics))
    out = {"retrieval": block}
    if robustness:
        out["robustness"] = robustness
    return out


def merge_retrieval(metrics: dict[str, dict[str, Any]], retrieval: dict[str, dict[str, Any]]) -> None:
    """Add :func:`evaluate_retrieval`'s blocks to a results ``metrics`` dict in place (robustness merged)."""
    if retrieval.get("retrieval"):
        metrics["retrieval"] = retrieval["retrieval"]
    if retrieval.get("robustness"):
        metrics.setdefault("robustness", {}).update(retrieval["robustness"])
