"""Tests for the augmentation ops: each changes what it should, reproducibly, within its ranges."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from pxrdbench.errors import ConfigError, PatternError
from pxrdbench.physics.peak_batch import PeakBatch
from pxrdbench.physics.profiles import ProfileParams, render_profiles
from pxrdbench.views.augment import (
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
from pxrdbench.views.perturbations import PERTURBATION_SETS, perturbation_pipeline
from pxrdbench.views.pipeline import OPS, build_pipeline
from pxrdbench.views.profile_ops import Render, SampleProfile

GRID = torch.linspace(10.0, 90.0, 4001)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def peaks(b: int = 4, p: int = 10, with_cos: bool = True) -> PeakBatch:
    g = gen(123)
    intensity = torch.rand(b, p, generator=g) + 0.1
    intensity[:, -2:] = 0.0  # padding
    cos = torch.rand(b, p, generator=g) * 2 - 1 if with_cos else None
    return PeakBatch(20 + 60 * torch.rand(b, p, generator=g), intensity, cos)


def patterns() -> torch.Tensor:
    return render_profiles(peaks(), GRID, ProfileParams(fwhm=0.2, eta=0.5)) * 100


PEAK_OPS = [ZeroShift(), PeakJitter(0.01), IntensityNoise(0.1), ImpurityPeaks(two_theta_range=(20, 80))]
PEAK_OPS += [PreferredOrientation((0.5, 0.9)), EdgeCrop((0, 40), (60, 90))]
PATTERN_OPS = [
    SmoothBackground(),
    PoissonGaussianNoise(),
    WhiteNoise(0.02),
    EdgeCrop((20, 40), (60, 80)),
    Normalise(),
]


@pytest.mark.parametrize(
    "op", PEAK_OPS + PATTERN_OPS + [Render(SampleProfile(fwhm_range=(0.05, 0.2), eta_range=(0, 1)))]
)
def test_seeded_reproducible_shape_and_dtype(op) -> None:
    x = patterns() if op in PATTERN_OPS else peaks()
    a, b, c = op(x, gen(1), GRID), op(x, gen(1), GRID), op(x, gen(2), GRID)
    if isinstance(a, PeakBatch):
        assert torch.equal(a.two_theta, b.two_theta) and torch.equal(a.intensity, b.intensity)
        assert a.intensity.dtype == x.intensity.dtype and a.batch_size == x.batch_size
        assert not (torch.equal(a.two_theta, c.two_theta) and torch.equal(a.intensity, c.intensity))
    else:
        assert torch.equal(a, b) and a.dtype == torch.float32 and a.shape[0] == 4
        if not isinstance(op, Normalise):
            assert not torch.equal(a, c)


def test_zero_shift_moves_all_peaks_of_a_pattern_by_one_offset() -> None:
    x = peaks()
    y = ZeroShift((0.05, 0.1))(x, gen())
    delta = y.two_theta - x.two_theta
    assert torch.allclose(delta, delta[:, :1].expand_as(delta), atol=1e-5)
    assert float(delta.min()) >= 0.05 - 1e-5 and float(delta.max()) <= 0.1 + 1e-5
    assert torch.equal(y.intensity, x.intensity)
    signed = ZeroShift((0.05, 0.1), random_sign=True)(peaks(64), gen()).two_theta - peaks(64).two_theta
    assert bool((signed[:, 0] < 0).any()) and bool((signed[:, 0] > 0).any())
    assert float(signed.abs().min()) >= 0.05 - 1e-5


def test_jitter_and_intensity_noise_touch_only_their_field() -> None:
    x = peaks()
    jit = PeakJitter(0.01)(x, gen())
    assert torch.equal(jit.intensity, x.intensity) and not torch.equal(jit.two_theta, x.two_theta)
    assert float((jit.two_theta - x.two_theta).std()) == pytest.approx(0.01, rel=0.3)
    box = PeakJitter(0.01, distribution="uniform")(x, gen())
    assert float((box.two_theta - x.two_theta).abs().max()) <= 0.01 + 1e-5
    noisy = IntensityNoise(2.0)(x, gen())
    assert torch.equal(noisy.two_theta, x.two_theta) and float(noisy.intensity.min()) >= 0.0
    assert torch.equal(noisy.intensity[:, -2:], x.intensity[:, -2:])  # padding stays 0


def test_impurity_peaks_are_appended_within_ranges() -> None:
    x = peaks(32)
    y = ImpurityPeaks((0, 6), (0.01, 0.05), (30.0, 40.0))(x, gen())
    assert y.n_slots == x.n_slots + 6 and torch.equal(y.intensity[:, :10], x.intensity)
    new_i, new_t = y.intensity[:, 10:], y.two_theta[:, 10:]
    counts = (new_i > 0).sum(1)
    assert int(counts.min()) >= 0 and int(counts.max()) <= 6 and len(set(counts.tolist())) > 1
    rel = new_i / x.intensity.amax(1, keepdim=True)
    assert float(rel[new_i > 0].min()) >= 0.01 - 1e-6 and float(rel.max()) <= 0.05 + 1e-6
    assert float(new_t.min()) >= 30.0 and float(new_t.max()) <= 40.0
    assert bool(torch.isnan(y.hkl_cos[:, 10:]).all())


def test_march_dollase_identity_at_r1_and_formula() -> None:
    x = peaks()
    assert torch.allclose(PreferredOrientation(1.0)(x, gen()).intensity, x.intensity)
    r = 0.6
    y = PreferredOrientation(r)(x, gen())
    cos2 = x.hkl_cos**2
    expected = x.intensity * (r**2 * cos2 + (1 - cos2) / r) ** -1.5
    assert torch.allclose(y.intensity, expected, rtol=1e-5)
    c = torch.linspace(0, 1, 20001, dtype=torch.float64)
    mean = ((r**2 * c**2 + (1 - c**2) / r) ** -1.5).mean()
    assert float(mean) == pytest.approx(1.0, rel=1e-3)  # normalised over the sphere (uniform in cos α)
    bare = peaks(with_cos=False)
    op = PreferredOrientation(0.5)
    with pytest.warns(UserWarning, match="hkl_cos"):
        out = op(bare, gen())
    assert out is bare
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        op(bare, gen())  # warns only once


def test_edge_crop_zeroes_outside_window_only() -> None:
    y = patterns()
    out = EdgeCrop((20.0, 30.0), (60.0, 70.0))(y, gen(), GRID)
    for row in range(4):
        inside = out[row] != 0
        kept = GRID[inside]
        assert float(kept.min()) >= 20.0 and float(kept.max()) <= 70.0
        assert torch.equal(out[row][inside], y[row][inside])
    with pytest.raises(ConfigError):
        EdgeCrop()(y, gen())


def test_background_white_noise_and_normalise() -> None:
    y = patterns()
    bg = SmoothBackground(degree=3, amplitude=(0.2, 0.2))(y, gen())
    added = bg - y
    assert float(added.min()) >= -1e-4
    assert torch.allclose(added.amax(1), 0.2 * y.amax(1), rtol=1e-4)
    assert float(torch.diff(added, n=2, dim=1).abs().max()) < 1e-3 * float(y.max())  # smooth
    wn = WhiteNoise(0.01)(y, gen()) - y
    assert float(wn.std()) == pytest.approx(0.01 * float(y.amax(1).mean()), rel=0.2)
    norm = Normalise(scale=100)(y, gen())
    assert torch.allclose(norm.amax(1), torch.full((4,), 100.0))
    mm = Normalise("minmax")(y - 5, gen())
    assert torch.allclose(mm.amin(1), torch.zeros(4)) and torch.allclose(mm.amax(1), torch.ones(4))


def test_poisson_gaussian_noise_keeps_range_and_shrinks_with_lambda() -> None:
    y = patterns()
    out = PoissonGaussianNoise((50.0, 50.0), (0.01, 0.01))(y, gen())
    span_in = PoissonGaussianNoise((50.0, 50.0), (0.0, 0.0))(y, gen())
    assert torch.allclose(out.amax(1) - out.amin(1), span_in.amax(1) - span_in.amin(1), rtol=1e-4)  # eq. 3
    levels = []
    for lam in (2.0, 20.0, 200.0):
        noisy = PoissonGaussianNoise((lam, lam), (0.0, 0.0))(y, gen())
        levels.append(float(((noisy - y) / y.amax(1, keepdim=True)).std()))
    assert levels[0] > levels[1] > levels[2]
    assert levels[1] == pytest.approx(levels[0] / math.sqrt(10), rel=0.5)  # Poisson: ∝ 1/sqrt(λ_max)
    zero = torch.zeros(2, 50)
    assert torch.equal(PoissonGaussianNoise()(zero, gen()), zero)


def test_sample_profile_ranges_and_latin_hypercube() -> None:
    sampler = SampleProfile(W_range=(1e-4, 4e-4), eta_range=(0.2, 0.4), asymmetry_range=(-0.5, 0.5))
    params = sampler(64, gen())
    assert isinstance(params, ProfileParams) and params.W.shape == (64,)
    assert float(params.eta.min()) >= 0.2 and float(params.eta.max()) <= 0.4
    lhs = SampleProfile(fwhm_range=(0.0, 1.0), eta_range=0.5, latin_hypercube=True)(10, gen())
    strata = torch.floor(lhs.fwhm * 10).sort().values
    assert torch.equal(strata, torch.arange(10, dtype=strata.dtype))  # one draw per stratum
    assert torch.equal(
        lhs.fwhm, SampleProfile(fwhm_range=(0.0, 1.0), eta_range=0.5, latin_hypercube=True)(10, gen()).fwhm
    )


def test_build_pipeline_and_errors() -> None:
    spec = [
        {"op": "ZeroShift", "range_deg": [0.1, 0.1]},
        {"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": 0.1}},
        {"op": "Normalise", "scale": 100},
    ]
    pipe = build_pipeline(spec)
    out = pipe(peaks(), gen(), GRID)
    assert out.shape == (4, 4001) and torch.allclose(out.amax(1), torch.full((4,), 100.0))
    with pytest.raises(ConfigError, match="Did you mean 'ZeroShift'"):
        build_pipeline([{"op": "ZeroShfit"}])
    with pytest.raises(ConfigError, match="step 0"):
        build_pipeline([{"op": "ZeroShift", "sigma": 1}])
    with pytest.raises(PatternError):
        Normalise()(peaks(), gen())
    assert "PoissonGaussianNoise" in OPS


def test_perturbation_sets_are_well_formed_and_deterministic() -> None:
    assert {"fwhm_0.1", "fwhm_0.2", "fwhm_0.3", "fwhm_0.5", "shift_+0.1", "shift_+0.5"} <= set(
        PERTURBATION_SETS
    )
    x = peaks()
    shifted = perturbation_pipeline("shift_+0.5")(x, gen(5), GRID)
    reference = render_profiles(
        x.with_(two_theta=x.two_theta + 0.5), GRID, ProfileParams("gaussian", fwhm=0.1)
    )
    assert torch.allclose(shifted, reference / reference.amax(1, keepdim=True), atol=1e-5)
    assert torch.equal(shifted, perturbation_pipeline("shift_+0.5")(x, gen(6), GRID))  # fixed: seed-free
    train = {str(s) for s in PERTURBATION_SETS["difcon_train"]["pipeline"]}
    test = {str(s) for s in PERTURBATION_SETS["difcon_invariance"]["pipeline"]}
    assert train != test
    grid = torch.linspace(0.005, 119.995, 12000)
    wide = PeakBatch(5 + 100 * torch.rand(2, 20, generator=gen()), torch.rand(2, 20, generator=gen()))
    for name in ("difcon_train", "difcon_invariance"):
        out = perturbation_pipeline(name)(wide, gen(), grid)
        assert out.shape == (2, 12000) and torch.allclose(out.amax(1), torch.ones(2))
    with pytest.raises(ConfigError, match="Did you mean"):
        perturbation_pipeline("fwhm_0.4")
