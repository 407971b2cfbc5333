"""ExperimentalDataModule: measured patterns enter a view (Bragg re-mapping, resampling, masking,
normalisation) with their labels; bad files surface the loaders' errors naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pxrdbench.data.experimental import load_pattern, rruff908_arrays, to_grid
from pxrdbench.data.experimental_datamodule import ExperimentalDataModule
from pxrdbench.errors import ConfigError, InputError, PatternError, WavelengthError
from pxrdbench.physics.wavelength import d_to_two_theta, two_theta_to_d

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "experimental"


def all_batches(dm: ExperimentalDataModule, loader: str = "test") -> list[dict]:
    dm.setup("test")
    return list(getattr(dm, f"{loader}_dataloader")())


def test_rruff908_enters_the_view_with_labels(shared_data, monkeypatch) -> None:
    monkeypatch.setenv("PXRDBENCH_DATA", str(shared_data))
    arrays = rruff908_arrays()
    dm = ExperimentalDataModule("rruff908", "xccp_dual", batch_size=100)
    batches = all_batches(dm)
    assert [len(b["id"]) for b in batches] == [100, 100, 100, 100, 54]
    pattern = torch.cat([b["pattern"] for b in batches])
    mask = torch.cat([b["pattern_mask"] for b in batches])
    assert pattern.shape == (len(arrays.space_group), dm.view.n_points) and torch.isfinite(pattern).all()
    assert torch.cat([b["index"] for b in batches]).tolist() == list(range(len(pattern)))
    grid = dm.view.grid.tensor().double().numpy()
    lo = d_to_two_theta(two_theta_to_d(arrays.two_theta[0], 1.54184), dm.view.wavelength.angstrom)
    assert not mask[:, grid < lo - 0.01].any() and mask[:, grid > lo + 0.01].all()  # 0–5° unmeasured: masked
    torch.testing.assert_close(pattern.amax(dim=1), torch.ones(len(pattern)))
    assert (pattern[~mask] == 0).all()
    cs = torch.cat([b["crystal_system"] for b in batches])
    sg = torch.cat([b["space_group"] for b in batches])
    assert cs.tolist() == arrays.crystal_system.tolist()
    assert sg.tolist() == (arrays.space_group - 1).tolist() and sg.min() >= 0 and sg.max() <= 229
    first = load_pattern(arrays.path)[0]  # the per-file path gives the same values as the batched one
    values, _ = to_grid(first, grid, dm.view.wavelength, normalise="max")
    np.testing.assert_allclose(pattern[0].numpy(), values, atol=1e-5)
    predicted = all_batches(dm, "predict")
    assert torch.equal(torch.cat([b["pattern"] for b in predicted]), pattern)


def test_rietveld_cif_peak_lands_where_braggs_law_puts_it() -> None:
    """NaCl (200) measured at 31.7° with Cu Kα1 (1.540562 Å) moves to 2 asin(λ_view / 2d) on the view."""
    dm = ExperimentalDataModule(FIXTURES / "nacl_cuka1_pdcif.cif", "xccp_dual", batch_size=4)
    (batch,) = all_batches(dm)
    assert batch["id"] == ["pdcif:nacl_cuka1_pdcif"]
    assert batch["crystal_system"].tolist() == [6] and batch["space_group"].tolist() == [225 - 1]
    grid = dm.view.grid.tensor().double().numpy()
    d200 = two_theta_to_d(31.7, 1.540562)
    expected = d_to_two_theta(d200, dm.view.wavelength.angstrom)
    assert abs(grid[int(batch["pattern"][0].argmax())] - expected) <= dm.view.grid.step
    covered = grid[batch["pattern_mask"][0].numpy()]
    low, high = d_to_two_theta(two_theta_to_d(np.array([26.0, 48.0]), 1.540562), dm.view.wavelength.angstrom)
    assert covered.min() >= low and covered.max() <= high and covered.max() - covered.min() > 21.0


def test_binned_view_and_columns_file_need_a_wavelength() -> None:
    path = FIXTURES / "nacl_region.xy"
    with pytest.raises(WavelengthError, match="nacl_region"):
        ExperimentalDataModule(path, "eacnn").setup()
    (batch,) = all_batches(ExperimentalDataModule(path, "eacnn", wavelength="CuKa"))
    assert batch["pattern"].shape == (1, 140) and batch["pattern"].max() == pytest.approx(1.0)
    assert "crystal_system" not in batch and "space_group" not in batch  # a bare xy file has no labels
    assert 5 <= int(batch["pattern_mask"].sum()) <= 7  # 30–33° covers six 0.5° bins (edge bins partly)


@pytest.mark.parametrize(
    "name, message",
    [
        ("bad_nan.xy", "non-finite intensity"),
        ("bad_negative.xy", "negative 2θ"),
        ("bad_not_increasing.xy", "not strictly increasing"),
        ("bad_empty.xy", "empty"),
    ],
)
def test_bad_pattern_files_surface_their_errors(name: str, message: str) -> None:
    dm = ExperimentalDataModule(FIXTURES / name, "xccp_dual", wavelength=1.54184)
    with pytest.raises(PatternError, match=message) as info:
        dm.test_dataloader()
    assert name in str(info.value)


def test_npz_with_wrong_keys_names_the_file_and_keys(tmp_path) -> None:
    path = tmp_path / "patterns.npz"
    np.savez(path, two_theta=np.linspace(5, 90, 10), intensity=np.ones((2, 10)))
    with pytest.raises(PatternError, match=r"missing array key\(s\) \['crystal_system'") as info:
        ExperimentalDataModule(path, "xccp_dual").setup()
    assert str(path) in str(info.value)


def test_unknown_names_and_missing_files_are_clear_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'rruff908'"):
        ExperimentalDataModule("ruff908", "xccp_dual").setup()
    with pytest.raises(InputError, match="file does not exist"):
        ExperimentalDataModule(tmp_path / "missing.xy", "xccp_dual").setup()
    with pytest.raises(ConfigError, match="Did you mean 'xtalnet'"):
        ExperimentalDataModule(FIXTURES / "nacl_region.xy", "xtalnett")
