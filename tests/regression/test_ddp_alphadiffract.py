"""A 2-process CPU DDP run (ddp_spawn, gloo) of alphadiffract_tiny trains as well as the 1-process run with the
same global batch.

The two runs see the same structures with the same global batch size (2 × 8 vs 16: the ci preset's 30 steps) and
learning-rate schedule,
but not the same order (the distributed sampler shards differently) nor the same random draws (each rank renders
with its own generator), so they agree within a tolerance, not exactly. What is compared is training, not the
6-item test metrics (one item is 16.7 points there, so a tolerance that a model which does not learn also meets):

* both runs are trained: ``training/loss_ratio`` (last / first curve point's mean training loss) at most the upper
  edge of alphadiffract_tiny's committed reference band for it (3 seeds, mean ± 3σ; the band rules keep it below
  the no-learning value 1);
* their final training losses (the last curve point's ``train_loss``) agree within 15 % of the 1-process value;
* both evaluate whole splits (every test metric counts every test item: no sampler padding on rank 0).
"""

from __future__ import annotations

import pytest

from pxrdbench.report.regression import LOSS_RATIO, final_train_loss, load_bands, loss_ratio, run_ci

MAX_LOSS_RATIO = load_bands().get("alphadiffract_tiny", {}).get(LOSS_RATIO, {}).get("band", [0.0, 0.8])[1]
FINAL_LOSS_RTOL = 0.15


@pytest.mark.slow
def test_ddp_spawn_trains_like_single_process(use_regression_cache, tmp_path) -> None:
    single = run_ci("alphadiffract_tiny", tmp_path / "single", batch_size=16)
    ddp = run_ci("alphadiffract_tiny", tmp_path / "ddp", batch_size=16, gpus=2, strategy="ddp_spawn")
    assert ddp["hardware"]["device_count"] == 2
    for name, result in (("1 process", single), ("ddp", ddp)):
        ratio = loss_ratio(result)
        assert ratio is not None, f"{name}: no learning curve with two training losses in the results"
        assert ratio[0] <= MAX_LOSS_RATIO, (
            f"{name}: not trained, loss ratio {ratio[0]:.3f} > {MAX_LOSS_RATIO}"
        )
        for task in ("crystal_system", "space_group"):
            assert result["metrics"][task]["accuracy"]["n"] == result["dataset"]["n_test"], (name, task)
    loss_a, loss_b = final_train_loss(single), final_train_loss(ddp)
    assert abs(loss_a - loss_b) <= FINAL_LOSS_RTOL * abs(loss_a), (
        f"final training loss: 1 process {loss_a:.4g}, ddp {loss_b:.4g} (tolerance {FINAL_LOSS_RTOL:.0%})"
    )
