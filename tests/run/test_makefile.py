"""The Makefile passes ENSEMBLE and NODES through to ``pxrdbench bench`` (checked with ``make -n``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _dry_run(*variables: str) -> str:
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "bench", *variables], capture_output=True, text=True, check=True
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_bench_passes_ensemble_and_nodes() -> None:
    plain = _dry_run("MODEL=den_kan_tiny", "PRESET=ci")
    assert "--model den_kan_tiny" in plain and "--nodes 1" in plain and "--ensemble" not in plain
    both = _dry_run(
        "MODEL=alphadiffract_tiny", "PRESET=ci", "GPUS=2", "ACCELERATOR=cpu", "ENSEMBLE=2", "NODES=2"
    )
    assert "--gpus 2 --accelerator cpu" in both and "--nodes 2" in both and "--ensemble 2" in both
