"""The retrieval task: test-split patterns as queries against a pool of candidate structures.

Queries: every test-split structure's pattern, rendered through the data module's view with the evaluation
pipeline (``render_batch(view, batch, train=False, seed=dm.seed)``, or a named perturbation set for
robustness).

Candidates, per pool (``test`` = the test split, as in XCCP's 27,060-structure pool; ``all`` = train + val +
test, reported as ``fullpool/…``):

- methods with ``embed_structures`` (contrastive, e.g. DEN-KAN): the crystal embeddings of the pool's
  structures, from the cached crystal graphs of the kind the data module was built with (``with_graphs``);
- pattern-only methods (any other method with a pattern embedding, e.g. ``alphadiffract``, ``pattern_nn``):
  the method's embedding of each candidate's simulated reference pattern, rendered through the **same view's
  evaluation pipeline** with the fixed seed ``dm.seed + CANDIDATE_SEED_OFFSET``. For a deterministic
  evaluation pipeline (XCCP's constant FWHM 0.1°) the true candidate's reference is then the query pattern
  itself, i.e. a database of clean simulated references; for a pipeline that samples profile parameters the
  offset makes the reference an independent draw. The robustness sets (perturbed queries against the
  unperturbed references) are where such matching is tested.
- methods without a pattern embedding (e.g. ``majority``) are not served.

Metrics (task ``retrieval``): ``top1/3/5/10``, ``mean_rank``, ``median_rank``; ``prescreen/…`` with XCCP's
element pre-screen (candidates whose element set equals the query's); the exact element-only random baseline
``element_random/top*``; ``space_group_via_top1/accuracy`` (space group of the top-1 candidate; also under
``prescreen/``); the open-set test ``in_pool/*`` / ``removed/*`` on the queries retrieved correctly without
pre-screen in the test pool (as in XCCP); the same rank metrics with ``fullpool/`` and
``fullpool_prescreen/`` for the ``all`` pool. Hit rates, mean rank and SG accuracy carry 95 % bootstrap
intervals over queries. Robustness: ``<perturbation>/retrieval/{top*, mean_rank, prescreen/top*}`` on the
test pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pxrdbench.errors import ConfigError
from pxrdbench.tasks.base import Block, EvalContext, PerturbableTask, TaskSpec, declares

if TYPE_CHECKING:
    from torch import Tensor

CANDIDATE_SEED_OFFSET = 7919
"""Added to the data module's seed when rendering candidate reference patterns (see the module docstring)."""
POOL_PREFIXES = {"test": ("", "prescreen/"), "all": ("fullpool/", "fullpool_prescreen/")}


def query_embeddings(
    method: Any, dm: Any, rows: np.ndarray, *, perturbation: str | None = None, device: str = "cpu"
) -> Tensor:
    """Unit pattern embeddings [len(rows), D] of the rows' evaluation renderings (or a perturbation set)."""
    import torch

    from pxrdbench.tasks.render import render_rows

    batches = render_rows(dm, rows, seed=dm.seed, perturbation=perturbation, graphs=False, device=device)
    with torch.no_grad():
        return torch.cat([method.embed(batch).float() for batch in batches])


def candidate_embeddings(method: Any, dm: Any, rows: np.ndarray, *, device: str = "cpu") -> Tensor:
    """Unit candidate embeddings [len(rows), D]: crystal embeddings, or embedded reference patterns."""
    import torch

    from pxrdbench.tasks.render import render_rows, to_device

    with torch.no_grad():
        if not hasattr(method, "embed_structures"):
            seed = dm.seed + CANDIDATE_SEED_OFFSET
            batches = render_rows(dm, rows, seed=seed, graphs=False, device=device)
            return torch.cat([method.embed(batch).float() for batch in batches])
        if dm.with_graphs is None:
            raise ConfigError(
                f"{type(method).__name__} embeds structures: build the data module with with_graphs "
                "(the method's data_requirements().graphs)"
            )
        from torch.utils.data import DataLoader

        from pxrdbench.data.torch_dataset import ReflectionDataset, collate_structures

        dataset = ReflectionDataset(dm.cache, rows, dm.view.d_min, dm.view.max_peaks, dm.with_graphs)
        loader = DataLoader(dataset, batch_size=dm.batch_size, shuffle=False, collate_fn=collate_structures)
        return torch.cat([method.embed_structures(to_device(b, device)).float() for b in loader])


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
) -> Block:
    """All retrieval metrics of one candidate pool (see the module docstring for the keys)."""
    from pxrdbench.tasks.blocks import TOP_KS, rank_block
    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci, metric_entry
    from pxrdbench.tasks.metrics.confidence import open_set_test
    from pxrdbench.tasks.metrics.retrieval import (
        element_prescreen,
        element_random_baseline,
        rank_of_true,
        space_group_via_retrieval,
        topk_similarities,
    )

    plain, screened = POOL_PREFIXES[pool]
    screen = element_prescreen(query_elements, candidate_elements)
    ranks = rank_of_true(queries, candidates, true_index)
    screened_ranks = rank_of_true(queries, candidates, true_index, allowed=screen)
    out = {**rank_block(ranks, plain, n_boot=n_boot), **rank_block(screened_ranks, screened, n_boot=n_boot)}
    n = int(queries.shape[0])
    baseline = element_random_baseline(query_elements, candidate_elements, true_index, TOP_KS)
    out.update({f"{plain}element_random/{key}": metric_entry(value, n) for key, value in baseline.items()})
    for prefix, mask in ((plain, None), (screened, screen)):
        top1 = topk_similarities(queries, candidates, 1, candidate_mask=mask)[1][:, 0]
        correct = space_group_via_retrieval(top1, candidate_sg, query_sg)
        out[f"{prefix}space_group_via_top1/accuracy"] = mean_with_ci(correct, scale=100.0, n_boot=n_boot)
    hits = ranks == 1
    if open_set and int(hits.sum()) > 0 and candidates.shape[0] >= 2:
        stats = open_set_test(queries[hits], candidates, true_index[hits])
        n_hits = int(stats.pop("n"))
        out.update({key: metric_entry(float(value), n_hits) for key, value in stats.items()})
    return out


