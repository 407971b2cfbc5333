"""The task registry: which tasks serve which kind of method, and the metrics mapping of one evaluation on the
tiny synthetic cache (the same task and metric keys as the pre-registry runner produced for these methods: the
expected keys below were read off the previous runner's output for the same fake methods and cache)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.datamodule import SimulatedDataModule
from pxrdbench.errors import ConfigError
from pxrdbench.methods.base import DataRequirements
from pxrdbench.methods.registry import create_method
from pxrdbench.tasks import specs
from pxrdbench.tasks.base import EvalContext
from pxrdbench.tasks.efficiency import inference_timings, timing_batches
from pxrdbench.tasks.registry import TASKS, get, run_tasks, served_tasks, task_names, tasks_for_source
from pxrdbench.tasks.render import rendered_batches

CLASSIFICATION = ("crystal_system", "extinction_group", "space_group")


class Classifier:
    """A deterministic batch-in classifier and lattice regressor with a pattern embedding."""

    tasks = (*CLASSIFICATION, "lattice", "retrieval")

    def __init__(self, n_points: int) -> None:
        from pxrdbench.symmetry.extinction import n_extinction_groups

        g = torch.Generator().manual_seed(11)
        sizes = {"crystal_system": 7, "space_group": 230, "extinction_group": n_extinction_groups()}
        self.weights = {task: torch.randn(n_points, k, generator=g) for task, k in sizes.items()}
        self.lattice = torch.randn(n_points, 6, generator=g) * 0.01
        self.projection = torch.randn(n_points, 16, generator=g)

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def data_requirements(self) -> DataRequirements:
        return DataRequirements()

    def predict_proba(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        return {task: torch.softmax(batch["pattern"] @ w / 3.0, dim=1) for task, w in self.weights.items()}

    def predict_lattice(self, batch: Mapping[str, Any]) -> Tensor:
        p = batch["pattern"]
        return torch.cat([5 + (p @ self.lattice[:, :3]).abs(), 90 + p @ self.lattice[:, 3:]], dim=1)

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return F.normalize(batch["pattern"] @ self.projection, dim=1)


class Contrastive:
    """A retrieval-only method that embeds crystal graphs; ``predict`` insists on reading the graph."""

    tasks = ("retrieval",)

    def __init__(self, n_points: int) -> None:
        g = torch.Generator().manual_seed(5)
        self.projection = torch.randn(n_points, 16, generator=g)
        self.species = torch.randn(100, 16, generator=g)

    def serves(self, task: str) -> bool:
        return task in self.tasks

    def data_requirements(self) -> DataRequirements:
        return DataRequirements(graphs="cgcnn")

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        return F.normalize(batch["pattern"] @ self.projection, dim=1)

    def embed_structures(self, batch: Mapping[str, Any]) -> Tensor:
        rows = [
            torch.bincount(g.x.reshape(-1).long().clamp(0, 99), minlength=100).float() @ self.species
            for g in batch["graph"].to_data_list()
        ]
        return F.normalize(torch.stack(rows), dim=1)

    def predict(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        assert batch["graph"].num_graphs == batch["pattern"].shape[0]
        return {"embedding": self.embed(batch)}


class NoEmbedding(Classifier):
    tasks = ("crystal_system",)

    def embed(self, batch: Mapping[str, Any]) -> Tensor:
        """Not available."""
        raise NotImplementedError("no embedding")


@pytest.fixture(scope="module")
def dm(cache: DatasetCache) -> SimulatedDataModule:
    module = SimulatedDataModule(cache, "xccp_dual", batch_size=4, with_graphs="cgcnn", seed=0)
    module.setup()
    return module


def test_task_names_are_declared_once_and_read_by_the_leaderboard_specs() -> None:
    assert task_names() == list(specs.TASKS) == [task.name for task in TASKS]
    assert all(specs.get_task(task.name) is task.spec for task in TASKS)
    assert tasks_for_source("simulated") == [*CLASSIFICATION, "lattice", "retrieval", "robustness"]
    assert tasks_for_source("rruff908") == ["experimental_rruff908"]
    with pytest.raises(ConfigError, match="retrieval"):
        get("retreival")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("alphadiffract_tiny", ["crystal_system", "space_group", "lattice", "retrieval", "robustness",
                                "experimental_rruff908", "experimental_rietveld", "efficiency"]),
        ("den_kan_tiny", ["retrieval", "robustness", "experimental_rietveld", "efficiency"]),
        ("majority", [*CLASSIFICATION, "lattice", "robustness", "experimental_rruff908", "experimental_rietveld",
                      "efficiency"]),
        ("pattern_nn", [*CLASSIFICATION, "lattice", "retrieval", "robustness", "experimental_rruff908",
                        "experimental_rietveld", "efficiency"]),
    ],
)  # fmt: skip
def test_which_tasks_serve_which_kind_of_method(name: str, expected: list[str]) -> None:
    assert served_tasks(create_method(name)) == expected


def test_retrieval_follows_the_declaration_not_the_presence_of_embed() -> None:
    assert served_tasks(NoEmbedding(10)) == [
        "crystal_system", "robustness", "experimental_rruff908", "experimental_rietveld", "efficiency",
    ]  # fmt: skip


EXPECTED_KEYS = {
    "crystal_system": ["accuracy", "balanced_accuracy", "per_class/cubic/accuracy", "top3_accuracy",
                       "top5_accuracy"],
    "extinction_group": ["accuracy", "balanced_accuracy", "per_class/96/accuracy", "top3_accuracy",
                         "top5_accuracy"],
    "space_group": ["accuracy", "balanced_accuracy", "hop_share_0", "hop_share_1", "hop_share_2", "hop_share_3",
                    "mean_hop", "per_class/225/accuracy", "top3_accuracy", "top5_accuracy", "within_1_edge"],
    "lattice": ["a_mae", "alpha_mae", "angle_mae", "angle_mape", "b_mae", "beta_mae", "c_mae", "gamma_mae",
                "length_mae", "length_mape"],
}  # fmt: skip
RANKS = ["mean_rank", "median_rank", "top1", "top10", "top3", "top5"]
RETRIEVAL_KEYS = sorted(
    [
        *(f"{pool}{kind}/{key}" for pool in ("", "fullpool/") for kind in ("element_random", "uniform_random")
          for key in ("top1", "top3", "top5", "top10", "mean_rank")),
        *(f"{prefix}{key}" for prefix in ("", "prescreen/", "fullpool/", "fullpool_prescreen/") for key in RANKS),
        *(f"{prefix}space_group_via_top1/accuracy" for prefix in ("", "prescreen/", "fullpool/",
                                                                  "fullpool_prescreen/")),
    ]
)  # fmt: skip


def _context(method: Any, dm: SimulatedDataModule, tmp_path) -> EvalContext:
    return EvalContext(method=method, datamodule=dm, n_boot=20, perturbations=["fwhm_0.5"], rruff_max_patterns=8,
                       rietveld_folder=tmp_path / "no-rietveld-cifs")  # fmt: skip


def test_run_tasks_gives_the_results_file_metrics_of_a_classifier(dm, tmp_path) -> None:
    ctx = _context(Classifier(dm.view.n_points), dm, tmp_path)
    metrics = run_tasks(ctx)
    rruff = "experimental_rruff908" in metrics
    assert list(metrics) == [
        *CLASSIFICATION,
        "lattice",
        "retrieval",
        "robustness",
        *(["experimental_rruff908"] * rruff),
    ]
    paired = {task: sorted(k for k in block if "/vs_" in k) for task, block in metrics.items()}
    for task, keys in EXPECTED_KEYS.items():
        assert sorted(k for k in metrics[task] if "/vs_" not in k) == keys, task
    assert sorted(k for k in metrics["retrieval"] if "/vs_" not in k) == RETRIEVAL_KEYS
    # every headline metric is compared with each baseline that serves the task, on the same items
    assert paired["crystal_system"] == [f"accuracy/vs_{b}" for b in ("chance", "majority", "pattern_nn")]
    assert paired["space_group"] == [
        f"{m}/vs_{b}" for m in ("accuracy", "within_1_edge") for b in ("chance", "majority", "pattern_nn")
    ]
    assert paired["retrieval"] == sorted(
        [*(f"{m}/vs_{b}" for m in ("top1", "prescreen/top1") for b in ("chance", "pattern_nn")),
         "prescreen/top1/vs_element_random"]
    )  # fmt: skip
    assert paired["robustness"] == []
    robustness = [f"fwhm_0.5/{task}/{key}" for task, keys in EXPECTED_KEYS.items() for key in keys]
    robustness += [f"fwhm_0.5/retrieval/{p}{key}" for p in ("", "prescreen/") for key in RANKS]
    assert sorted(metrics["robustness"]) == sorted(robustness)
    for task, block in metrics.items():
        for key, entry in block.items():
            assert specs.task_has_metric(task, key), (task, key)
            assert set(entry) == {"value", "ci95", "n", "std"}
    assert ctx.notes[-1].startswith("experimental_rietveld not evaluated: ")
    if rruff:
        prefixes = {k.split("/")[0] for k in metrics["experimental_rruff908"]}
        assert {"crystal_system", "space_group", "overlap"} <= prefixes
        assert prefixes <= {"crystal_system", "space_group", "overlap", "low_overlap"}
        assert metrics["experimental_rruff908"]["crystal_system/accuracy"]["n"] == 8
    else:
        assert ctx.notes[0].startswith("experimental_rruff908 not evaluated: ")
    assert ctx.memo == {}


def test_run_tasks_on_a_contrastive_method_scores_retrieval(dm, tmp_path) -> None:
    ctx = _context(Contrastive(dm.view.n_points), dm, tmp_path)
    metrics = run_tasks(ctx)
    assert list(metrics) == ["retrieval", "robustness"]
    assert sorted(k for k in metrics["retrieval"] if "/vs_" not in k) == RETRIEVAL_KEYS
    assert sorted(metrics["robustness"]) == sorted(f"fwhm_0.5/retrieval/{p}{k}" for p in ("", "prescreen/")
                                                   for k in RANKS)  # fmt: skip
    only = run_tasks(_context(Contrastive(dm.view.n_points), dm, tmp_path), only=["retrieval"])
    assert only == {"retrieval": metrics["retrieval"]}  # the same numbers whatever else runs


def test_no_perturbations_no_robustness_and_unknown_sets_fail_early(dm, tmp_path) -> None:
    ctx = _context(NoEmbedding(dm.view.n_points), dm, tmp_path)
    ctx.perturbations = []
    assert list(run_tasks(ctx, only=["crystal_system", "retrieval", "robustness"])) == ["crystal_system"]
    ctx.perturbations = ["fwhm_9"]
    with pytest.raises(ConfigError, match="perturbation set"):
        run_tasks(ctx, only=["robustness"])


def test_inference_is_timed_on_real_rendered_test_batches(dm, tmp_path) -> None:
    method = Contrastive(dm.view.n_points)
    ctx = _context(method, dm, tmp_path)
    one, many = timing_batches(ctx)
    assert len(dm.cache.split_indices("test")) < 64  # so the batch of 64 repeats the split
    assert one["pattern"].shape[0] == 1 and many["pattern"].shape[0] == 64 and many["graph"].num_graphs == 64
    assert torch.equal(one["pattern"][0], next(iter(rendered_batches(dm, "test")))["pattern"][0])
    timings = inference_timings(ctx)
    assert set(timings) >= {"latency_ms_batch1", "throughput_batch1", "throughput_best", "best_batch"}
    assert all(np.isfinite(v) and v > 0 for v in timings.values())


def test_every_task_a_method_can_declare_is_a_registered_task() -> None:
    from pxrdbench.methods.base import ALL_TASKS, CLASSIFICATION_TASKS

    assert set(ALL_TASKS) <= set(task_names()) and set(CLASSIFICATION_TASKS) == set(CLASSIFICATION)


def test_the_chance_baseline_scores_exactly_the_analytic_chance_values(dm, tmp_path) -> None:
    """Uniform probabilities and one embedding for everything: 100/C per classification task and, for
    retrieval, exactly the expectation of a uniformly random ranking (truth sets included) — never 100 %."""
    from pxrdbench.methods.baselines import ChanceBaseline
    from pxrdbench.symmetry.extinction import n_extinction_groups
    from pxrdbench.tasks.paired import label_batches

    chance = ChanceBaseline().fit(label_batches(dm, "train"))
    ctx = EvalContext(method=chance, datamodule=dm, n_boot=20, rruff_max_patterns=8,
                      rietveld_folder=tmp_path / "none", paired_baselines=("majority", "element_random"))  # fmt: skip
    metrics = run_tasks(ctx)
    for task, classes in (
        ("crystal_system", 7),
        ("space_group", 230),
        ("extinction_group", n_extinction_groups()),
    ):
        assert metrics[task]["accuracy"]["value"] == pytest.approx(100.0 / classes)
        assert metrics[task]["balanced_accuracy"]["value"] == pytest.approx(100.0 / classes)
    assert round(metrics["crystal_system"]["accuracy"]["value"], 2) == 14.29
    retrieval = metrics["retrieval"]
    for plain, screened in (("", "prescreen/"), ("fullpool/", "fullpool_prescreen/")):
        for key in ("top1", "top3", "top5", "top10", "mean_rank"):
            uniform = retrieval[f"{plain}uniform_random/{key}"]["value"]
            by_elements = retrieval[f"{plain}element_random/{key}"]["value"]
            assert retrieval[f"{plain}{key}"]["value"] == pytest.approx(uniform)
            assert retrieval[f"{screened}{key}"]["value"] == pytest.approx(by_elements)
    n_test = len(dm.cache.split_indices("test"))
    rep = dm.cache.duplicate_sets()
    test = dm.cache.split_indices("test")
    sizes = [int((rep[test] == rep[i]).sum()) for i in test]
    assert retrieval["top1"]["value"] == pytest.approx(100.0 * np.mean(sizes) / n_test)
    # chance against the analytic element-only baseline: a difference of exactly 0
    assert retrieval["prescreen/top1/vs_element_random"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert metrics["lattice"]["length_mae"]["value"] > 0  # the training median, not the truth
