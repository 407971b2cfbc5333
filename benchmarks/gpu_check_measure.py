"""The measurements of ``gpu_check.py``: Lightning training throughput, batch-1 latency, rendering throughput
and the ``gpu``-marked tests. Nothing here imports pymatgen, spglib, pyxtal or larixite (the GPU machine has
none of them): the dataset cache is opened from its files, not through ``pxrdbench.data.store``."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import json
import math
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: Sub-modules compiled by ``torch.compile`` (fixed-shape pattern paths; the crystal-graph encoders, whose
#: inputs change size every batch, stay eager).
COMPILED_PARTS = ("encoder", "pattern_encoder", "pattern_head")


def find_cache(root: Path, dataset: str) -> Path:
    """The newest complete cache ``<root>/<dataset>-<hash>`` (one with a manifest)."""
    found = [p for p in Path(root).glob(f"{dataset}-*") if (p / "manifest.json").is_file()]
    if not found:
        raise SystemExit(f"no {dataset} cache under {root}: run `make gpu-bundle` here first")
    return max(found, key=lambda p: p.stat().st_mtime)


def open_cache(path: Path) -> Any:
    """A ``DatasetCache`` of ``path``, every file checked against the manifest's SHA-256 (what
    ``DatasetCache.open`` does, but that imports ``pxrdbench.data.store``, which imports pymatgen)."""
    import pandas as pd

    from pxrdbench.data.cache import DatasetCache

    path = Path(path)
    manifest = json.loads((path / "manifest.json").read_text())
    expected = expected_cache_format()
    if expected is not None and manifest.get("cache_format") != expected:
        raise SystemExit(f"{path}: cache format {manifest.get('cache_format')}, the code reads {expected}: "
                         "rebuild the bundle (make gpu-bundle)")  # fmt: skip
    for name, digest in manifest.get("files", {}).items():
        if hashlib.sha256((path / name).read_bytes()).hexdigest() != digest:
            raise SystemExit(f"{path / name}: checksum mismatch (rebuild the bundle)")
    entries = pd.read_csv(path / "entries.csv", keep_default_na=False)
    return DatasetCache(path=path, manifest=manifest, entries=entries)


def expected_cache_format() -> int | None:
    """``CACHE_FORMAT`` of ``pxrdbench.data.store``, read from its source: importing it imports pymatgen."""
    spec = importlib.util.find_spec("pxrdbench.data.store")
    if spec is None or spec.origin is None:
        return None
    for node in ast.parse(Path(spec.origin).read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CACHE_FORMAT" for t in node.targets):
            return int(ast.literal_eval(node.value))
    return None


def synchronizer(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def build(name: str, cache: Any, batch_size: int | None, num_workers: int) -> tuple[Any, Any]:
    """The method and data module of registered ``name``, reading the opened ``cache``."""
    from pxrdbench.methods.registry import instantiate, parse_method
    from pxrdbench.run.lightning_cli import configure_data_for

    overrides = ["--data.num_workers", str(num_workers)]
    overrides += ["--data.batch_size", str(batch_size)] if batch_size else []
    built = instantiate(parse_method(name, overrides))
    method, data = built["model"], built["data"]
    data.cache = cache  # opened already: prepare_data/setup then build nothing
    configure_data_for(data, method)
    return method, data


def parameters(method: Any) -> int:
    return sum(p.numel() for p in method.parameters() if p.requires_grad)


def compile_parts(method: Any) -> list[str]:
    """``torch.compile`` the method's pattern-side modules in place; return their names."""
    import torch

    done = []
    for part in COMPILED_PARTS:
        module = getattr(method, part, None)
        if isinstance(module, torch.nn.Module):
            module.compile(dynamic=False)
            done.append(part)
    return done


