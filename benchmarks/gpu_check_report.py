"""Targets, markdown tables and the output files of ``gpu_check.py`` (schema in its docstring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGET_TRAIN = ("alphadiffract", 20_000.0)
TARGET_LATENCY_MS = ("alphadiffract", 0.5)
TARGET_CPU_SPEEDUP = 10.0


def cpu_rates(path: Path | None) -> dict[str, float]:
    """``{method: patterns_per_s}`` of a ``train_throughput.py --json`` file (rows with errors left out)."""
    if path is None:
        return {}
    methods = json.loads(Path(path).read_text()).get("methods", {})
    return {k: float(v["patterns_per_s"]) for k, v in methods.items() if v.get("patterns_per_s")}


def target(value: float | None, goal: float, op: str) -> dict[str, Any]:
    met = None if value is None else (value >= goal if op == ">=" else value <= goal)
    return {"value": value, "target": goal, "op": op, "met": met}


def evaluate_targets(methods: dict[str, dict[str, Any]], cpu: dict[str, float]) -> dict[str, dict[str, Any]]:
    """The targets, each ``{value, target, op, met}`` (met None where a figure is missing)."""
    name, goal = TARGET_TRAIN
    targets = {
        f"{name}_train_patterns_per_s": target(methods.get(name, {}).get("train_patterns_per_s"), goal, ">=")
    }
    name, goal = TARGET_LATENCY_MS
    targets[f"{name}_latency_ms_batch1"] = target(methods.get(name, {}).get("latency_ms_batch1"), goal, "<=")
    for method, row in methods.items():
        gpu, base = row.get("train_patterns_per_s"), cpu.get(method)
        ratio = gpu / base if gpu and base else None
        targets[f"{method}_speedup_vs_cpu"] = {
            **target(ratio, TARGET_CPU_SPEEDUP, ">="),
            "cpu_patterns_per_s": base,
        }
    return targets


def _num(value: Any, fmt: str = "{:,.1f}") -> str:
    return "—" if value is None else fmt.format(value)


def markdown(result: dict[str, Any]) -> str:
    """The result as markdown tables."""
    run = result["run"]
    lines = [f"# GPU check {run['date']}", "", f"{run.get('device_name')} · torch {run.get('torch')} · "
             f"lightning {run.get('lightning')} · commit {run.get('commit') or '—'} · {run.get('elapsed_s', 0):.0f} s"
             f" of {run['budget_s']:.0f} s", "",
             "| method | batch | precision | eager patterns/s | compiled patterns/s | reported | load share | "
             "latency b1 ms (fp32 / bf16 / graph) |", "|---|---:|---|---:|---:|---|---:|---|"]  # fmt: skip
    for name, m in result["methods"].items():
        if "error" in m and "eager" not in m:
            lines.append(f"| {name} | error: {m['error']} |")
            continue
        eager, comp, lat = m.get("eager") or {}, m.get("compiled_run") or {}, m.get("latency_ms") or {}
        lat_cells = " / ".join(_num(lat.get(k), "{:.3f}") for k in ("fp32", "bf16", "cuda_graph"))
        lines.append(
            f"| {name} | {m.get('batch_size')} | {m.get('precision')} | {_num(eager.get('patterns_per_s'))} | "
            f"{_num(comp.get('patterns_per_s'))} | {'compiled' if m.get('compiled') else 'eager'} | "
            f"{_num(eager.get('load_share'), '{:.0%}')} | {lat_cells} |"
        )
    for profile, r in result["render"].items():
        lines += ["", f"Rendering ({profile}, {r.get('peaks')} peaks × {r.get('points')} points, batch "
                  f"{r.get('batch')}): {_num(r.get('patterns_per_s'))} patterns/s"]  # fmt: skip
    pt = result.get("pytest") or {}
    if pt:
        lines += ["", f"pytest -m gpu: {pt.get('passed')} passed, {pt.get('failed')} failed, "
                  f"{pt.get('skipped')} skipped, {pt.get('errors')} errors {pt.get('note', '')}".rstrip()]  # fmt: skip
    lines += ["", "| target | value | goal | met |", "|---|---:|---:|---|"]
    for name, t in result["targets"].items():
        met = {True: "met", False: "NOT met", None: "not measured"}[t["met"]]
        lines.append(f"| {name} | {_num(t['value'], '{:,.3f}')} | {t['op']} {t['target']:,} | {met} |")
    lines += [f"- skipped {s['what']}: {s['reason']}" for s in result["skipped"]]
    lines += [
        f"- **import guard**: {b['importer']} imported {b['module']}" for b in result["guard"]["blocked"]
    ]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out: Path) -> Path:
    """``gpu_check.json`` and ``gpu_check.md`` in ``out``; returns the JSON path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gpu_check.json"
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    (out / "gpu_check.md").write_text(markdown(result))
    return path
