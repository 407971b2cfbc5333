"""Experimental structure retrieval: measured Rietveld patterns (powder CIFs) as queries, their own refined
structures hidden among the dataset's test-split candidates.

Queries: every pattern of every ``*.cif`` in a folder (default ``experimental/pdcif15`` under the data roots),
converted into the method's view exactly as any measured pattern is (Bragg re-mapping to the view's wavelength,
resampling onto its grid with the unmeasured part masked, the view's normalisation; no background subtraction).
A query's true structures are the phases refined in its file: one, or several for a multi-phase file, where a
hit on any of them counts.

Candidates: the test split of the dataset plus the hidden structures of *all* queries (so they are distractors
for each other too). A hidden structure goes through the cache's own processing
(:func:`pxrdbench.data.entry.process_entry` with the cache's build parameters: labels, reflections, graphs) and
then through the same embedding path as a cached candidate (:mod:`pxrdbench.tasks.retrieval`): crystal
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

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pxrdbench.data.experimental.pattern import ExperimentalPattern
from pxrdbench.errors import DatasetError, PxrdbenchError

DEFAULT_FOLDER = "experimental/pdcif15"
"""Where the Rietveld CIFs are looked for under each data root (``$PXRDBENCH_DATA``, ``../shared/data``)."""


@dataclass
class RietveldQuery:
    """One measured pattern and the structures refined against it (``phases``: (name, pymatgen Structure))."""

    id: str
    pattern: ExperimentalPattern
    phases: list[tuple[str, Any]]


@dataclass
class HiddenSet:
    """The queries' refined structures, processed as cache entries; ``owner[k]`` = query index of item k."""

    items: list[dict[str, Any]] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def find_folder(folder: str | Path | None = None) -> Path:
    """``folder`` itself, or the first data root holding ``experimental/pdcif15``; DatasetError when none does."""
    from pxrdbench.data.sources.base import data_search_roots

    candidates = [Path(folder)] if folder is not None else [r / DEFAULT_FOLDER for r in data_search_roots()]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise DatasetError(
        f"no Rietveld CIF folder (searched: {', '.join(map(str, candidates))}); put powder CIFs with "
        f"_pd_ loops in $PXRDBENCH_DATA/{DEFAULT_FOLDER}"
    )


def load_rietveld_queries(
    folder: str | Path | None = None,
) -> tuple[list[RietveldQuery], list[tuple[str, str]]]:
    """Every pattern of every ``*.cif`` in the folder with its phases; (queries, skipped (name, reason)).

    A file that cannot be read, or whose phases yield no structure, is skipped with its reason, never fatal.
    """
    from pxrdbench.data.experimental.rietveld_cif import load_rietveld_cif

    queries: list[RietveldQuery] = []
    skipped: list[tuple[str, str]] = []
    for path in sorted(find_folder(folder).glob("*.cif")):
        try:
            patterns = load_rietveld_cif(path)
        except PxrdbenchError as exc:
            skipped.append((path.name, str(getattr(exc, "reason", exc))))
            continue
        for pattern in patterns:
            phases = [
                (str(p["name"]), p["structure"])
                for p in pattern.provenance.get("phases", [])
                if p.get("structure") is not None
            ]
            if phases:
                queries.append(RietveldQuery(pattern.id, pattern, phases))
            else:
                skipped.append((pattern.id, "no phase of the file gives a structure"))
    return queries, skipped


def hidden_structures(queries: list[RietveldQuery], cache: Any, view: Any, graph: str | None) -> HiddenSet:
    """Process every phase like a cache entry; items in :class:`~pxrdbench.data.torch_dataset.
    ReflectionDataset` form, indexed after the cache's rows (so render seeds never collide with them)."""
    from pxrdbench.data.entry import MAX_Z, process_entry
    from pxrdbench.data.torch_dataset import graph_from_arrays, select_reflections

    hidden = HiddenSet()
    params = cache.params
    for qi, query in enumerate(queries):
        for name, structure in query.phases:
            result = process_entry(f"{query.id}#{name}", structure, params)
            if isinstance(result, str):
                hidden.skipped.append((f"{query.id}#{name}", result))
                continue
            refl, labels = result["reflections"], result["labels"]
            d, mf2 = select_reflections(refl["d"], refl["intensity"], view.d_min, view.max_peaks)
            elements = np.zeros(MAX_Z, dtype=bool)
            elements[np.asarray(result["elements"], dtype=int) - 1] = True
            item: dict[str, Any] = {
                "index": len(cache) + len(hidden.items),
                "d": d,
                "mf2": mf2,
                "crystal_system": int(labels["crystal_system_index"]),
                "space_group": int(labels["space_group_number"]) - 1,
                "extinction_group": int(labels["extinction_group"]),
                "lattice": np.asarray(labels["niggli"], dtype=np.float32),
                "elements": elements,
            }
            if graph is not None:
                arrays = {**result["atoms"], **result[graph]}
                item["graph"] = graph_from_arrays(arrays)
            hidden.items.append(item)
            hidden.owner.append(qi)
    return hidden


