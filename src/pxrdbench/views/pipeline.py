"""Augmentation pipelines from configs: :data:`OPS` (every op by its config name) and :func:`build_pipeline`."""

from __future__ import annotations

from collections.abc import Sequence

from pxrdbench.errors import ConfigError, did_you_mean
from pxrdbench.views.augment import (
    AugmentOp,
    Compose,
    EdgeCrop,
    ImpurityPeaks,
    IntensityNoise,
    Normalise,
    PeakJitter,
    PoissonGaussianNoise,
    PreferredOrientation,
    SmoothBackground,
    WhiteNoise,
    ZeroShift,
)
from pxrdbench.views.profile_ops import Render

OPS: dict[str, type[AugmentOp]] = {
    cls.__name__: cls
    for cls in (ZeroShift, PeakJitter, IntensityNoise, ImpurityPeaks, PreferredOrientation, Render)
    + (SmoothBackground, PoissonGaussianNoise, WhiteNoise, EdgeCrop, Normalise)
}
"""Augmentation ops by the name used in configs (``{"op": "ZeroShift", "range_deg": [0, 0.1]}``)."""


def build_pipeline(spec: Sequence[dict]) -> Compose:
    """A Compose from config dicts ``{"op": name, **params}``; unknown names or params → ConfigError."""
    ops = []
    for i, entry in enumerate(spec):
        params = dict(entry)
        name = params.pop("op", None)
        if name not in OPS:
            if name is None:
                raise ConfigError(f"augmentation step {i}: missing 'op' (one of {', '.join(sorted(OPS))})")
            raise did_you_mean(str(name), list(OPS), "augmentation op")
        try:
            ops.append(OPS[name](**params))
        except TypeError as exc:
            raise ConfigError(f"augmentation step {i} ({name}): {exc}") from exc
    return Compose(ops)
