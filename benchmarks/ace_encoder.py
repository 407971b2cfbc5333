"""Forward + backward time of EACNN's ACE crystal encoder on real AMCSD batches (a script, not a test).

    .venv/bin/python benchmarks/ace_encoder.py                        # CPU, batches of 32
    .venv/bin/python benchmarks/ace_encoder.py --device cuda --batch-size 256
    .venv/bin/python benchmarks/ace_encoder.py --json OUT.json

What is timed: ``ACEEncoder`` exactly as the ``eacnn`` config builds it (64x0e + 64x1o, l ≤ 3, ν = 3, 2 layers),
forward of a torch_geometric batch of cached 5 Å radius graphs of random AMCSD training structures (seeded), a
scalar loss, and backward; ``--repeats`` batches after ``--warmup`` batches, each batch timed alone (median and
mean in ms). Atoms and edges per batch are printed next to the time: the cost grows with the edges.

Reference, in the same run on the same batches: the same encoder whose edge convolution is e3nn's generic
``o3.TensorProduct`` ("uvu", per-edge weights) followed by ``index_add_`` — the straightforward e3nn build, which
tests/models/test_ace.py shows computes the same function. The ratio is reference / ours.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from e3nn import o3
from torch import Tensor, nn


class E3nnConvolution(nn.Module):
    """The reference: e3nn's TensorProduct on gathered neighbour features, then a scatter-sum."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        from pxrdbench.models.crystal.edge_convolution import uvu_paths

        keep = [ir for _, ir in conv.irreps_sh]
        irreps_mid, instructions = uvu_paths(conv.irreps_in, conv.irreps_sh, keep)
        self.tp = o3.TensorProduct(conv.irreps_in, conv.irreps_sh, irreps_mid, instructions,
                                   shared_weights=False, internal_weights=False)  # fmt: skip

    def forward(self, h: Tensor, sh: Tensor, weights: Tensor, edge_index: Tensor) -> Tensor:
        messages = self.tp(h[edge_index[0]], sh, weights)
        out = torch.zeros(h.shape[0], messages.shape[1], dtype=messages.dtype, device=messages.device)
        return out.index_add_(0, edge_index[1], messages)


def batches(n_batches: int, batch_size: int, seed: int) -> list[Any]:
    """``n_batches`` torch_geometric batches of random AMCSD training structures (radius graphs)."""
    from torch_geometric.data import Batch

    from pxrdbench.data.cache import DatasetCache
    from pxrdbench.data.store import build_cache
    from pxrdbench.data.torch_dataset import graph_data

    cache = DatasetCache.open(build_cache("amcsd", workers=1, log=lambda m: None))
    rows = cache.split_indices("train")
    rng = np.random.default_rng(seed)
    return [
        Batch.from_data_list(
            [graph_data(cache, int(r), "radius") for r in rng.choice(rows, batch_size, replace=False)]
        )
        for _ in range(n_batches)
    ]


def time_encoder(encoder: nn.Module, graphs: list[Any], warmup: int, device: str) -> list[float]:
    """Seconds of forward + backward of every batch after the first ``warmup``."""
    times = []
    for i, graph in enumerate(graphs):
        graph = graph.to(device)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        encoder(graph).square().mean().backward()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        encoder.zero_grad(set_to_none=True)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-reference", action="store_true", help="skip the generic e3nn reference")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args()

    from pxrdbench.methods.registry import create_method

    torch.manual_seed(0)
    encoder = create_method("eacnn").crystal_encoder.to(args.device).train()
    graphs = batches(args.warmup + args.repeats, args.batch_size, args.seed)
    atoms = [int(g.num_nodes) for g in graphs[args.warmup :]]
    edges = [int(g.edge_index.shape[1]) for g in graphs[args.warmup :]]
    ours = time_encoder(encoder, graphs, args.warmup, args.device)
    row: dict[str, Any] = {
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "batch_size": args.batch_size, "atoms": atoms, "edges": edges,
        "ours_ms": [1e3 * t for t in ours], "parameters": sum(p.numel() for p in encoder.parameters()),
    }  # fmt: skip
    print(f"device {row['device']}, {row['threads']} threads, batches of {args.batch_size} AMCSD structures")
    print(f"atoms per batch {statistics.mean(atoms):.0f} (range {min(atoms)}–{max(atoms)}), "
          f"edges per batch {statistics.mean(edges):,.0f} (range {min(edges):,}–{max(edges):,})")  # fmt: skip
    print(f"ours       forward+backward: median {1e3 * statistics.median(ours):8.0f} ms, "
          f"mean {1e3 * statistics.mean(ours):8.0f} ms")  # fmt: skip
    if not args.no_reference:
        for layer in encoder.layers:
            layer.conv = E3nnConvolution(layer.conv).to(args.device)
        reference = time_encoder(encoder, graphs, args.warmup, args.device)
        row["reference_ms"] = [1e3 * t for t in reference]
        row["ratio_of_means"] = statistics.mean(reference) / statistics.mean(ours)
        print(f"e3nn TP    forward+backward: median {1e3 * statistics.median(reference):8.0f} ms, "
              f"mean {1e3 * statistics.mean(reference):8.0f} ms")  # fmt: skip
        print(f"ratio reference / ours (means): {row['ratio_of_means']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
