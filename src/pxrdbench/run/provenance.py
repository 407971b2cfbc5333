"""Provenance of a run: hardware, library versions, git commit, config hash, date."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(accelerator: str, devices: int) -> dict[str, Any]:
    """Accelerator kind, device names and count, CPU, torch threads."""
    import torch

    names: list[str] = []
    if accelerator == "gpu" and torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(min(devices, torch.cuda.device_count()))]
    return {
        "accelerator": accelerator,
        "device_names": names,
        "device_count": len(names) if accelerator == "gpu" else devices,
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical cores)",
        "num_threads": int(torch.get_num_threads()),
    }


def software() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("torch", "lightning", "torch-geometric", "e3nn", "numpy", "pymatgen", "spglib", "pxrdbench"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def git_state(repo: Path | None = None) -> dict[str, Any]:
    """{"git_commit", "git_dirty"} of the checkout holding the code, or "unknown" with a reason."""
    repo = repo or Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", "src", "configs"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        return {"git_commit": commit, "git_dirty": bool(status)}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"git_commit": "unknown", "git_reason": f"git unavailable: {exc}"}


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 (first 16 hex digits) of a config, keys sorted."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, as a user would type it: the program's file name and its arguments;
    ``python -m pxrdbench.cli …`` (argv[0] = …/pxrdbench/cli.py) is written as ``pxrdbench …``."""
    argv = sys.argv if argv is None else argv
    program = Path(argv[0]).name
    if program in ("cli.py", "__main__.py") and Path(argv[0]).parent.name == "pxrdbench":
        program = "pxrdbench"
    return " ".join([program, *argv[1:]])
