"""Named perturbation sets for robustness tests and for views that borrow a published pipeline.

Each set is data: ``source`` (the paper and table), ``wavelength``, ``units`` (in words, what its angles
and widths are measured in; :func:`perturbation_units`), ``grid`` ((start, stop, points) or None for the
view's own grid) and ``pipeline`` (a :func:`pxrdbench.views.pipeline.build_pipeline` spec applied to peaks).

XCCP sets (paper 000, Table 4) are fixed: a constant Gaussian FWHM and optionally a constant zero shift, both
in degrees 2θ at Cu Kα (λ_Cu = 1.54184 Å), carried peak by peak through d to the wavelength λ of the view
they are applied to, so a set is the same perturbation in d on every view:

- width: Γ = Γ_Cu · tanθ / tanθ_Cu (degrees 2θ), sinθ_Cu = λ_Cu/(2d), sinθ = λ/(2d): the same relative
  width Δd/d = (Γ_Cu/2)·cotθ_Cu (Γ_Cu in rad) at every wavelength (exact to first order in the width;
  ``Render(reference_wavelength=...)``, :func:`pxrdbench.physics.widths.reference_theta`);
- zero shift δ: applied to 2θ_Cu, then d' = λ_Cu/(2 sin((2θ_Cu + δ)/2)) and 2θ' = 2 asin(λ/(2d'))
  (``ZeroShift(reference_wavelength=...)``, :func:`pxrdbench.views.augment.shift_through_d`);
- peaks with d < λ_Cu/2 (not observable at Cu Kα, possible on short-wavelength views) are not converted:
  they keep the Cu Kα FWHM in the view's own 2θ and are not shifted.

On a Cu Kα view (λ = 1.54184 Å) both conversions are the identity. For doublet views the peaks of every
line are converted with the view's mean λ (an error of the order of the doublet splitting in d).

DIFCON sets (paper 002, Table 1) are stated in the view's own 2θ (no conversion); they split each published
union range into a training part and a disjoint invariance-test part (see ``_DIFCON``).
"""

from __future__ import annotations

import copy
from typing import Any

from pxrdbench.errors import did_you_mean
from pxrdbench.views.augment import Compose
from pxrdbench.views.pipeline import build_pipeline

CU_KA_ANGSTROM = 1.54184
"""XCCP's wavelength (Cu Kα, Å): the 2θ axis its FWHM and zero shift are stated on."""
XCCP_UNITS = "2θ at Cu Kα (1.54184 Å), converted through d to each view's wavelength"
VIEW_UNITS = "the view's own 2θ"


def _xccp(fwhm: float, shift: float) -> dict[str, Any]:
    """An XCCP robustness set: Gaussian FWHM ``fwhm`` and zero shift ``shift`` (0 = none), both in degrees 2θ at
    Cu Kα, converted through d to the view's wavelength (module docstring)."""
    ref = {"reference_wavelength": CU_KA_ANGSTROM}
    pipeline = [{"op": "ZeroShift", "range_deg": shift, **ref}] if shift else []
    pipeline += [{"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": fwhm}, **ref}]
    pipeline += [{"op": "Normalise"}]
    return {
        "source": "XCCP (paper 000) Table 4",
        "wavelength": str(CU_KA_ANGSTROM),
        "units": XCCP_UNITS,
        "grid": None,
        "pipeline": pipeline,
    }


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
        "units": VIEW_UNITS,
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
"""Named perturbations for robustness tests: ``source``, ``wavelength``, ``units``, ``grid`` ((start, stop,
points) or None = the view's grid) and ``pipeline`` (a :func:`build_pipeline` spec applied to peaks).

XCCP sets are fixed (constant Gaussian FWHM, constant zero shift at FWHM 0.1°; degrees 2θ at Cu Kα, carried
through d to the view's wavelength). The DIFCON
paper says train and invariance-test ranges do not overlap but publishes only their union; here each
union is split into an inner/lower part (train) and an outer/upper part (invariance). Caglioti U, V, W,
P (deg²) are chosen so FWHM stays within Table 1's 0.005–0.05° over 0–120°; ρ ≥ 0.5 at test time."""


def _known(name: str) -> dict[str, Any]:
    if name not in PERTURBATION_SETS:
        raise did_you_mean(name, list(PERTURBATION_SETS), "perturbation set")
    return PERTURBATION_SETS[name]


def perturbation_units(name: str) -> str:
    """What a named set's angles and widths are measured in, in words (for tables); unknown → ConfigError."""
    return str(_known(name)["units"])


def with_wavelength(spec: list[dict[str, Any]], wavelength_angstrom: float) -> list[dict[str, Any]]:
    """A copy of a pipeline spec with the view's λ (Å) given to every ``Render`` profile (Scherrer; the
    target of a ``reference_wavelength``) and to every other step that has a ``reference_wavelength``
    (``ZeroShift``); values already set are kept."""
    out = copy.deepcopy(list(spec))
    for step in out:
        if step.get("op") == "Render":
            step["profile"] = dict(step.get("profile", {}))
            step["profile"].setdefault("wavelength_angstrom", float(wavelength_angstrom))
        elif step.get("reference_wavelength") is not None:
            step.setdefault("wavelength_angstrom", float(wavelength_angstrom))
    return out


def perturbation_pipeline(name: str, wavelength_angstrom: float | None = None) -> Compose:
    """The Compose of a named perturbation set for peaks at ``wavelength_angstrom`` (Å, the view's); unknown
    names → ConfigError with close matches. None: the peaks are at the set's own wavelength, so sets stated
    at a reference wavelength (XCCP) are applied without conversion."""
    spec = _known(name)["pipeline"]
    if wavelength_angstrom is None:
        refs = [s["reference_wavelength"] for s in spec if s.get("reference_wavelength") is not None]
        if not refs:
            return build_pipeline(spec)
        wavelength_angstrom = refs[0]
    return build_pipeline(with_wavelength(spec, wavelength_angstrom))