def train(
    method: Any, data: Any, *, device: str, precision: str, warmup: int, steps: int, cap_s: float
) -> tuple[dict[str, Any], Any]:
    """``warmup`` then up to ``steps`` timed steps of a real ``Trainer.fit`` (stopping early once the timed
    steps took ``cap_s``). Returns the timings and the last rendered pattern batch (on the device).

    The train split is repeated so that one epoch holds every step: the carried cache is small, and an
    epoch's end (a partial batch, the loader restarting) would otherwise fall among the timed steps.
    """
    import lightning as L
    import numpy as np

    sync, warmup = synchronizer(device), max(1, warmup)
    need = (warmup + steps + 2) * int(data.batch_size)
    split_dataset = data.split_dataset

    def repeated(split: str) -> Any:
        dataset = split_dataset(split)
        if split == "train" and len(dataset):
            dataset.indices = np.tile(dataset.indices, math.ceil(need / len(dataset)))
        return dataset

    data.split_dataset = repeated
    ends: list[float] = []
    starts: list[float] = []
    last: dict[str, Any] = {}
    render = data.on_after_batch_transfer

    def timed_render(batch: Any, idx: int) -> Any:
        starts.append(time.perf_counter())
        out = render(batch, idx)
        last["pattern"] = out["pattern"]
        return out

    data.on_after_batch_transfer = timed_render

    class Clock(L.Callback):
        def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
            n = len(ends) + 1
            if n == warmup:
                sync()
            ends.append(time.perf_counter())
            if n > warmup and (n == warmup + steps or ends[-1] - ends[warmup - 1] >= cap_s):
                sync()
                ends[-1] = time.perf_counter()
                trainer.should_stop = True

    trainer = L.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu", devices=1, precision=precision,
        max_steps=warmup + steps, max_epochs=1000, limit_val_batches=0, num_sanity_val_steps=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[Clock()],
    )  # fmt: skip
    t0 = time.perf_counter()
    trainer.fit(method, datamodule=data)
    wall = time.perf_counter() - t0
    timed = len(ends) - warmup
    if timed < 1:
        raise RuntimeError(f"training stopped after {len(ends)} steps, before any timed step")
    span = ends[-1] - ends[warmup - 1]
    load = sum(starts[i] - ends[i - 1] for i in range(warmup, len(ends)))
    size = int(data.batch_size)
    row = {
        "patterns_per_s": timed * size / span, "batch_size": size, "steps": timed, "warmup": warmup,
        "seconds": span, "load_share": load / span, "wall_s": wall, "precision": precision,
        "num_workers": int(data.num_workers),
    }  # fmt: skip
    return row, last["pattern"]


def _median_ms(call: Callable[[], Any], sync: Callable[[], None], repeats: int, warm: int = 5) -> float:
    for _ in range(warm):
        call()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _graphed(method: Any, x: Any) -> Callable[[], Any]:
    """The method's forward on ``x`` captured as one CUDA graph; returns its replay."""
    import torch

    static = x.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            method(static)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        method(static)
    return graph.replay


def latency(method: Any, pattern: Any, device: str, repeats: int) -> dict[str, Any]:
    """Median ms of ``method(one pattern)`` in eval mode: fp32, bf16 autocast and (CUDA) one CUDA graph."""
    import torch

    sync, method = synchronizer(device), method.to(device)
    x = pattern[:1].detach().float().to(device)
    ms: dict[str, Any] = {}
    with method.evaluating():
        ms["fp32"] = _median_ms(lambda: method(x), sync, repeats)
        with torch.autocast(device, dtype=torch.bfloat16):
            ms["bf16"] = _median_ms(lambda: method(x), sync, repeats)
        if device == "cuda":
            try:
                ms["cuda_graph"] = _median_ms(_graphed(method, x), sync, repeats)
            except Exception as error:  # a forward that syncs with the host cannot be captured
                ms["cuda_graph_error"] = f"{type(error).__name__}: {error}"[:300]
    best = min((k for k, v in ms.items() if isinstance(v, float)), key=lambda k: ms[k])
    return {"latency_ms": ms, "latency_ms_batch1": ms[best], "latency_mode": best, "latency_repeats": repeats}


