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

Truth: a query's own structure and its exact within-source duplicates (``cache.duplicate_sets()``, see
:mod:`pxrdbench.data.duplicates`) are all correct answers. Ties never favour the truth: every rank metric is
the expectation under uniformly random tie-breaking (:class:`~pxrdbench.tasks.metrics.retrieval.RankCounts`),
so a model whose embeddings are all equal scores exactly ``uniform_random``.

Metrics (task ``retrieval``): ``top1/3/5/10``, ``mean_rank``, ``median_rank``; ``prescreen/…`` with XCCP's
element pre-screen (candidates whose element set equals the query's); the exact expectations of random
rankings, ``uniform_random/{top*, mean_rank}`` over the whole pool (top-1 = 100·mean_q |T_q| / N) and
``element_random/{top*, mean_rank}`` among the same-element-set candidates;
``space_group_via_top1/accuracy`` (space group of the top-1 candidate, tie-aware; also under ``prescreen/``);
the open-set test ``in_pool/*`` / ``removed/*`` on the queries whose truth is strictly first without
pre-screen in the test pool (as in XCCP); the same metrics with ``fullpool/`` and ``fullpool_prescreen/`` for
the ``all`` pool. Hit rates, mean rank and SG accuracy carry 95 % cluster-bootstrap intervals over the test
split's groups. Robustness: ``<perturbation>/retrieval/{top*, mean_rank, prescreen/top*}`` on the test
pool.
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


def truth_sets(rep: np.ndarray, query_rows: np.ndarray, candidate_rows: np.ndarray) -> tuple[Any, np.ndarray]:
    """(truth callable for :func:`~pxrdbench.tasks.metrics.retrieval.rank_counts`, true candidates per query).

    ``rep``: each cache row's duplicate-set representative (``cache.duplicate_sets()``): a candidate is a
    correct answer for a query when it is the query's structure or an exact within-source duplicate of it.
    """
    import torch

    rep_q = torch.as_tensor(rep[query_rows])
    rep_c = torch.as_tensor(rep[candidate_rows])

    def truth(qs: slice, cs: slice) -> torch.Tensor:
        return rep_q[qs, None] == rep_c[None, cs]

    values, counts = np.unique(rep[candidate_rows], return_counts=True)
    position = np.searchsorted(values, rep[query_rows])
    position = np.clip(position, 0, len(values) - 1)
    n_true = np.where(values[position] == rep[query_rows], counts[position], 0)
    return truth, n_true.astype(np.int64)


def pool_block(
    queries: Tensor,
    candidates: Tensor,
    query_rows: np.ndarray,
    candidate_rows: np.ndarray,
    cache: Any,
    *,
    groups: np.ndarray | None,
    pool: str,
    n_boot: int,
    open_set: bool = False,
) -> Block:
    """All retrieval metrics of one candidate pool (see the module docstring for the keys): tie-aware ranks
    against the truth sets, the analytic random baselines, space group via the top-1, the open-set test."""
    import torch

    from pxrdbench.tasks.blocks import TOP_KS, random_block, rank_block
    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci, metric_entry
    from pxrdbench.tasks.metrics.confidence import open_set_test
    from pxrdbench.tasks.metrics.pools import (
        element_prescreen,
        element_random_baseline,
        random_ranking_per_query,
    )
    from pxrdbench.tasks.metrics.retrieval import rank_counts, same_label, top1_right_share

    plain, screened = POOL_PREFIXES[pool]
    elements = torch.as_tensor(cache.element_multi_hot)
    space_groups = torch.as_tensor(cache.labels["space_group"] + 1)  # 1-based; 0 = unknown
    truth, n_true = truth_sets(cache.duplicate_sets(), query_rows, candidate_rows)
    screen = element_prescreen(elements[query_rows], elements[candidate_rows])
    out: Block = {}
    for prefix, mask in ((plain, None), (screened, screen)):
        counts = rank_counts(queries, candidates, truth=truth, allowed=mask)
        out.update(rank_block(counts, prefix, n_boot=n_boot, groups=groups))
        right = same_label(space_groups[query_rows], space_groups[candidate_rows])
        share = top1_right_share(queries, candidates, right, allowed=mask)
        out[f"{prefix}space_group_via_top1/accuracy"] = mean_with_ci(
            share, scale=100.0, groups=groups, n_boot=n_boot
        )
        if prefix == plain:
            plain_counts = counts
    n_pool = np.full(len(query_rows), len(candidate_rows), dtype=np.int64)
    uniform = random_ranking_per_query(n_pool, n_true, TOP_KS)
    out.update(random_block(uniform, f"{plain}uniform_random/", groups=groups))
    by_elements = element_random_baseline(elements[query_rows], elements[candidate_rows], n_true, TOP_KS)
    out.update(random_block(by_elements, f"{plain}element_random/", groups=groups))
    hits = torch.as_tensor(plain_counts.strictly_first())
    if open_set and int(hits.sum()) > 0 and candidates.shape[0] >= 2:
        true_index = torch.as_tensor(np.searchsorted(candidate_rows, query_rows), device=queries.device)
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
            "element_random/*",
            "uniform_random/*",
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

        setup = self._setup(ctx)
        if setup is None:
            return {}
        cache, test_rows = setup
        try:
            queries = query_embeddings(ctx.method, ctx.datamodule, test_rows, device=ctx.device)
        except NotImplementedError:
            return {}  # no meaningful embedding after all: the method takes no part
        block: Block = {}
        groups = ctx.groups(test_rows)
        for pool in ctx.pools:
            rows = cache.split_indices(pool)
            block.update(
                pool_block(
                    queries,
                    self._candidates(ctx, rows),
                    test_rows,
                    rows,
                    cache,
                    groups=groups,
                    pool=pool,
                    n_boot=ctx.n_boot,
                    open_set=pool == "test",
                )
            )
        return block

    def perturbed(self, ctx: EvalContext, perturbation: str) -> Block:
        """Rank metrics (plain and pre-screened) of perturbed queries against the unperturbed test pool."""
        import torch

        from pxrdbench.tasks.blocks import rank_block
        from pxrdbench.tasks.metrics.pools import element_prescreen
        from pxrdbench.tasks.metrics.retrieval import rank_counts

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
        elements = torch.as_tensor(cache.element_multi_hot)[rows]
        truth, _ = truth_sets(cache.duplicate_sets(), rows, rows)
        groups = ctx.groups(rows)
        plain = rank_counts(queries, candidates, truth=truth)
        screened = rank_counts(
            queries, candidates, truth=truth, allowed=element_prescreen(elements, elements)
        )
        return {
            **rank_block(plain, "", n_boot=ctx.n_boot, groups=groups),
            **rank_block(screened, "prescreen/", n_boot=ctx.n_boot, groups=groups),
        }


RETRIEVAL = RetrievalTask()
