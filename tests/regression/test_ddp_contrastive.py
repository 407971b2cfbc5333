"""A 2-process CPU DDP run (ddp_spawn, gloo) of den_kan_tiny matches the 1-process run with the same global
batch within a stated tolerance.

Same structures, same initial weights (seeded builder), same global batch (2 × 16 vs 32) and schedule, but not
the same batch composition (the distributed sampler shards the epoch differently), per-rank batch-norm
statistics and, with XCCP's in-batch negatives (``gather_negatives: false``), 15 negatives per pair on each
rank instead of 31. So the two runs agree within a tolerance, not exactly. On the ci subset (6 test
structures, 64 in the full pool) we allow 2 test items (33.4 points) on the hit rates and 15 % of the
1-process value on the full-pool mean rank. Measured here: identical hit rates and full-pool mean rank (38.3
in both runs) after the two ci epochs.
"""

from __future__ import annotations

import pytest

from pxrdbench.report.regression import run_ci

HIT_RATES = ("top1", "top10", "prescreen/top1", "fullpool_prescreen/top1")


@pytest.mark.slow
def test_ddp_spawn_matches_single_process(use_regression_cache, tmp_path) -> None:
    single = run_ci("den_kan_tiny", tmp_path / "single", batch_size=32)
    ddp = run_ci("den_kan_tiny", tmp_path / "ddp", batch_size=32, gpus=2, strategy="ddp_spawn")
    assert ddp["hardware"]["device_count"] == 2
    for result in (single, ddp):
        assert "retrieval" in result["method"]["tasks"] and "retrieval" in result["metrics"]
    a, b = single["metrics"]["retrieval"], ddp["metrics"]["retrieval"]
    for key in HIT_RATES:
        assert abs(a[key]["value"] - b[key]["value"]) <= 2 * 100.0 / a[key]["n"] + 1e-6, (key, a[key], b[key])
    rank_a, rank_b = a["fullpool/mean_rank"]["value"], b["fullpool/mean_rank"]["value"]
    assert abs(rank_a - rank_b) <= 0.15 * rank_a, (rank_a, rank_b)
    robust = "fwhm_0.2/retrieval/prescreen/top1"
    assert robust in single["metrics"]["robustness"] and robust in ddp["metrics"]["robustness"]