def render(device: str, profile: str, batch: int, points: int, n_peaks: int, repeats: int) -> dict[str, Any]:
    """``batch_peaks`` + ``render_profiles`` of synthetic peaks on ``device`` (inputs as in
    ``render_profiles.py``); patterns/s from the median of ``repeats`` synchronised calls after one warm-up."""
    import torch
    from render_profiles import TWO_THETA, WAVELENGTH, profile_for

    from pxrdbench.physics.peak_batch import batch_peaks
    from pxrdbench.physics.profiles import render_profiles

    sync, gen, lam = synchronizer(device), torch.Generator().manual_seed(0), WAVELENGTH.angstrom
    d_max = lam / (2 * math.sin(math.radians(TWO_THETA[0] / 2)))
    d_min = lam / (2 * math.sin(math.radians(TWO_THETA[1] / 2)))
    d = (d_min + (d_max - d_min) * torch.rand(batch, n_peaks, generator=gen, dtype=torch.float64)).to(device)
    m_f2 = torch.rand(batch, n_peaks, generator=gen, dtype=torch.float64).to(device)
    grid = torch.linspace(*TWO_THETA, points, device=device)
    params = profile_for(profile, batch, gen)
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    params = dataclasses.replace(params, **{k: v.to(device) for k, v in fields.items() if torch.is_tensor(v)})
    times = []
    for _ in range(repeats + 1):
        sync()
        start = time.perf_counter()
        out = render_profiles(batch_peaks(d, m_f2, WAVELENGTH, TWO_THETA), grid, params)
        sync()
        times.append(time.perf_counter() - start)
    if tuple(out.shape) != (batch, points) or not bool(torch.isfinite(out).all()):
        raise RuntimeError(f"render_profiles gave {tuple(out.shape)} or non-finite values")
    median = statistics.median(times[1:])
    return {
        "patterns_per_s": batch / median, "batch": batch, "points": points, "peaks": n_peaks,
        "first_s": times[0], "median_s": median, "best_s": min(times[1:]), "repeats": repeats,
    }  # fmt: skip


def junit_counts(path: Path) -> dict[str, int]:
    """passed / failed / skipped / errors summed over a JUnit XML file's test suites."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    passed = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return {
        "passed": passed,
        "failed": total["failures"],
        "skipped": total["skipped"],
        "errors": total["errors"],
    }


def run_pytest(out_dir: Path, timeout_s: float, marker: str = "gpu") -> dict[str, Any]:
    """``pytest -m marker`` on ``tests/gpu/`` in a subprocess; counts from its JUnit XML, log beside it.

    Only ``tests/gpu/`` is collected: the other test modules import pymatgen, which the GPU machine lacks, and
    every gpu-marked test lives there."""
    xml, log = out_dir / f"pytest_{marker}.xml", out_dir / f"pytest_{marker}.log"
    cmd = [sys.executable, "-m", "pytest", "-m", marker, "-q", "-p", "no:cacheprovider"]
    cmd += ["--continue-on-collection-errors", f"--junitxml={xml}", "tests/gpu"]
    start = time.perf_counter()
    result: dict[str, Any] = {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "returncode": None}
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        log.write_text(str(error.stdout or "") + str(error.stderr or ""))
        return {
            **result,
            "seconds": time.perf_counter() - start,
            "note": f"timed out after {timeout_s:.0f} s",
        }
    log.write_text(done.stdout + done.stderr)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    result.update(
        returncode=done.returncode, seconds=time.perf_counter() - start, summary=lines[-1] if lines else ""
    )
    if xml.is_file():
        result.update(junit_counts(xml))
    if done.returncode == 5:
        result["note"] = f"no test is marked {marker}"
    elif done.returncode not in (0, 1) and not xml.is_file():
        result.update(errors=1, note="pytest stopped before running tests (see the log)")
    return result