@torch.no_grad()
def _query_patterns(queries: list[RietveldQuery], view: Any) -> Tensor:
    from pxrdbench.views.render import experimental_batch

    rows = []
    for q in queries:
        p = q.pattern
        rows.append(experimental_batch(view, p.two_theta, p.intensity[None, :], p.wavelength, ids=[q.id]))
    return torch.cat([r["pattern"] for r in rows])


@torch.no_grad()
def _hidden_embeddings(method: Any, dm: Any, hidden: HiddenSet, device: str) -> Tensor:
    from pxrdbench.data.torch_dataset import collate_structures
    from pxrdbench.tasks.retrieval import CANDIDATE_SEED_OFFSET
    from pxrdbench.views.render import render_batch

    batch = collate_structures(hidden.items)
    if hasattr(method, "embed_structures"):
        return method.embed_structures(batch["graph"].to(device)).float()
    rendered = render_batch(dm.view, batch, train=False, seed=dm.seed + CANDIDATE_SEED_OFFSET)
    return method.embed(rendered["pattern"].to(device)).float()


def rank_with_truth_sets(
    similarity: Tensor, truth: Tensor, allowed: Tensor | None = None, tie_tolerance: float = 1e-6
) -> Tensor:
    """1-based rank of the best true candidate per query: 1 + #allowed non-true candidates more similar.

    ``similarity`` Float[Q, C]; ``truth`` Bool[Q, C] (every row has ≥ 1 true candidate); ``allowed``
    Bool[Q, C] or None. Ties within ``tie_tolerance`` never push the true candidate down.
    """
    best_true = torch.where(truth, similarity, torch.full_like(similarity, -torch.inf)).amax(dim=1)
    higher = (similarity > best_true[:, None] + tie_tolerance) & ~truth
    if allowed is not None:
        higher &= allowed
    return 1 + higher.sum(dim=1)


def element_random_hit_rates(truth: Tensor, allowed: Tensor, ks: tuple[int, ...]) -> dict[int, float]:
    """Exact expected top-k hit rate (%) of ranking the element-matched candidates at random.

    With n allowed candidates of which t are true, a random order puts none of the true ones in the top k with
    probability C(n − t, k) / C(n, k); the rate is 100 · mean over queries of 1 − that.
    """
    from math import comb

    pairs = list(zip(allowed.sum(dim=1).tolist(), (truth & allowed).sum(dim=1).tolist(), strict=True))

    def hit(n: int, t: int, k: int) -> float:
        return 1.0 - comb(n - t, k) / comb(n, k) if n >= k else float(t > 0)

    return {k: 100.0 * float(np.mean([hit(n, t, k) for n, t in pairs])) for k in ks}


