"""Regenerate the shipped symmetry tables under src/pxrdbench/resources/.

- extinction_groups.json: the extinction-group classes derived from spglib's standard-setting operations
(pxrdbench.symmetry.extinction.compute_extinction_table). - maximal_subgroups.json: directed (group, maximal
t-/k-subgroup) pairs from pyxtal's Bilbao tables
(pxrdbench.symmetry.subgroups.compute_maximal_subgroup_pairs).

Usage: ``.venv/bin/python scripts/build_symmetry_tables.py [--check]``. With ``--check`` nothing is written
and the exit status is 1 when a shipped table differs from a fresh computation.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pxrdbench.symmetry.extinction import EXTINCTION_TABLE_FILE, compute_extinction_table
from pxrdbench.symmetry.subgroups import SUBGROUP_TABLE_FILE, compute_maximal_subgroup_pairs

RESOURCES = Path(__file__).resolve().parents[1] / "src" / "pxrdbench" / "resources"


def fresh_tables() -> dict[str, dict[str, Any]]:
    """File name → freshly computed table content."""
    subgroups: dict[str, Any] = {
        "source": f"pyxtal {version('pyxtal')} get_max_t_subgroup / get_max_k_subgroup"
    }
    subgroups.update(compute_maximal_subgroup_pairs())
    extinction = {"source": f"spglib {version('spglib')} standard-setting operations"}
    extinction.update(compute_extinction_table())
    return {EXTINCTION_TABLE_FILE: extinction, SUBGROUP_TABLE_FILE: subgroups}


def _dump(table: dict[str, Any]) -> str:
    """Compact, stable JSON: one list entry per line for the long lists."""
    lines = ["{"]
    items = list(table.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, list):
            body = ",\n".join("    " + json.dumps(v) for v in value)
            lines.append(f"  {json.dumps(key)}: [\n{body}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) the tables; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped tables, write nothing")
    args = parser.parse_args(argv)
    status = 0
    for name, table in fresh_tables().items():
        path = RESOURCES / name
        if args.check:
            shipped = json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
            fresh = json.loads(_dump(table))
            same = shipped is not None and {k: v for k, v in shipped.items() if k != "source"} == {
                k: v for k, v in fresh.items() if k != "source"
            }
            print(f"{name}: {'up to date' if same else 'DIFFERS'}")
            status |= 0 if same else 1
        else:
            path.write_text(_dump(table), encoding="utf-8")
            print(f"wrote {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
