"""``pxrdbench evaluate``: metrics of a trained checkpoint on a dataset's test split, on ``rruff908``, or the
predictions for one measured file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pxrdbench.errors import ConfigError, InputError


def load_method(model: str, checkpoint: str | Path, input_length: int, split_index: int | None) -> Any:
    """Build ``model`` with the view-derived arguments and load the checkpoint's weights."""
    from pxrdbench.models.registry import create_model
    from pxrdbench.run.bench import _model_overrides_for

    path = Path(checkpoint)
    if not path.is_file():
        raise InputError(str(path), "no such checkpoint file")
    method = create_model(model, **_model_overrides_for(model, input_length, split_index, seed=0))
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InputError(str(path), f"not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if "state_dict" not in state:
        raise InputError(str(path), "not a Lightning checkpoint (no 'state_dict')")
    method.load_state_dict(state["state_dict"])
    return method.eval()


def evaluate_checkpoint(
    *,
    model: str,
    checkpoint: str,
    data: str,
    path: str | None = None,
    wavelength: str | None = None,
    max_structures: int | None = None,
    n_boot: int = 1000,
    elements: str | None = None,
    pool: str = "all",
    top_k: int = 10,
) -> dict[str, Any]:
    """Metrics (or, with ``path``, per-pattern predictions) as a JSON-ready dict.

    With ``path``, a method that embeds patterns also ranks the structures of dataset ``data`` (``pool``:
    ``all`` or ``test``; ``elements``: keep only candidates with exactly these elements) for each pattern.
    """
    from pxrdbench.run.settings import method_settings
    from pxrdbench.tasks.simulated import evaluate_rruff908, evaluate_simulated
    from pxrdbench.views.spec import load_view

    settings = method_settings(model)
    view = load_view(settings.view)
    method = load_method(model, checkpoint, view.n_points, view.split_index)
    if path is not None:
        dm = None
        if not _is_experimental(data):
            from pxrdbench.data.datamodule import SimulatedDataModule

            dm = SimulatedDataModule(data, view, batch_size=64, with_graphs=settings.graphs,
                                     max_structures=max_structures)  # fmt: skip
        return predict_file(method, view, path, wavelength, dm=dm, elements=elements, pool=pool, top_k=top_k)
    if data == "rruff908":
        return {"experimental_rruff908": evaluate_rruff908(method, view, n_boot=n_boot)}
    if _is_experimental(data):
        raise ConfigError(f"--data {data!r}: use 'rruff908', a simulated dataset name, or --path FILE")
    from pxrdbench.data.datamodule import SimulatedDataModule

    dm = SimulatedDataModule(
        data, view, batch_size=64, with_graphs=settings.graphs, max_structures=max_structures
    )
    dm.setup()
    return evaluate_simulated(method, dm, n_boot=n_boot, perturbations=[])


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
) -> dict[str, Any]:
    """Predictions for every pattern in one measured file (any supported format), in the method's view:
    ranked crystal systems, space groups and the lattice for classifiers; with a data module ``dm``, the
    ``top_k`` candidate structures of its pool for methods that embed (see :mod:`pxrdbench.run.identify`)."""
    from pxrdbench.data.experimental.registry import load_pattern
    from pxrdbench.run.identify import parse_elements, rank_candidates
    from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS, space_group_symbol
    from pxrdbench.views.render import experimental_batch

    wanted = parse_elements(elements)
    out = []
    for pattern in load_pattern(path, wavelength=wavelength):
        batch = experimental_batch(view, pattern.two_theta, pattern.intensity[None, :], pattern.wavelength)
        entry: dict[str, Any] = {
            "id": pattern.id,
            "measured_fraction": float(batch["pattern_mask"].float().mean()),
        }
        with torch.no_grad():
            classifies = method.serves("crystal_system") or method.serves("space_group")
            proba = method.predict_proba(batch["pattern"]) if classifies else {}
            if "crystal_system" in proba:
                p = proba["crystal_system"][0]
                top = torch.topk(p, 3)
                entry["crystal_system"] = [
                    {"name": CRYSTAL_SYSTEMS[int(i)], "p": round(float(v), 4)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
            if "space_group" in proba:
                p = proba["space_group"][0]
                top = torch.topk(p, 5)
                entry["space_group"] = [
                    {"number": int(i) + 1, "symbol": space_group_symbol(int(i) + 1), "p": round(float(v), 4)}
                    for v, i in zip(top.values, top.indices, strict=True)
                ]
            if method.serves("lattice"):
                entry["lattice"] = [round(float(v), 3) for v in method.predict_lattice(batch["pattern"])[0]]
        if dm is not None and method.serves("retrieval"):
            entry["candidates"] = rank_candidates(
                method, dm, batch["pattern"], pool=pool, elements=wanted, top_k=top_k
            )[0]
            entry["candidate_pool"] = {"dataset": str(dm.cache.name), "pool": pool, "elements": wanted}
        entry["labels"] = {k: v for k, v in pattern.labels.items() if isinstance(v, (int, float, str))}
        out.append(entry)
    return {"file": str(path), "patterns": out}