def evaluate_rietveld(
    method: Any,
    dm: Any,
    *,
    n_boot: int,
    device: str = "cpu",
    folder: str | Path | None = None,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The ``experimental_rietveld`` block and notes on skipped files and phases.

    Methods without an embedding (e.g. ``majority``) get the classification metrics only.
    """
    queries, skipped = load_rietveld_queries(folder)
    notes = [f"experimental_rietveld skipped {name}: {why}" for name, why in skipped]
    if not queries:
        return {}, notes
    if isinstance(method, torch.nn.Module):
        method.to(device).eval()
    hidden = hidden_structures(queries, dm.cache, dm.view, dm.with_graphs)
    notes += [f"experimental_rietveld: phase {name} not usable: {why}" for name, why in hidden.skipped]
    patterns = _query_patterns(queries, dm.view)
    out = _classification(method, queries, hidden, patterns, n_boot=n_boot, device=device)
    try:
        with torch.no_grad():
            query_embeddings = method.embed(patterns.to(device)).float().cpu()
    except NotImplementedError:
        return out, notes
    if hidden.items:
        out.update(_retrieval(method, dm, queries, hidden, query_embeddings, n_boot=n_boot, device=device))
    return out, notes


def _retrieval(
    method: Any,
    dm: Any,
    queries: list[RietveldQuery],
    hidden: HiddenSet,
    query_embeddings: Tensor,
    *,
    n_boot: int,
    device: str,
) -> dict[str, dict[str, Any]]:
    """Rank, pre-screen, space-group-via-top-1, confidence and per-query metrics (see the module docstring)."""
    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci, metric_entry
    from pxrdbench.tasks.metrics.retrieval import confidence, pack_element_sets
    from pxrdbench.tasks.retrieval import TOP_KS, candidate_embeddings, rank_block

    cache = dm.cache
    test_rows = cache.split_indices("test")
    n_test = len(test_rows)
    candidates = torch.cat([
        candidate_embeddings(method, dm, test_rows, device=device).cpu(),
        _hidden_embeddings(method, dm, hidden, device).cpu(),
    ])  # fmt: skip
    answered = sorted(set(hidden.owner))  # queries with at least one usable phase
    row_of = {qi: i for i, qi in enumerate(answered)}
    q = torch.nn.functional.normalize(query_embeddings[answered], dim=1)
    similarity = q @ torch.nn.functional.normalize(candidates, dim=1).T
    truth = torch.zeros_like(similarity, dtype=torch.bool)
    keys = pack_element_sets(
        torch.as_tensor(
            np.concatenate([cache.element_multi_hot[test_rows], [it["elements"] for it in hidden.items]])
        )
    )
    allowed = torch.zeros_like(truth)  # candidates with the element set of one of the query's phases
    for k, qi in enumerate(hidden.owner):
        truth[row_of[qi], n_test + k] = True
        allowed[row_of[qi]] |= (keys == keys[n_test + k]).all(dim=1)
    space_groups = np.concatenate(
        [cache.labels["space_group"][test_rows], [it["space_group"] for it in hidden.items]]
    )
    out: dict[str, dict[str, Any]] = {}
    for prefix, mask in (("", None), ("prescreen/", allowed)):
        ranks = rank_with_truth_sets(similarity, truth, mask)
        out.update(rank_block(ranks, prefix, n_boot=n_boot))
        scores = similarity if mask is None else similarity.masked_fill(~mask, -torch.inf)
        top1 = scores.argmax(dim=1).numpy()
        correct = [space_groups[j] in set(space_groups[truth[i].numpy()]) for i, j in enumerate(top1)]
        out[f"{prefix}space_group_via_top1/accuracy"] = mean_with_ci(
            np.asarray(correct, dtype=float), scale=100.0, n_boot=n_boot
        )
        for i, qi in enumerate(answered):
            stem = queries[qi].id.split(":", 1)[-1]
            out[f"per_query/{stem}/{prefix}rank"] = metric_entry(float(ranks[i]), 1)
    for k, rate in element_random_hit_rates(truth, allowed, TOP_KS).items():
        out[f"element_random/top{k}"] = metric_entry(rate, len(answered))
    s1 = similarity.max(dim=1).values.double().numpy()
    c1 = np.atleast_1d(confidence(s1))
    out["mean_top1_similarity"] = metric_entry(float(s1.mean()), len(s1))
    out["mean_confidence"] = metric_entry(float(c1.mean()), len(s1))
    out["low_confidence_share"] = metric_entry(100.0 * float((c1 < 0.5).mean()), len(s1))
    return out


@torch.no_grad()
def _classification(
    method: Any,
    queries: list[RietveldQuery],
    hidden: HiddenSet,
    patterns: Tensor,
    *,
    n_boot: int,
    device: str,
) -> dict[str, dict[str, Any]]:
    """``crystal_system/accuracy`` and ``space_group/accuracy`` on the single-phase queries whose structure was
    processed (labels from the processed structure), for methods that classify."""
    from pxrdbench.tasks.metrics.bootstrap import mean_with_ci

    tasks = [t for t in ("crystal_system", "space_group") if method.serves(t)]
    rows = [qi for qi, q in enumerate(queries) if len(q.phases) == 1 and hidden.owner.count(qi) == 1]
    if not tasks or not rows:
        return {}
    item_of = {qi: hidden.items[k] for k, qi in enumerate(hidden.owner)}
    proba = method.predict_proba(patterns[rows].to(device))
    out = {}
    for task in tasks:
        truth = np.asarray([item_of[qi][task] for qi in rows])
        correct = proba[task].argmax(dim=1).cpu().numpy() == truth
        out[f"{task}/accuracy"] = mean_with_ci(correct.astype(float), scale=100.0, n_boot=n_boot)
    return out