class RetrievalTask(PerturbableTask):
    """Structure retrieval, for methods that declare it or have a pattern embedding."""

    spec = TaskSpec(
        "retrieval",
        "structure retrieval: pattern embedding vs candidate-structure embeddings (cosine)",
        ("patterns", "candidates", "true_index", "element_sets", "space_group_labels"),
        (
            "top*",
            "*rank",
            "prescreen/*",
            "fullpool/*",
            "fullpool_prescreen/*",
            "element_random/top*",
            "space_group_via_top1/accuracy",
            "prescreen/space_group_via_top1/accuracy",
            "in_pool/*",
            "removed/*",
        ),
        ("top1", "prescreen/top1"),
    )

    def serves(self, method: Any) -> bool:
        """The method declares retrieval or implements a pattern embedding."""
        return declares(method, "retrieval")

    @staticmethod
    def _setup(ctx: EvalContext) -> tuple[Any, np.ndarray] | None:
        """(cache, test rows), or None when there is nothing to score; checks the pools."""
        unknown = set(ctx.pools) - set(POOL_PREFIXES)
        if unknown:
            raise ConfigError(f"retrieval pools {sorted(unknown)}: use any of {sorted(POOL_PREFIXES)}")
        dm = ctx.datamodule
        if dm.cache is None:
            dm.setup()
        from pxrdbench.tasks.predict import prepare

        prepare(ctx.method, ctx.device)
        test_rows = dm.cache.split_indices("test")
        return None if len(test_rows) == 0 or not ctx.pools else (dm.cache, test_rows)

    @staticmethod
    def _candidates(ctx: EvalContext, rows: np.ndarray) -> Tensor:
        """Candidate embeddings of ``rows`` (sorted cache rows), from the pools' shared embeddings."""
        import torch

        def build() -> tuple[np.ndarray, Tensor]:
            cache = ctx.datamodule.cache
            needed = np.unique(np.concatenate([cache.split_indices(pool) for pool in ctx.pools]))
            return needed, candidate_embeddings(ctx.method, ctx.datamodule, needed, device=ctx.device)

        needed, embedded = ctx.remember("retrieval/candidates", build)
        return embedded[torch.as_tensor(np.searchsorted(needed, rows), device=embedded.device)]

    def run(self, ctx: EvalContext) -> Block:
        """All pools' metrics; empty when the method turns out to have no embedding."""
        import torch

        setup = self._setup(ctx)
        if setup is None:
            return {}
        cache, test_rows = setup
        try:
            queries = query_embeddings(ctx.method, ctx.datamodule, test_rows, device=ctx.device)
        except NotImplementedError:
            return {}  # no meaningful embedding after all: the method takes no part
        elements = torch.as_tensor(cache.element_multi_hot)
        space_groups = torch.as_tensor(cache.labels["space_group"] + 1)  # 1-based; 0 = unknown
        block: Block = {}
        for pool in ctx.pools:
            rows = cache.split_indices(pool)
            true_index = torch.as_tensor(np.searchsorted(rows, test_rows), device=queries.device)
            block.update(
                pool_block(
                    queries,
                    self._candidates(ctx, rows),
                    true_index,
                    elements[test_rows],
                    elements[rows],
                    space_groups[test_rows],
                    space_groups[rows],
                    pool=pool,
                    n_boot=ctx.n_boot,
                    open_set=pool == "test",
                )  # fmt: skip
            )
        return block

    def perturbed(self, ctx: EvalContext, perturbation: str) -> Block:
        """Rank metrics (plain and pre-screened) of perturbed queries against the unperturbed test pool."""
        import torch

        from pxrdbench.tasks.blocks import rank_block
        from pxrdbench.tasks.metrics.retrieval import element_prescreen, rank_of_true

        setup = self._setup(ctx)
        if setup is None:
            return {}
        cache, rows = setup
        try:
            queries = query_embeddings(
                ctx.method, ctx.datamodule, rows, perturbation=perturbation, device=ctx.device
            )
        except NotImplementedError:
            return {}
        candidates = self._candidates(ctx, rows)
        true_index = torch.arange(len(rows), device=queries.device)
        elements = torch.as_tensor(cache.element_multi_hot)[rows]
        screen = element_prescreen(elements, elements)
        ranks = rank_of_true(queries, candidates, true_index)
        screened = rank_of_true(queries, candidates, true_index, allowed=screen)
        return {
            **rank_block(ranks, "", n_boot=ctx.n_boot),
            **rank_block(screened, "prescreen/", n_boot=ctx.n_boot),
        }


RETRIEVAL = RetrievalTask()
