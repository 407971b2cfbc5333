"""Named perturbation sets for robustness tests and for views that borrow a published pipeline.

Each set is data: ``source`` (the paper and table), ``wavelength``, ``grid`` ((start, stop, points) or
None for the view's own grid) and ``pipeline`` (a :func:`pxrdbench.views.pipeline.build_pipeline` spec
applied to peaks). XCCP sets (paper 000, Table 4) are fixed: a constant Gaussian FWHM (degrees) and
optionally a constant zero shift (degrees). DIFCON sets (paper 002, Table 1) split each published union
range into a training part and a disjoint invariance-test part (see ``_DIFCON``).
"""

from __future__ import annotations

from typing import Any

from pxrdbench.errors import did_you_mean
from pxrdbench.views.augment import Compose
from pxrdbench.views.pipeline import build_pipeline


def _xccp(fwhm: float, shift: float) -> dict[str, Any]:
    """An XCCP robustness set: Gaussian FWHM ``fwhm`` (degrees), zero shift ``shift`` (degrees, 0 = none)."""
    pipeline = [{"op": "ZeroShift", "range_deg": shift}] if shift else []
    pipeline += [{"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": fwhm}}, {"op": "Normalise"}]
    return {"source": "XCCP (paper 000) Table 4", "wavelength": "1.54184", "grid": None, "pipeline": pipeline}


_DIFCON = {  # (op, parameter): (training range, invariance-test range), each inside paper 002 Table 1's range
    ("ZeroShift", "range_deg"): ((0.0, 0.01), (0.01, 0.02)),
    ("PeakJitter", "sigma_deg"): ((0.0, 0.0025), (0.0025, 0.005)),
    ("PeakCrop", "low_range"): ((0.0, 0.1), (0.1, 0.2)),
    ("PeakCrop", "high_range"): ((110.0, 120.0), (100.0, 110.0)),
    ("IntensityNoise", "rel_sigma"): ((0.0, 0.0025), (0.0025, 0.005)),
    ("ImpurityPeaks", "count_range"): ((0, 3), (4, 6)),
    ("ImpurityPeaks", "rel_height"): ((0.01, 0.03), (0.03, 0.05)),
    ("Render", "U_range"): ((0.0, 1e-4), (1e-4, 2e-4)),
    ("Render", "V_range"): ((-2e-5, 0.0), (-4e-5, -2e-5)),
    ("Render", "W_range"): ((2.5e-5, 4e-4), (4e-4, 6e-4)),
    ("Render", "P_range"): ((0.0, 5e-5), (5e-5, 1e-4)),
    ("Render", "eta_range"): ((0.0, 0.5), (0.5, 1.0)),
    ("Render", "asymmetry_range"): ((-0.5, 0.5), (0.5, 0.9)),
    ("WhiteNoise", "sigma_rel"): ((0.0, 0.025), (0.025, 0.05)),
    ("EdgeCrop", "low_range"): ((0.0, 12.0), (12.0, 24.0)),
    ("EdgeCrop", "high_range"): ((110.0, 120.0), (100.0, 110.0)),
}


def _difcon(test: bool) -> dict[str, Any]:
    """The DIFCON pipeline with the training (``test=False``) or invariance-test (``test=True``) ranges."""
    r = {key: value[int(test)] for key, value in _DIFCON.items()}
    profile = {name: r["Render", name] for (op, name) in _DIFCON if op == "Render"}
    pipeline = [
        {"op": "ZeroShift", "range_deg": r["ZeroShift", "range_deg"], "random_sign": True},
        {"op": "PeakJitter", "sigma_deg": r["PeakJitter", "sigma_deg"], "distribution": "uniform"},
        {"op": "EdgeCrop", "low_range": r["PeakCrop", "low_range"],
         "high_range": r["PeakCrop", "high_range"]},
        {"op": "IntensityNoise", "rel_sigma": r["IntensityNoise", "rel_sigma"], "distribution": "uniform"},
        {"op": "ImpurityPeaks", "count_range": r["ImpurityPeaks", "count_range"],
         "rel_height": r["ImpurityPeaks", "rel_height"], "two_theta_range": (0.0, 120.0)},
        {"op": "Render", "profile": {"shape": "pseudo_voigt", "latin_hypercube": True, **profile}},
        {"op": "WhiteNoise", "sigma_rel": r["WhiteNoise", "sigma_rel"], "distribution": "uniform"},
        {"op": "EdgeCrop", "low_range": r["EdgeCrop", "low_range"],
         "high_range": r["EdgeCrop", "high_range"]},
        {"op": "Normalise", "mode": "max"},
    ]  # fmt: skip
    grid = (0.005, 119.995, 12000)  # 12,000 bins of 0.01°, centres 0.01·(j − 1) + 0.005
    return {
        "source": "DIFCON (paper 002) Table 1",
        "wavelength": "1.5418",
        "grid": grid,
        "pipeline": pipeline,
    }


PERTURBATION_SETS: dict[str, dict[str, Any]] = {
    **{f"fwhm_{w}": _xccp(w, 0.0) for w in (0.1, 0.2, 0.3, 0.5)},
    "shift_+0.1": _xccp(0.1, 0.1),
    "shift_+0.5": _xccp(0.1, 0.5),
    "difcon_train": _difcon(test=False),
    "difcon_invariance": _difcon(test=True),
}
"""Named perturbations for robustness tests: ``source``, ``wavelength``, ``grid`` ((start, stop, points)
or None = the view's grid) and ``pipeline`` (a :func:`build_pipeline` spec applied to peaks).

XCCP sets are fixed (constant Gaussian FWHM in degrees, constant zero shift at FWHM 0.1°). The DIFCON
paper says train and invariance-test ranges do not overlap but publishes only their union; here each
union is split into an inner/lower part (train) and an outer/upper part (invariance). Caglioti U, V, W,
P (deg²) are chosen so FWHM stays within Table 1's 0.005–0.05° over 0–120°; ρ ≥ 0.5 at test time."""


def perturbation_pipeline(name: str) -> Compose:
    """The Compose of a named perturbation set; unknown names → ConfigError with close matches."""
    if name not in PERTURBATION_SETS:
        raise did_you_mean(name, list(PERTURBATION_SETS), "perturbation set")
    return build_pipeline(PERTURBATION_SETS[name]["pipeline"])
