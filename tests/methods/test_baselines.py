"""Majority-class and pattern nearest-neighbour baselines: fitting, batch-in predictions, chunked search, and
their registered configs."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from pxrdbench.errors import ConfigError, InputError
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.baselines import MajorityBaseline, PatternNNBaseline
from pxrdbench.methods.registry import create_method, method_info

pytestmark = pytest.mark.filterwarnings(
    "ignore::UserWarning", "ignore::DeprecationWarning:lightning.pytorch.cli"
)


def batches_of(
    patterns: torch.Tensor, size: int = 4, **labels: torch.Tensor
) -> list[dict[str, torch.Tensor]]:
    """Split patterns and labels into batch-contract dicts."""
    out = []
    for start in range(0, len(patterns), size):
        batch = {"pattern": patterns[start : start + size]}
        batch.update({key: value[start : start + size] for key, value in labels.items()})
        out.append(batch)
    return out


def test_majority_picks_the_mode_and_the_median_lattice() -> None:
    cs = torch.tensor([3, 3, 1, 3, 6, 1, -1, -1])  # mode 3 (missing labels ignored)
    sg = torch.tensor([10, 20, 20, 10, -1, 30, 30, 30])  # 30 three times
    lattice = torch.tensor(
        [
            [4.0, 5, 6, 90, 90, 90],
            [5, 6, 7, 90, 100, 90],
            [6, 7, 8, 90, 110, 120],
            [-1, -1, -1, -1, -1, -1],
            [7, 8, 9, 80, 90, 90],
        ]
        + [[8.0, 9, 10, 90, 90, 90]] * 3
    )
    baseline = MajorityBaseline().fit(
        batches_of(torch.rand(8, 16), crystal_system=cs, space_group=sg, lattice=lattice)
    )
    probs = baseline.predict_proba({"pattern": torch.rand(5, 16)})
    assert set(probs) == {"crystal_system", "space_group"}
    assert probs["crystal_system"].shape == (5, 7) and probs["space_group"].shape == (5, 230)
    assert (probs["crystal_system"].argmax(1) == 3).all() and (probs["space_group"].argmax(1) == 30).all()
    assert torch.equal(probs["crystal_system"].sum(1), torch.ones(5))
    # lower median (torch) over the 7 valid rows, per parameter
    expected = torch.tensor([7.0, 8, 9, 90, 90, 90])
    assert torch.equal(baseline.predict_lattice({"pattern": torch.rand(2, 16)}), expected.expand(2, 6))
    assert baseline.num_parameters == 0
    with pytest.raises(NotImplementedError):
        baseline.embed({"pattern": torch.rand(1, 16)})


def test_majority_ties_go_to_the_lowest_class_and_unfitted_tasks_raise() -> None:
    baseline = MajorityBaseline().fit(batches_of(torch.rand(4, 8), crystal_system=torch.tensor([5, 2, 5, 2])))
    assert baseline.predict_proba({"pattern": torch.rand(1, 8)})["crystal_system"].argmax().item() == 2
    with pytest.raises(InputError, match="lattice"):
        baseline.predict_lattice({"pattern": torch.rand(1, 8)})
    with pytest.raises(InputError, match="no labelled samples"):
        MajorityBaseline().fit(batches_of(torch.rand(2, 8)))


def test_majority_extinction_group_count_is_inferred_or_configured() -> None:
    eg = torch.tensor([0, 4, 4])
    inferred = MajorityBaseline().fit(batches_of(torch.rand(3, 8), extinction_group=eg))
    assert inferred.predict_proba({"pattern": torch.rand(1, 8)})["extinction_group"].shape == (1, 5)
    configured = MajorityBaseline(num_extinction_groups=99).fit(
        batches_of(torch.rand(3, 8), extinction_group=eg)
    )
    assert configured.predict_proba({"pattern": torch.rand(1, 8)})["extinction_group"].shape == (1, 99)


def training_set(n: int = 30, length: int = 200) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "pattern": 100 * torch.rand(n, length, generator=generator),
        "crystal_system": torch.randint(0, 7, (n,), generator=generator),
        "space_group": torch.randint(0, 230, (n,), generator=generator),
        "extinction_group": torch.randint(0, 10, (n,), generator=generator),
        "lattice": 3 + 10 * torch.rand(n, 6, generator=generator),
    }


@pytest.mark.parametrize(("pool_length", "chunk_size"), [(None, 4096), (64, 7)])
def test_pattern_nn_recovers_the_labels_of_an_exact_copy(pool_length: int | None, chunk_size: int) -> None:
    data = training_set()
    labels = {k: v for k, v in data.items() if k != "pattern"}
    baseline = PatternNNBaseline(pool_length=pool_length, chunk_size=chunk_size, num_extinction_groups=10)
    baseline.fit(batches_of(data["pattern"], 8, **labels))
    queries = data["pattern"][[3, 17, 29]] * 0.5  # cosine similarity ignores the scale
    probs = baseline.predict_proba({"pattern": queries})
    for task in ("crystal_system", "space_group", "extinction_group"):
        assert torch.equal(probs[task].argmax(1), data[task][[3, 17, 29]])
    assert torch.allclose(baseline.predict_lattice({"pattern": queries}), data["lattice"][[3, 17, 29]])
    scores, indices = baseline.nearest(queries, k=3)
    assert indices[:, 0].tolist() == [3, 17, 29]
    assert torch.allclose(scores[:, 0], torch.ones(3), atol=1e-5)
    assert (scores[:, :-1] >= scores[:, 1:]).all()
    width = pool_length or 200
    assert baseline.memory_floats == 30 * width and baseline.num_parameters == 0


def test_chunked_top_k_equals_brute_force() -> None:
    data = training_set(n=23, length=50)
    baseline = PatternNNBaseline(pool_length=None, chunk_size=5).fit(batches_of(data["pattern"], 6))
    queries = torch.rand(11, 50)
    scores, indices = baseline.nearest(queries, k=4)
    brute = (
        torch.nn.functional.normalize(queries, dim=1)
        @ torch.nn.functional.normalize(data["pattern"], dim=1).T
    )
    expected_scores, expected_indices = brute.topk(4, dim=1)
    assert torch.allclose(scores, expected_scores, atol=1e-6)
    assert torch.equal(indices, expected_indices)


def test_pattern_nn_skips_neighbours_without_the_label() -> None:
    patterns = torch.eye(4, 8) + 0.01
    cs = torch.tensor([-1, 2, 3, 4])
    baseline = PatternNNBaseline(pool_length=None).fit(batches_of(patterns, crystal_system=cs))
    query = patterns[:1] + torch.cat(
        [torch.zeros(1, 1), 0.2 * patterns[1:2, 1:]], dim=1
    )  # closest: row 0, then 1
    assert baseline.predict_proba({"pattern": query})["crystal_system"].argmax().item() == 2
    assert "lattice" not in baseline.fitted_tasks and "space_group" not in baseline.predict_proba(
        {"pattern": query}
    )


def test_pattern_nn_embedding_is_pooled_and_normalised() -> None:
    baseline = PatternNNBaseline(pool_length=16)
    embedding = baseline.embed({"pattern": torch.rand(3, 100)})
    assert embedding.shape == (3, 16) and torch.allclose(embedding.norm(dim=1), torch.ones(3))
    steps = torch.arange(64, dtype=torch.float32).repeat(2, 1)
    expected = torch.nn.functional.normalize(steps.reshape(2, 16, 4).mean(-1))
    assert torch.allclose(baseline.pool(steps), expected)
    assert torch.equal(baseline.embed({"pattern": steps}), baseline.pool(steps))
    assert torch.equal(PatternNNBaseline(pool_length=None).pool(steps), torch.nn.functional.normalize(steps))
    with pytest.raises(InputError, match=r"\[B, N\]"):
        baseline.pool(torch.rand(100))
    with pytest.raises(InputError, match="not fitted"):
        baseline.nearest(torch.rand(1, 100))


@pytest.mark.parametrize("cls", [MajorityBaseline, PatternNNBaseline])
def test_baselines_are_parameter_free_lightning_modules_fitted_outside_a_trainer(cls: type) -> None:
    baseline = cls()
    assert isinstance(baseline, L.LightningModule)
    assert baseline.num_parameters == 0 and not list(baseline.parameters())
    assert baseline.data_requirements() == DataRequirements()
    assert baseline.configure_optimizers() is None
    with pytest.raises(ConfigError, match="FitBaseline"):
        baseline.training_step({"pattern": torch.rand(2, 8)}, 0)


def test_registered_baselines_and_their_tiny_twins() -> None:
    assert isinstance(create_method("majority"), MajorityBaseline)
    assert isinstance(create_method("majority_tiny"), MajorityBaseline)
    full, tiny = create_method("pattern_nn"), create_method("pattern_nn_tiny")
    assert (full.pool_length, full.chunk_size) == (1024, 4096)
    assert (tiny.pool_length, tiny.chunk_size) == (64, 256)
    majority = method_info("majority")
    assert majority["parameters"] == 0 and "AlphaDiffract" in majority["paper"]
    assert set(majority["tasks"]) == {"crystal_system", "space_group", "extinction_group", "lattice"}
    assert method_info("pattern_nn")["parameters"] == 0 and "retrieval" in method_info("pattern_nn")["tasks"]
