"""Latency of top-10 cosine retrieval against 1,000,000 random 64-d candidates on this CPU (2 threads).

Two paths are timed for 1 query and for 1,000 queries:

- ``topk_similarities`` (pxrdbench.tasks.metrics.retrieval): chunked over queries and candidates, normalises each
  candidate chunk on the fly (what the benchmark's evaluation runs; no pre-processing of the pool);
- ``pre-normalised matmul``: the pool L2-normalised once up front (as a deployed index would store it), then
  chunked ``q @ cᵀ`` + ``topk`` with a running merge — the lower bound of a brute-force search.

Usage: ``python benchmarks/retrieval_scale.py [--candidates 1000000] [--dim 64] [--repeats 3]``. Prints a
markdown table (median wall-clock over the repeats, after one warm-up). Results depend on the machine and its
load.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pxrdbench.tasks.metrics.retrieval import topk_similarities

K = 10


def prenormalised_topk(queries: torch.Tensor, unit_pool: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """Top-k indices of unit queries against a unit pool, chunked over the pool with a running top-k merge."""
    q = F.normalize(queries, dim=1)
    best_v = torch.empty(q.shape[0], 0)
    best_i = torch.empty(q.shape[0], 0, dtype=torch.long)
    for start in range(0, unit_pool.shape[0], chunk):
        sims = q @ unit_pool[start : start + chunk].T
        v, i = sims.topk(min(k, sims.shape[1]), dim=1)
        best_v, pos = torch.cat([best_v, v], dim=1).topk(k, dim=1)
        best_i = torch.cat([best_i, i + start], dim=1).gather(1, pos)
    return best_i


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@torch.no_grad()
def run(n_candidates: int, dim: int, repeats: int, threads: int) -> list[dict[str, object]]:
    """Time both paths for 1 and 1,000 queries; returns one row per (path, query count)."""
    torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(0)
    pool = torch.randn(n_candidates, dim, generator=generator)
    unit_pool = F.normalize(pool, dim=1)
    rows = []
    for n_queries in (1, 1000):
        queries = torch.randn(n_queries, dim, generator=generator)
        expected = prenormalised_topk(queries, unit_pool, K, 65536)
        found = topk_similarities(queries, pool, K, chunk_size=65536)[1]
        assert torch.equal(found[:, 0], expected[:, 0]), "the two paths disagree on the top-1"
        paths = {
            "topk_similarities": lambda q=queries: topk_similarities(q, pool, K, chunk_size=65536),
            "pre-normalised matmul": lambda q=queries: prenormalised_topk(q, unit_pool, K, 65536),
        }
        for name, fn in paths.items():
            seconds = median_seconds(fn, repeats)
            rows.append({"path": name, "queries": n_queries, "seconds": seconds,
                         "per_query_ms": 1000.0 * seconds / n_queries})  # fmt: skip
    return rows


def markdown(rows: list[dict[str, object]], n_candidates: int, dim: int, threads: int) -> str:
    """The timing rows as a markdown table with a one-line header naming the setting."""
    lines = [
        f"Top-{K} cosine retrieval, {n_candidates:,} random {dim}-d candidates, CPU "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__}, {threads} threads",
        "",
        "| path | queries | wall-clock (s) | per query (ms) |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['path']} | {row['queries']:,} | {row['seconds']:.3f} | {row['per_query_ms']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = run(args.candidates, args.dim, args.repeats, args.threads)
    print(markdown(rows, args.candidates, args.dim, args.threads))


if __name__ == "__main__":
    main()
