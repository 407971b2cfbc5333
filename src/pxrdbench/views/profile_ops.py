"""The rendering op: :class:`Render` turns a PeakBatch into patterns with a profile that is fixed or drawn per
batch by a :class:`SampleProfile` (ranges of the parameters of :mod:`pxrdbench.physics.profiles`)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from pxrdbench.errors import ConfigError
from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.profiles import ProfileParams, render_profiles
from pxrdbench.views.augment import AugmentOp, Range, as_range


@dataclass
class SampleProfile:
    """Draws a :class:`ProfileParams` per batch from ranges (a number = fixed value; None = not used).

    Widths as in :mod:`pxrdbench.physics.profiles` (degrees, deg², Å, dimensionless strain). With
    ``latin_hypercube`` the B draws of every sampled parameter are stratified: one per interval
    [i/B, (i+1)/B) of the unit range, strata shuffled independently per parameter (as DIFCON does).
    """

    shape: str = "pseudo_voigt"
    fwhm_range: Range | None = None
    U_range: Range | None = None
    V_range: Range | None = None
    W_range: Range | None = None
    P_range: Range | None = None
    eta_range: Range | None = None
    size_range: Range | None = None
    strain_range: Range | None = None
    asymmetry_range: Range | None = None
    wavelength_angstrom: float | None = None
    latin_hypercube: bool = False

    def __call__(self, batch: int, generator: torch.Generator | None = None, device="cpu") -> ProfileParams:
        names = [
            f.name for f in fields(self) if f.name.endswith("_range") and getattr(self, f.name) is not None
        ]
        values: dict[str, Tensor] = {}
        where = generator.device if generator is not None else "cpu"
        for name in names:
            rng = as_range(getattr(self, name), f"SampleProfile.{name}")
            unit = torch.rand(batch, generator=generator, device=where, dtype=torch.float64)
            if self.latin_hypercube:
                unit = (torch.randperm(batch, generator=generator, device=where) + unit) / batch
            values[name[: -len("_range")]] = (rng[0] + (rng[1] - rng[0]) * unit).to(device)
        return ProfileParams(
            shape=self.shape, fwhm=values.get("fwhm"), U=values.get("U"), V=values.get("V"),
            W=values.get("W"),
            P=values.get("P"), eta=values.get("eta"), crystallite_size_angstrom=values.get("size"),
            strain=values.get("strain"), asymmetry=values.get("asymmetry", 0.0),
            wavelength_angstrom=self.wavelength_angstrom,
        )  # fmt: skip


class Render(AugmentOp):
    """PeakBatch → Tensor[B, N] on ``grid`` with a fixed ProfileParams or one drawn by a SampleProfile."""

    level = "render"

    def __init__(self, profile: SampleProfile | ProfileParams | dict, **render_options) -> None:
        self.profile = SampleProfile(**profile) if isinstance(profile, dict) else profile
        self.options = render_options

    def apply(self, x: PeakBatch, generator, grid) -> Tensor:
        if grid is None:
            raise ConfigError("Render needs the 2θ grid: call the pipeline with grid=...")
        params = self.profile
        if isinstance(params, SampleProfile):
            params = params(x.batch_size, generator, x.device)
        return render_profiles(x, grid.to(x.device), params, **self.options)
