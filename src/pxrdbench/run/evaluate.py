"""``pxrdbench evaluate``: metrics of a trained checkpoint on the test split of the data it was trained on (or
another dataset, or ``rruff908``), through the same task registry as ``bench``; or the predictions for one
measured file.

The checkpoint records its method and where its data came from (dataset, ``max_structures``, split seed, view,
batch size; :func:`pxrdbench.run.checkpoints.load_checkpoint`): the data module is rebuilt from that record, so
the test split is the one the method never saw and nothing larger is built. ``data``, ``max_structures`` and
``seed`` override the record.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import torch

from pxrdbench.errors import ConfigError

EXPERIMENTAL_SETS = ("rruff908",)
"""Experimental datasets that ``--data`` accepts (scored by the task of that source)."""
DEFAULT_BATCH_SIZE = 64


def load(checkpoint: str, model: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(method, run info) of a checkpoint; ``model``, when given, must be the name it was trained as."""
    from pxrdbench.run.checkpoints import load_checkpoint

    method, info = load_checkpoint(checkpoint)
    if model is not None and info.get("model") not in (None, model):
        raise ConfigError(f"checkpoint {checkpoint} holds {info.get('model')!r}, not {model!r}")
    return method, dict(info)


def resolve_data(
    info: dict[str, Any], *, data: str | None, max_structures: int | None, seed: int | None
) -> dict[str, Any]:
    """``{dataset, max_structures, seed, view, batch_size}``: the checkpoint's record with the flags given."""
    dataset = data if data is not None else info.get("dataset")
    if dataset is None:
        raise ConfigError("the checkpoint does not record its dataset: pass --data")
    if info.get("view") is None:
        raise ConfigError(
            "the checkpoint does not record its view (not written by `pxrdbench bench` or `fit`)"
        )
    return {
        "dataset": str(dataset),
        "max_structures": max_structures if max_structures is not None else info.get("max_structures"),
        "seed": int(seed if seed is not None else (info.get("seed") or 0)),
        "view": info["view"],
        "batch_size": int(info.get("batch_size") or DEFAULT_BATCH_SIZE),
    }


def build_datamodule(method: Any, settings: dict[str, Any], view: Any) -> Any:
    """A set-up data module of ``settings['dataset']`` that attaches what the method reads (graphs, tokens)."""
    from pxrdbench.data.datamodule import SimulatedDataModule

    requirements = method.data_requirements()
    dm = SimulatedDataModule(
        settings["dataset"],
        view,
        batch_size=settings["batch_size"],
        with_graphs=requirements.graphs,
        seed=settings["seed"],
        max_structures=settings["max_structures"],
    )
    dm.peak_tokens = bool(requirements.peak_tokens)
    dm.setup()
    return dm


