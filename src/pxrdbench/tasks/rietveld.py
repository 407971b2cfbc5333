"""Experimental structure retrieval: measured Rietveld patterns (powder CIFs) as queries, their own refined
structures hidden among the dataset's test-split candidates.

Queries: every pattern of every ``*.cif`` in a folder (default ``experimental/pdcif15`` under the data roots),
converted into the method's view exactly as any measured pattern is (Bragg re-mapping to the view's wavelength,
resampling onto its grid with the unmeasured part masked, the view's normalisation; no background subtraction).
A query's true structures are the phases refined in its file: one, or several for a multi-phase file, where a
hit on any of them counts.

Candidates: the test split of the dataset plus the hidden structures of *all* queries (so they are distractors
for each other too). A hidden structure goes through the cache's own processing
(:func:`pxrdbench.data.entry.process_entry` with the cache's build parameters, :mod:`pxrdbench.tasks.
rietveld_queries`) and then through the same embedding path as a cached candidate (:mod:`pxrdbench.tasks.retrieval`): crystal
embeddings for contrastive methods, the method's embedding of the reference pattern rendered through the view's
evaluation pipeline (seed ``dm.seed + CANDIDATE_SEED_OFFSET``) for pattern-only methods.

Metrics (task ``experimental_rietveld``): ``top1/3/5/10``, ``mean_rank``, ``median_rank``; the same under
``prescreen/`` (candidates whose element set equals that of one of the query's phases) and the exact expected
hit rates of ranking those at random (``element_random/top*``); ``space_group_via_top1/
accuracy`` (right when the top-1 candidate's space group is one of the query's phases'); ``mean_top1_similarity``,
``mean_confidence`` and ``low_confidence_share`` (XCCP confidence); ``per_query/<file>/rank`` and
``per_query/<file>/prescreen/rank``. Methods that classify also get ``crystal_system/accuracy`` and
``space_group/accuracy`` on the single-phase queries, labelled by spglib on the refined structure at the cache's
symprec (the tolerance the training labels used).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pxrdbench.tasks.base import Block, EvalContext, Task, TaskSpec, classifies, declares
from pxrdbench.tasks.rietveld_queries import (
    DEFAULT_FOLDER,
    HiddenSet,
    RietveldQuery,
    find_folder,
    hidden_structures,
    load_rietveld_queries,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["DEFAULT_FOLDER", "RIETVELD", "evaluate_rietveld", "find_folder", "load_rietveld_queries"]


def _query_batch(queries: list[RietveldQuery], view: Any, peak_tokens: bool) -> dict[str, Any]:
    """Every query's pattern converted into the view, as one batch (``pattern``, ``pattern_mask``)."""
    import torch

    from pxrdbench.views.peak_tokens import add_view_tokens
    from pxrdbench.views.render import experimental_batch

    rows = []
    for q in queries:
        p = q.pattern
        rows.append(experimental_batch(view, p.two_theta, p.intensity[None, :], p.wavelength, ids=[q.id]))
    batch = {key: torch.cat([r[key] for r in rows]) for key in rows[0]}
    return add_view_tokens(view, batch) if peak_tokens else batch


def _hidden_embeddings(method: Any, dm: Any, hidden: HiddenSet, device: str, peak_tokens: bool) -> Tensor:
    """Candidate embeddings of the hidden structures, exactly as for cached candidates."""
    import torch

    from pxrdbench.data.torch_dataset import collate_structures
    from pxrdbench.tasks.render import to_device
    from pxrdbench.tasks.retrieval import CANDIDATE_SEED_OFFSET
    from pxrdbench.views.peak_tokens import add_view_tokens
    from pxrdbench.views.render import render_batch

    batch = collate_structures(hidden.items)
    with torch.no_grad():
        if hasattr(method, "embed_structures"):
            return method.embed_structures(to_device(batch, device)).float()
        rendered = render_batch(dm.view, batch, train=False, seed=dm.seed + CANDIDATE_SEED_OFFSET)
        if peak_tokens:
            rendered = add_view_tokens(dm.view, rendered)
        return method.embed(to_device(rendered, device)).float()


