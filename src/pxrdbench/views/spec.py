"""Views: a method's input specification, as data (``configs/views/<name>.yaml``), and its rendering.

A view fixes the wavelength, the 2θ grid, the augmentation pipelines for training and for evaluation
(peak-level ops, one ``Render`` step that samples the profile model from its ranges, pattern-level ops; see
:mod:`pxrdbench.views.augment`), optional binning, the normalisation, and for token models the peak-picking
rule. :func:`pxrdbench.views.render.render_batch` turns a batch of cached reflections into patterns on the
batch's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from pxrdbench.config import list_configs, load_config
from pxrdbench.errors import ConfigError, did_you_mean
from pxrdbench.physics.wavelength import Wavelength, parse_wavelength

GSAS_SIGMA2_TO_FWHM2 = 8.0 * math.log(2.0) * 1e-4
"""GSAS-II's Caglioti U, V, W give the Gaussian variance σ² in centidegrees²;
FWHM² (deg²) = 8 ln2 · 1e-4 · σ²."""


@dataclass(frozen=True)
class GridSpec:
    """A uniform 2θ grid: ``points`` values from ``start`` to ``stop`` inclusive (degrees)."""

    start: float
    stop: float
    points: int

    @property
    def step(self) -> float:
        return (self.stop - self.start) / (self.points - 1)

    def tensor(self, device: torch.device | str = "cpu") -> Tensor:
        return torch.linspace(self.start, self.stop, self.points, dtype=torch.float64, device=device).float()


@dataclass(frozen=True)
class ViewSpec:
    """One method's input specification (see ``configs/views/*.yaml`` for the fields, with their sources)."""

    name: str
    wavelength: Wavelength
    grid: GridSpec
    pipeline: list[dict[str, Any]]
    eval_pipeline: list[dict[str, Any]]
    normalise: dict[str, Any] = field(default_factory=lambda: {"mode": "max", "scale": 1.0})
    doublet: bool = False
    max_peaks: int = 1024
    bin_factor: int = 1
    split_two_theta: float | None = None
    peak_tokens: dict[str, Any] | None = None
    description: str = ""

    @property
    def n_points(self) -> int:
        """Length of the pattern the model sees (after binning)."""
        return self.grid.points // self.bin_factor

    @property
    def d_min(self) -> float:
        """Smallest d (Å) any line of the source can place on the grid, with a 1 % margin for shifts:
        d_min = λ_min / (2 sin θ_max), θ_max = min(1.01 · 2θ_stop, 179°) / 2 (the shortest line reaches the
        smallest d; the intensity-weighted mean used without doublets is longer, so it is covered too)."""
        lam = min(lam for lam, _ in self.wavelength.lines)
        theta = math.radians(min(self.grid.stop * 1.01, 179.0) / 2.0)
        return lam / (2.0 * math.sin(theta))

    @property
    def split_index(self) -> int | None:
        """Index of the first model-input point at or above ``split_two_theta`` (dual-expert encoders)."""
        if self.split_two_theta is None:
            return None
        step = self.grid.step * self.bin_factor
        start = self.grid.start + (self.bin_factor - 1) * self.grid.step / 2.0
        return max(0, math.ceil((self.split_two_theta - start) / step - 1e-9))

    @cached_property
    def _pipelines(self) -> dict[bool, Any]:
        from pxrdbench.views.pipeline import build_pipeline

        return {True: build_pipeline(self._with_wavelength(self.pipeline)),
                False: build_pipeline(self._with_wavelength(self.eval_pipeline))}  # fmt: skip

    def _with_wavelength(self, spec: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Give every Render step the view's wavelength (Scherrer size broadening; the target of a
        ``reference_wavelength``), and every step with a ``reference_wavelength`` (ZeroShift) too."""
        from pxrdbench.views.perturbations import with_wavelength

        return with_wavelength(spec, self.wavelength.angstrom)

    def build_pipeline(self, train: bool) -> Any:
        """The compiled augmentation pipeline (peaks → Render → pattern ops) for training or evaluation."""
        return self._pipelines[train]


def load_view(name: str) -> ViewSpec:
    """Read ``configs/views/<name>.yaml`` (unknown names say "did you mean")."""
    cfg = load_config("views", name)
    return view_from_dict(cfg, source=f"configs/views/{name}.yaml")


def list_views() -> list[str]:
    return list_configs("views")


def view_from_dict(cfg: dict[str, Any], source: str = "view") -> ViewSpec:
    """Build a :class:`ViewSpec` from a config mapping, checking the fields."""
    known = set(ViewSpec.__dataclass_fields__)
    unknown = set(cfg) - known
    if unknown:
        raise ConfigError(f"{source}: unknown view fields {sorted(unknown)}; known: {sorted(known)}")
    cfg = dict(cfg)
    try:
        grid = GridSpec(float(cfg["grid"]["start"]), float(cfg["grid"]["stop"]), int(cfg["grid"]["points"]))
        cfg["wavelength"] = parse_wavelength(cfg["wavelength"], source=f"{source}: wavelength")
    except KeyError as exc:
        raise ConfigError(f"{source}: missing field {exc}") from exc
    if grid.points < 2 or grid.stop <= grid.start:
        raise ConfigError(f"{source}: grid needs >= 2 points and stop > start")
    cfg["grid"] = grid
    if cfg.get("eval_pipeline") in (None, "same"):
        cfg["eval_pipeline"] = cfg.get("pipeline")
    for key in ("pipeline", "eval_pipeline"):
        if isinstance(cfg.get(key), dict) and "perturbation_set" in cfg[key]:
            from pxrdbench.views.perturbations import PERTURBATION_SETS

            name = cfg[key]["perturbation_set"]
            if name not in PERTURBATION_SETS:
                raise did_you_mean(str(name), list(PERTURBATION_SETS), "perturbation set")
            cfg[key] = PERTURBATION_SETS[name]["pipeline"]
    for key in ("pipeline", "eval_pipeline"):
        steps = cfg.get(key) or []
        if sum(1 for st in steps if isinstance(st, dict) and st.get("op") == "Render") != 1:
            raise ConfigError(f"{source}: {key} needs exactly one Render step (peaks -> pattern)")
    if int(cfg.get("bin_factor", 1)) < 1 or grid.points % int(cfg.get("bin_factor", 1)):
        raise ConfigError(f"{source}: bin_factor must divide grid.points")
    return ViewSpec(**cfg)


def required_d_min(view_names: list[str] | None = None) -> float:
    """The smallest d any of the given (default: all registered) views needs — what the cache must hold."""
    return min(load_view(n).d_min for n in (view_names or list_views()))