def evaluate_checkpoint(
    *,
    checkpoint: str,
    model: str | None = None,
    data: str | None = None,
    path: str | None = None,
    wavelength: str | None = None,
    max_structures: int | None = None,
    seed: int | None = None,
    n_boot: int = 1000,
    elements: str | None = None,
    pool: str = "all",
    top_k: int = 10,
    pools: Sequence[str] = ("test", "all"),
    device: str = "cpu",
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The ``metrics`` mapping of the tasks the method serves (as in a results file), or, with ``path``, the
    per-pattern predictions for a measured file.

    With ``path``, a method with a pattern embedding also ranks the structures of the dataset (``pool``:
    ``all`` or ``test``; ``elements``: keep only candidates with exactly these elements) for each pattern.
    ``notes`` (a list) receives what the tasks report (a missing experimental set, skipped files).
    """
    from pxrdbench.tasks.base import EvalContext
    from pxrdbench.tasks.registry import run_tasks, tasks_for_source
    from pxrdbench.views.spec import load_view

    method, info = load(checkpoint, model)
    if isinstance(method, torch.nn.Module):
        method.eval()
    experimental = data is not None and _is_experimental(data)
    settings = resolve_data(
        info, data=None if experimental else data, max_structures=max_structures, seed=seed
    )
    view = load_view(settings["view"])
    if path is not None:
        dm = None if experimental else build_datamodule(method, settings, view)
        return predict_file(
            method, view, path, wavelength, dm=dm, elements=elements, pool=pool, top_k=top_k, device=device
        )
    if experimental and data not in EXPERIMENTAL_SETS:
        raise ConfigError(
            f"--data {data!r}: use one of {list(EXPERIMENTAL_SETS)}, a simulated dataset name, or --path FILE"
        )
    source = str(data) if experimental else "simulated"
    dm = SimpleNamespace(view=view) if experimental else build_datamodule(method, settings, view)
    ctx = EvalContext(
        method=method,
        datamodule=dm,
        n_boot=n_boot,
        pools=tuple(pools),
        device=device,
        paired_baselines=()
        if experimental
        else EvalContext.paired_baselines,  # baselines need a training split
    )
    metrics = run_tasks(ctx, only=tasks_for_source(source))
    if notes is not None:
        notes.extend(ctx.notes)
    return metrics


def _is_experimental(data: str) -> bool:
    return data.startswith("rruff") or data.startswith("opxrd")


def predict_file(
    method: Any,
    view: Any,
    path: str,
    wavelength: str | None,
    *,
    dm: Any = None,
    elements: str | None = None,
    pool: str = "all",
    top_k: int = 10,
    device: str = "cpu",
) -> dict[str, Any]:
    """Predictions for every pattern in one measured file (any supported format), in the method's view:
    ranked crystal systems, space groups and the lattice for classifiers; with a data module ``dm``, the
    ``top_k`` candidate structures of its pool for methods with a pattern embedding
    (:mod:`pxrdbench.run.identify`)."""
    from pxrdbench.data.experimental.registry import load_pattern
    from pxrdbench.run.identify import parse_elements, rank_candidates
    from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, space_group_symbol
    from pxrdbench.tasks.base import classifies, declares
    from pxrdbench.tasks.registry import get
    from pxrdbench.tasks.render import measured_batch, needs_peak_tokens, to_device

    wanted = parse_elements(elements)
    tokens = needs_peak_tokens(method)
    retrieves = get("retrieval").serves(method)
    out = []
    for pattern in load_pattern(path, wavelength=wavelength):
        batch = measured_batch(
            view, pattern.two_theta, pattern.intensity[None, :], pattern.wavelength, peak_tokens=tokens
        )
        entry: dict[str, Any] = {
            "id": pattern.id,
            "measured_fraction": float(batch["pattern_mask"].float().mean()),
        }
        with torch.no_grad():
            proba = method.predict_proba(to_device(batch, device)) if classifies(method) else {}
            if "crystal_system" in proba:
                top = torch.topk(proba["crystal_system"][0].cpu(), 3)
                entry["crystal_system"] = [
                    {"name": CRYSTAL_SYSTEMS[int(i)], "p": round(float(v), 4)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
            if "space_group" in proba:
                top = torch.topk(proba["space_group"][0].cpu(), 5)
                entry["space_group"] = [
                    {"number": int(i) + 1, "symbol": space_group_symbol(int(i) + 1), "p": round(float(v), 4)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
            if declares(method, "lattice"):
                lattice = method.predict_lattice(to_device(batch, device))[0]
                entry["lattice"] = [round(float(v), 3) for v in lattice]
        if dm is not None and retrieves:
            entry["candidates"] = rank_candidates(
                method, dm, batch, pool=pool, elements=wanted, top_k=top_k, device=device
            )[0]
            entry["candidate_pool"] = {"dataset": str(dm.cache.name), "pool": pool, "elements": wanted}
        entry["labels"] = {k: v for k, v in pattern.labels.items() if isinstance(v, (int, float, str))}
        out.append(entry)
    return {"file": str(path), "patterns": out}