def evaluate_rietveld(
    method: Any,
    dm: Any,
    *,
    n_boot: int,
    device: str = "cpu",
    folder: str | Path | None = None,
) -> tuple[Block, list[str]]:
    """The ``experimental_rietveld`` block and notes on skipped files and phases.

    Methods without an embedding (e.g. ``majority``) get the classification metrics only. Raises DatasetError
    when there is no Rietveld CIF folder.
    """
    import torch

    from pxrdbench.tasks.predict import prepare
    from pxrdbench.tasks.render import needs_peak_tokens

    queries, skipped = load_rietveld_queries(folder)
    notes = [f"experimental_rietveld skipped {name}: {why}" for name, why in skipped]
    if not queries:
        return {}, notes
    prepare(method, device)
    tokens = needs_peak_tokens(method)
    hidden = hidden_structures(queries, dm.cache, dm.view, dm.with_graphs)
    notes += [f"experimental_rietveld: phase {name} not usable: {why}" for name, why in hidden.skipped]
    batch = _query_batch(queries, dm.view, tokens)
    out = _classification(method, queries, hidden, batch, n_boot=n_boot, device=device)
    try:
        from pxrdbench.tasks.render import to_device

        with torch.no_grad():
            query_embeddings = method.embed(to_device(batch, device)).float().cpu()
    except NotImplementedError:
        return out, notes
    if hidden.items:
        candidates = _candidates(method, dm, hidden, device, tokens)
        out.update(_retrieval(dm, queries, hidden, query_embeddings, candidates, n_boot=n_boot))
    return out, notes


def _candidates(method: Any, dm: Any, hidden: HiddenSet, device: str, tokens: bool) -> Tensor:
    """The test split's candidate embeddings followed by the hidden structures' (on the CPU)."""
    import torch

    from pxrdbench.tasks.retrieval import candidate_embeddings

    test_rows = dm.cache.split_indices("test")
    return torch.cat([
        candidate_embeddings(method, dm, test_rows, device=device).cpu(),
        _hidden_embeddings(method, dm, hidden, device, tokens).cpu(),
    ])  # fmt: skip


def _retrieval(
    dm: Any,
    queries: list[RietveldQuery],
    hidden: HiddenSet,
    query_embeddings: Tensor,
    candidates: Tensor,
    *,
    n_boot: int,
) -> Block:
    """Rank, pre-screen, space-group-via-top-1, confidence and per-query metrics (see the module docstring)."""
    import torch

    from pxrdbench.tasks.blocks import TOP_KS, rank_block
    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci, metric_entry
    from pxrdbench.tasks.metrics.confidence import confidence_summary
    from pxrdbench.tasks.metrics.pools import element_prescreen_mask, random_hit_rates
    from pxrdbench.tasks.metrics.retrieval import rank_counts, top1_right_share

    cache = dm.cache
    test_rows = cache.split_indices("test")
    n_test = len(test_rows)
    answered = sorted(set(hidden.owner))  # queries with at least one usable phase
    row_of = {qi: i for i, qi in enumerate(answered)}
    q = torch.nn.functional.normalize(query_embeddings[answered], dim=1)
    similarity = q @ torch.nn.functional.normalize(candidates, dim=1).T
    truth = torch.zeros_like(similarity, dtype=torch.bool)
    elements = np.concatenate([cache.element_multi_hot[test_rows], [it["elements"] for it in hidden.items]])
    same_elements = element_prescreen_mask(torch.as_tensor(elements[n_test:]), torch.as_tensor(elements))
    allowed = torch.zeros_like(truth)  # candidates with the element set of one of the query's phases
    for k, qi in enumerate(hidden.owner):
        truth[row_of[qi], n_test + k] = True
        allowed[row_of[qi]] |= same_elements[k]
    space_groups = np.concatenate(
        [cache.labels["space_group"][test_rows], [it["space_group"] for it in hidden.items]]
    )
    sg = torch.as_tensor(space_groups)
    # a candidate is right when its space group is that of any of the query's true phases
    right_sg = (truth.float() @ (sg[:, None] == sg[None, :]).float()) > 0
    out: Block = {}
    for prefix, mask in (("", None), ("prescreen/", allowed)):
        counts = rank_counts(query_embeddings[answered], candidates, truth=truth, allowed=mask)
        out.update(rank_block(counts, prefix, n_boot=n_boot))
        correct = top1_right_share(query_embeddings[answered], candidates, right_sg, allowed=mask)
        out[f"{prefix}space_group_via_top1/accuracy"] = mean_with_ci(correct, scale=100.0, n_boot=n_boot)
        expected = counts.expected_rank()
        for i, qi in enumerate(answered):
            stem = queries[qi].id.split(":", 1)[-1]
            out[f"per_query/{stem}/{prefix}rank"] = metric_entry(float(expected[i]), 1)
    rates = random_hit_rates(allowed.sum(dim=1), (truth & allowed).sum(dim=1), TOP_KS)
    out.update({f"element_random/{key}": metric_entry(rate, len(answered)) for key, rate in rates.items()})
    s1 = similarity.max(dim=1).values.double().numpy()
    out.update({key: metric_entry(value, len(s1)) for key, value in confidence_summary(s1).items()})
    return out


