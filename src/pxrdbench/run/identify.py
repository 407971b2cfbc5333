"""Phase identification for a measured pattern: the candidate structures of a dataset ranked by a trained
method's similarity, as a crystallographer would read them.

The pool is a dataset cache (``--data``: its test split or all of it); candidates are embedded exactly as in
the retrieval task (:func:`pxrdbench.tasks.retrieval.candidate_embeddings`: crystal embeddings for
contrastive methods, the embedded simulated reference pattern for pattern-only ones). An optional element
filter keeps only the candidates whose element set equals the given one (XCCP's pre-screen). Each answer
carries the cosine similarity s, XCCP's confidence c(s) = 1 / (1 + exp(−(s − 0.85) / 0.025)) and the
low-confidence flag (c < 0.5: the true phase may be absent from the pool).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from pxrdbench.errors import InputError

POOLS = ("all", "test")


def parse_elements(text: str | Sequence[str] | None) -> list[str] | None:
    """Element symbols from ``"Al,P,O"`` / ``"Al P O"`` / a list; unknown symbols raise InputError."""
    if text is None:
        return None
    from pymatgen.core.periodic_table import Element

    symbols = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    out = []
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol.strip()):
            raise InputError("--elements", f"{symbol!r} is not an element symbol")
        out.append(symbol.strip())
    if not out:
        raise InputError("--elements", "give at least one element symbol, e.g. 'Al,P,O'")
    return sorted(set(out), key=out.index)


def element_filter(cache: Any, rows: np.ndarray, elements: Sequence[str] | None) -> np.ndarray:
    """Bool[len(rows)]: candidates whose element set equals ``elements`` (all True without a filter)."""
    if elements is None:
        return np.ones(len(rows), dtype=bool)
    from pymatgen.core.periodic_table import Element

    wanted = np.zeros(cache.element_multi_hot.shape[1], dtype=bool)
    wanted[[Element(e).Z - 1 for e in elements]] = True
    return (cache.element_multi_hot[rows] == wanted).all(axis=1)


@torch.no_grad()
def rank_candidates(
    method: Any,
    dm: Any,
    batch: Mapping[str, Any],
    *,
    pool: str = "all",
    elements: Sequence[str] | None = None,
    top_k: int = 10,
    device: str = "cpu",
) -> list[list[dict[str, Any]]]:
    """For each pattern of a batch (already in the method's view: ``pattern``, ``pattern_mask`` and whatever else
    the method reads), the ``top_k`` candidates, best first.

    Each answer: ``rank``, ``id``, ``formula``, ``space_group`` (number and symbol), ``similarity``,
    ``confidence``, ``low_confidence``. An element filter that leaves no candidate gives empty lists.
    """
    from pxrdbench.tasks.metrics.confidence import confidence
    from pxrdbench.tasks.render import to_device
    from pxrdbench.tasks.retrieval import candidate_embeddings

    if pool not in POOLS:
        raise InputError("--pool", f"{pool!r}: use one of {POOLS}")
    if top_k < 1:
        raise InputError("--top-k", f"must be >= 1, got {top_k}")
    if dm.cache is None:
        dm.setup()
    cache = dm.cache
    rows = cache.split_indices(pool)
    rows = rows[element_filter(cache, rows, elements)]
    if len(rows) == 0:
        return [[] for _ in range(int(batch["pattern"].shape[0]))]
    if isinstance(method, torch.nn.Module):
        method.to(device).eval()
    queries = torch.nn.functional.normalize(method.embed(to_device(batch, device)).float().cpu(), dim=1)
    candidates = torch.nn.functional.normalize(
        candidate_embeddings(method, dm, rows, device=device).cpu(), dim=1
    )
    values, indices = (queries @ candidates.T).topk(min(top_k, len(rows)), dim=1)
    entries = cache.entries
    out = []
    for vals, idx in zip(values.tolist(), indices.tolist(), strict=True):
        answers = []
        for rank, (s, j) in enumerate(zip(vals, idx, strict=True), start=1):
            row = entries.iloc[int(rows[j])]
            c = float(confidence(s))
            answers.append(
                {
                    "rank": rank,
                    "id": str(row["id"]),
                    "formula": str(row["formula"]),
                    "space_group": {
                        "number": int(row["space_group"]),
                        "symbol": str(row["space_group_symbol"]),
                    },
                    "similarity": round(float(s), 4),
                    "confidence": round(c, 4),
                    "low_confidence": c < 0.5,
                }
            )
        out.append(answers)
    return out
