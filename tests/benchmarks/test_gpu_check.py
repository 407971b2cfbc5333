"""benchmarks/gpu_check.py on the CPU: arguments, budget, targets, the JSON it writes, the import guard, and
(slow) a one-step dry run of the whole path under the guard."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402
import gpu_check_measure  # noqa: E402
import gpu_check_report  # noqa: E402
import gpu_guard  # noqa: E402


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv("OUT", raising=False)
    monkeypatch.setattr(gpu_check, "GPU_DIR", tmp_path)  # no carried CPU figures there
    args = gpu_check.parse_args([])
    assert args.out == ROOT / "runs" / "gpu_check" and args.budget_s == 270.0 and args.cpu_json is None
    assert (args.device, args.precision, args.dataset) == ("auto", "bf16-mixed", "amcsd")
    assert (args.warmup, args.steps, args.latency_repeats) == (5, 60, 200)
    assert (args.render_batch, args.render_points, args.render_peaks) == (256, 8192, 300)
    assert args.methods is None and args.batch_size is None and args.num_workers is None
    assert not (args.no_compile or args.no_pytest or args.dry_run)


def test_out_from_env_and_carried_cpu_json(monkeypatch, tmp_path):
    monkeypatch.setenv("OUT", str(tmp_path / "out"))
    monkeypatch.setattr(gpu_check, "GPU_DIR", tmp_path)
    (tmp_path / "cpu_throughput.json").write_text("{}")
    args = gpu_check.parse_args(["--budget-s", "100"])
    assert args.out == tmp_path / "out" and args.budget_s == 100.0
    assert args.cpu_json == tmp_path / "cpu_throughput.json"


def test_dry_run_defaults_keep_explicit_values():
    args = gpu_check.parse_args(["--dry-run", "--steps", "3"])
    assert args.methods == ["alphadiffract_tiny"] and args.batch_size == 4 and args.steps == 3
    assert args.warmup == 1 and args.render_points == 512 and args.no_compile and args.no_pytest


def test_budget_allows_caps_and_records_skips():
    clock = FakeClock()
    budget = gpu_check.Budget(100.0, clock)
    assert budget.left() == 100.0 and budget.allows(50.0, reserve_s=40.0)
    clock.now += 30.0
    assert budget.elapsed() == 30.0 and not budget.allows(50.0, reserve_s=40.0)
    assert budget.timed_cap(1, reserve_s=10.0, max_s=15.0) == 15.0  # (70 - 10) / 3 = 20 > 15
    assert budget.timed_cap(4, reserve_s=10.0, max_s=15.0) == pytest.approx(5.0)  # 60 / 4 / 3
    clock.now += 100.0
    assert budget.left() < 0 and budget.timed_cap(2, reserve_s=10.0, max_s=15.0) == 1.0  # the floor
    budget.skip("den_kan compiled", "no time")
    assert budget.skipped == [{"what": "den_kan compiled", "reason": "no time", "at_s": 130.0}]


def test_targets_met_not_met_and_unmeasured(tmp_path):
    cpu_json = tmp_path / "cpu.json"
    cpu_json.write_text(
        json.dumps(
            {"run": {}, "methods": {"alphadiffract": {"patterns_per_s": 1000.0}, "den_kan": {"error": "x"}}}
        )
    )
    cpu = gpu_check_report.cpu_rates(cpu_json)
    assert cpu == {"alphadiffract": 1000.0} and gpu_check_report.cpu_rates(None) == {}
    good = {"alphadiffract": {"train_patterns_per_s": 25_000.0, "latency_ms_batch1": 0.4}}
    t = gpu_check_report.evaluate_targets(good, cpu)
    assert t["alphadiffract_train_patterns_per_s"]["met"] is True
    assert t["alphadiffract_latency_ms_batch1"] == {"value": 0.4, "target": 0.5, "op": "<=", "met": True}
    assert t["alphadiffract_speedup_vs_cpu"]["value"] == 25.0 and t["alphadiffract_speedup_vs_cpu"]["met"]
    bad = {"alphadiffract": {"train_patterns_per_s": 9_000.0, "latency_ms_batch1": 0.6}, "den_kan": {}}
    t = gpu_check_report.evaluate_targets(bad, cpu)
    assert t["alphadiffract_train_patterns_per_s"]["met"] is False
    assert t["alphadiffract_latency_ms_batch1"]["met"] is False
    assert t["alphadiffract_speedup_vs_cpu"]["met"] is False  # 9×
    assert t["den_kan_speedup_vs_cpu"]["met"] is None and t["den_kan_speedup_vs_cpu"]["value"] is None
    t = gpu_check_report.evaluate_targets({}, {})
    assert t["alphadiffract_train_patterns_per_s"]["met"] is None


def synthetic_result() -> dict:
    train = {"patterns_per_s": 21_000.0, "batch_size": 64, "steps": 60, "warmup": 5, "seconds": 0.18,
             "load_share": 0.1, "wall_s": 12.0, "precision": "bf16-mixed", "num_workers": 8}  # fmt: skip
    method = {
        "parameters": 10, "batch_size": 64, "precision": "bf16-mixed", "eager": train,
        "compiled_run": {**train, "patterns_per_s": 30_000.0, "compiled_parts": ["encoder"]},
        "train_patterns_per_s": 30_000.0, "compiled": True, "latency_ms": {"fp32": 0.9, "bf16": 1.0, "cuda_graph": 0.3},
        "latency_ms_batch1": 0.3, "latency_mode": "cuda_graph", "latency_repeats": 200,
    }  # fmt: skip
    methods = {"alphadiffract": method, "den_kan": {"error": "den_kan eager: RuntimeError: boom"}}
    return {
        "run": {"date": "2026-12-07T00:00:00+00:00", "device": "cuda", "device_name": "NVIDIA H100", "torch": "2.11",
                "lightning": "2.6", "cuda": "13.0", "python": "3.12", "commit": None, "cache": ".gpu/cache/x",
                "budget_s": 270.0, "elapsed_s": 200.0, "dry_run": False, "argv": []},
        "methods": methods,
        "render": {"alphadiffract": {"patterns_per_s": 5e4, "batch": 256, "points": 8192, "peaks": 300}},
        "pytest": {"passed": 3, "failed": 1, "skipped": 0, "errors": 0, "returncode": 1, "seconds": 9.0},
        "targets": gpu_check_report.evaluate_targets(methods, {"alphadiffract": 1000.0}),
        "skipped": [{"what": "wa_kan", "reason": "3 s left", "at_s": 260.0}],
        "guard": {"blocked": []},
    }  # fmt: skip


def test_writer_schema_and_markdown(tmp_path):
    path = gpu_check_report.write_outputs(synthetic_result(), tmp_path / "out")
    data = json.loads(path.read_text())
    assert set(data) == {"run", "methods", "render", "pytest", "targets", "skipped", "guard"}
    assert {"date", "device_name", "torch", "lightning", "commit"} <= set(data["run"])
    ad = data["methods"]["alphadiffract"]
    for key in ("train_patterns_per_s", "precision", "compiled", "batch_size", "latency_ms_batch1"):
        assert key in ad
    assert set(data["pytest"]) >= {"passed", "failed", "skipped"}
    assert all(set(t) >= {"value", "target", "met"} for t in data["targets"].values())
    assert data["targets"]["alphadiffract_latency_ms_batch1"]["met"] is True
    md = (tmp_path / "out" / "gpu_check.md").read_text()
    assert "| alphadiffract | 64 | bf16-mixed | 21,000.0 | 30,000.0 | compiled |" in md
    assert "den_kan | error: den_kan eager: RuntimeError: boom" in md
    assert "3 passed, 1 failed" in md and "skipped wa_kan: 3 s left" in md and "not measured" in md


def test_read_commit(tmp_path):
    assert gpu_check.read_commit(tmp_path) is None
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text("# pack-refs\n" + "b" * 40 + " refs/heads/main\n")
    assert gpu_check.read_commit(tmp_path) == "b" * 40
    (git / "refs" / "heads" / "main").write_text("a" * 40 + "\n")
    assert gpu_check.read_commit(tmp_path) == "a" * 40
    (git / "HEAD").write_text("c" * 40 + "\n")
    assert gpu_check.read_commit(tmp_path) == "c" * 40


def test_junit_counts(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text(
        '<testsuites><testsuite name="pytest" tests="6" failures="1" errors="1" skipped="2"/></testsuites>'
    )
    assert gpu_check_measure.junit_counts(xml) == {"passed": 2, "failed": 1, "skipped": 2, "errors": 1}


def test_guard_finder_names_the_importer():
    guard = gpu_guard.ImportGuard(("fakepkg",))
    assert guard.find_spec("json") is None
    with pytest.raises(gpu_guard.BlockedImportError, match="fakepkg.sub"):
        guard.find_spec("fakepkg.sub")
    assert guard.violations[0]["module"] == "fakepkg.sub"
    assert Path(__file__).name in guard.violations[0]["importer"]


def test_guard_refuses_late_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "fakepkg", object())
    with pytest.raises(RuntimeError, match="too late"):
        gpu_guard.install(("fakepkg",))


def test_guard_blocks_pymatgen_in_a_subprocess(tmp_path):
    (tmp_path / "culprit.py").write_text("from pymatgen.core import Structure\n")
    code = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(BENCH)!r}, {str(tmp_path)!r}]
        import gpu_guard
        guard = gpu_guard.install()
        try:
            import spglib
        except ImportError:
            pass
        print("caught", len(guard.violations), flush=True)
        import culprit
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "caught 1" in done.stdout
    assert "BlockedImportError" in done.stderr and "culprit.py:1" in done.stderr and "pymatgen" in done.stderr


def test_run_with_no_budget_skips_everything(cache, tmp_path):
    """The budget gate: nothing fits in 0 s, every phase is listed as skipped and the JSON is still written."""
    args = gpu_check.parse_args(["--dry-run", "--device", "cpu", "--cache-dir", str(cache.path)])
    args.out = tmp_path
    guard = gpu_guard.ImportGuard()
    result = gpu_check.run(args, guard, gpu_check.Budget(0.0))
    assert result["methods"] == {} and result["render"] == {}
    skipped = [s["what"] for s in result["skipped"]]
    assert skipped == ["alphadiffract_tiny", "render alphadiffract", "pytest -m gpu"]
    assert json.loads((tmp_path / "gpu_check.json").read_text())["skipped"] == result["skipped"]


@pytest.mark.slow
def test_cpu_dry_run_end_to_end_under_the_guard(cache, tmp_path):
    """One real Lightning step of alphadiffract_tiny, latency and rendering on the CPU, with the guard on."""
    cmd = [sys.executable, str(BENCH / "gpu_check.py"), "--dry-run", "--device", "cpu"]
    cmd += ["--cache-dir", str(cache.path), "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    row = data["methods"]["alphadiffract_tiny"]
    assert row["train_patterns_per_s"] > 0 and row["eager"]["steps"] == 1 and row["latency_ms_batch1"] > 0
    assert data["render"]["alphadiffract"]["patterns_per_s"] > 0 and data["guard"]["blocked"] == []
    assert {s["what"] for s in data["skipped"]} == {"alphadiffract_tiny compiled", "pytest -m gpu"}