def _classification(
    method: Any,
    queries: list[RietveldQuery],
    hidden: HiddenSet,
    batch: dict[str, Any],
    *,
    n_boot: int,
    device: str,
) -> Block:
    """``crystal_system/accuracy`` and ``space_group/accuracy`` on the single-phase queries whose structure was
    processed (labels from the processed structure), for methods that classify."""
    import torch

    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci
    from pxrdbench.tasks.metrics.classification import per_item_correct
    from pxrdbench.tasks.render import select_rows, to_device

    tasks = [t for t in ("crystal_system", "space_group") if declares(method, t)]
    rows = [qi for qi, q in enumerate(queries) if len(q.phases) == 1 and hidden.owner.count(qi) == 1]
    if not tasks or not rows:
        return {}
    item_of = {qi: hidden.items[k] for k, qi in enumerate(hidden.owner)}
    with torch.no_grad():
        proba = method.predict_proba(to_device(select_rows(batch, rows), device))
    out = {}
    for task in tasks:
        truth = np.asarray([item_of[qi][task] for qi in rows])
        correct = per_item_correct(truth, proba[task].float().cpu().numpy())  # tie-aware
        out[f"{task}/accuracy"] = mean_with_ci(correct, scale=100.0, n_boot=n_boot)
    return out


class RietveldTask(Task):
    """Measured Rietveld patterns as retrieval queries (and classification inputs)."""

    spec = TaskSpec(
        "experimental_rietveld",
        "measured Rietveld patterns (powder CIFs) as queries; their refined structures hidden among the "
        "test split",
        ("experimental_patterns", "structures", "candidates"),
        (
            "top*",
            "*rank",
            "prescreen/*",
            "space_group_via_top1/accuracy",
            "element_random/top*",
            "mean_*",
            "low_confidence_share",
            "crystal_system/accuracy",
            "space_group/accuracy",
            "per_query/*",
        ),
        ("top1", "prescreen/top1", "space_group/accuracy"),
    )
    source = "rietveld"

    def serves(self, method: Any) -> bool:
        """The method classifies, or retrieves (declared, or through a pattern embedding)."""
        return classifies(method) or declares(method, "retrieval")

    def run(self, ctx: EvalContext) -> Block:
        """The block; notes on skipped files, or on the whole set when it is absent (never faked)."""
        from pxrdbench.errors import DatasetError

        dm = ctx.datamodule
        if dm.cache is None:
            dm.setup()
        try:
            block, notes = evaluate_rietveld(
                ctx.method, dm, n_boot=ctx.n_boot, device=ctx.device, folder=ctx.rietveld_folder
            )
        except DatasetError as exc:
            block, notes = {}, [f"{self.name} not evaluated: {exc}"]
        ctx.notes.extend(notes)
        return block


RIETVELD = RietveldTask()
