"""View specs: every config loads with the documented shape, d_min follows Bragg's law, bad names and
fields are clear ConfigErrors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pxrdbench.data.entry import BuildParams
from pxrdbench.errors import ConfigError
from pxrdbench.physics.wavelength import d_to_two_theta
from pxrdbench.views.spec import list_views, load_view, required_d_min, view_from_dict

EXPECTED = {  # name: (model-input points, wavelength Å, grid start°, grid stop°, split index)
    "alphadiffract": (8192, 0.61992, 5.0, 20.0, None),
    "difcon": (12000, 1.5418, 0.005, 119.995, None),
    "eacnn": (140, 1.54184, 10.025, 79.975, None),
    "xccp_dual": (4000, 1.54184, 0.0, 79.98, 500),
    "xtalnet": (3851, 1.54184, 3.0, 80.0, None),
}


def minimal_view(**changes) -> dict:
    """A small valid view mapping, with ``changes`` applied."""
    cfg = {
        "name": "tiny",
        "wavelength": "CuKa",
        "grid": {"start": 10.0, "stop": 80.0, "points": 701},
        "pipeline": [{"op": "Render", "profile": {"shape": "gaussian", "fwhm_range": 0.1}}],
        "eval_pipeline": "same",
    }
    cfg.update(changes)
    return cfg


def test_every_view_config_is_listed_and_expected() -> None:
    assert set(list_views()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_view_loads_with_documented_grid(name: str) -> None:
    points, lam, start, stop, split = EXPECTED[name]
    view = load_view(name)
    assert view.name == name
    assert view.n_points == points
    assert view.wavelength.angstrom == pytest.approx(lam, rel=2e-4)
    assert (view.grid.start, view.grid.stop) == pytest.approx((start, stop))
    assert view.split_index == split
    assert view.build_pipeline(True) is not None and view.build_pipeline(False) is not None


def test_xccp_split_index_is_the_first_point_at_ten_degrees() -> None:
    view = load_view("xccp_dual")
    grid = view.grid.tensor().double().numpy()
    assert grid[view.split_index] == pytest.approx(10.0, abs=1e-4)
    assert grid[view.split_index - 1] < 10.0


def test_eacnn_bins_are_half_degree_means() -> None:
    view = load_view("eacnn")
    fine = view.grid.tensor().double().numpy()
    centres = fine.reshape(view.n_points, view.bin_factor).mean(axis=1)
    np.testing.assert_allclose(np.diff(centres), 0.5, atol=1e-5)
    assert centres[0] == pytest.approx(10.25, abs=1e-5) and centres[-1] == pytest.approx(79.75, abs=1e-5)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_d_min_follows_braggs_law(name: str) -> None:
    """d_min = λ_min / (2 sin θ_max): a reflection at d_min lands 1 % beyond the grid's end, so every
    reflection whose peak can fall on the grid is kept, and nothing far outside is."""
    view = load_view(name)
    lam_min = min(lam for lam, _ in view.wavelength.lines)
    two_theta = float(d_to_two_theta(view.d_min, lam_min))
    assert two_theta == pytest.approx(min(view.grid.stop * 1.01, 179.0), rel=1e-9)
    for lam, _ in view.wavelength.lines:  # every line puts the smallest kept d at or beyond the grid's end
        assert d_to_two_theta(view.d_min, lam) >= view.grid.stop


def test_d_min_of_a_doublet_uses_the_shorter_line() -> None:
    view = view_from_dict(minimal_view(doublet=True))
    (ka1, _), (ka2, _) = sorted(view.wavelength.lines)
    theta = math.radians(80.0 * 1.01 / 2)
    assert view.d_min == pytest.approx(ka1 / (2 * math.sin(theta)))
    assert view.d_min < ka2 / (2 * math.sin(theta))


def test_cache_holds_every_view_d_range() -> None:
    """The cache's default d_min must not cut reflections any registered view can show."""
    assert BuildParams().d_min <= required_d_min()
    assert required_d_min() == pytest.approx(min(load_view(n).d_min for n in EXPECTED))


def test_unknown_view_name_suggests_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown view 'xtalnett'.*Did you mean 'xtalnet'"):
        load_view("xtalnett")


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"colour": "red"}, r"unknown view fields \['colour'\]"),
        ({"grid": {"start": 10.0, "stop": 5.0, "points": 100}}, "stop > start"),
        ({"grid": {"start": 10.0, "stop": 80.0}}, "missing field 'points'"),
        ({"bin_factor": 3}, "bin_factor must divide"),
        ({"pipeline": [{"op": "WhiteNoise"}]}, "exactly one Render step"),
        ({"pipeline": {"perturbation_set": "difcon_trian"}}, "Did you mean 'difcon_train'"),
    ],
    ids=["unknown-field", "empty-grid", "missing-points", "bad-bin", "no-render", "bad-perturbation-set"],
)
def test_invalid_view_fields_are_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        view_from_dict(minimal_view(**changes), source="tiny.yaml")


def test_perturbation_set_views_get_distinct_train_and_eval_pipelines() -> None:
    view = load_view("difcon")
    assert repr(view.build_pipeline(True)) == repr(view.build_pipeline(False))  # same ops ...
    assert view.pipeline != view.eval_pipeline  # ... with the disjoint train / invariance ranges
