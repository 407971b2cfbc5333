"""Space-group rows of the task pages are labelled by number and symbol, for old (0-based) and new (1-based,
``evaluation.version`` 2) results files alike; crystal-system and extinction-group rows keep their names."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from pxrdbench.report.leaderboard.board import Board
from pxrdbench.report.leaderboard.task_pages import (
    evaluation_version,
    one_based_space_group_keys,
    render_task_page,
    row_label,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "bench" / "alphadiffract__toy_a__ci__seed0.json"


def _entry(value: float) -> dict[str, Any]:
    return {"value": value, "ci95": None, "n": 4, "std": None}


def _result(name: str, sg_items: dict[str, float], *, version: int | None) -> dict[str, Any]:
    """A results object of method ``name`` with space-group per-class accuracies under ``sg_items`` (keys as
    the file writes them), in the space_group task and the RRUFF subtask, plus per-class crystal systems and
    extinction groups."""
    res = copy.deepcopy(json.loads(FIXTURE.read_text(encoding="utf-8")))
    res["method"]["name"] = name
    res["method"]["tasks"] = ["crystal_system", "extinction_group", "space_group", "experimental_rruff908"]
    res["metrics"] = {
        "space_group": {
            "accuracy": _entry(50.0),
            **{f"per_class/{i}/accuracy": _entry(v) for i, v in sg_items.items()},
        },
        "extinction_group": {"accuracy": _entry(60.0), "per_class/13/accuracy": _entry(40.0)},
        "crystal_system": {"accuracy": _entry(70.0), "per_class/cubic/accuracy": _entry(90.0)},
        "experimental_rruff908": {
            "space_group/accuracy": _entry(30.0),
            **{f"space_group/per_class/{i}/accuracy": _entry(v) for i, v in sg_items.items()},
            "crystal_system/per_class/cubic/accuracy": _entry(80.0),
        },
    }
    if version is not None:
        res["evaluation"] = {"version": version}
    return res


# The same three space groups, 14 P2_1/c, 225 Fm-3m and 230 Ia-3d, as each kind of file keys them.
OLD = _result("old_method", {"13": 11.0, "224": 22.0, "229": 33.0}, version=None)
NEW = _result("new_method", {"14": 11.0, "225": 22.0, "230": 33.0}, version=2)


def _rows(text: str, heading: str) -> dict[str, list[str]]:
    """Rows (label → cells) of the first table after ``heading``."""
    lines = text.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells[1:]
    return rows


def test_evaluation_version_of_old_and_new_files() -> None:
    assert evaluation_version(OLD) == 1 and evaluation_version(NEW) == 2


def test_old_files_are_shifted_to_one_based_and_new_ones_kept() -> None:
    old = one_based_space_group_keys(OLD)
    assert sorted(k for k in old["metrics"]["space_group"] if "per_class" in k) == [
        "per_class/14/accuracy", "per_class/225/accuracy", "per_class/230/accuracy",
    ]  # fmt: skip
    assert "space_group/per_class/230/accuracy" in old["metrics"]["experimental_rruff908"]
    assert "per_class/13/accuracy" in old["metrics"]["extinction_group"]  # not a space group: unchanged
    assert "crystal_system/per_class/cubic/accuracy" in old["metrics"]["experimental_rruff908"]
    assert "per_class/229/accuracy" in OLD["metrics"]["space_group"]  # the input is not modified
    assert one_based_space_group_keys(NEW)["metrics"] == NEW["metrics"]


def test_row_labels() -> None:
    assert row_label("space_group", "", "per_class", "225") == "225 Fm-3m"
    assert row_label("experimental_rruff908", "space_group/", "per_class", "14") == "14 P2_1/c"
    assert row_label("robustness", "fwhm_0.5/space_group/", "per_class", "230") == "230 Ia-3d"
    assert row_label("extinction_group", "", "per_class", "13") == "13"
    assert row_label("experimental_rruff908", "crystal_system/", "per_class", "cubic") == "cubic"


def test_space_group_page_labels_rows_by_number_and_symbol_for_both_kinds_of_file() -> None:
    board = Board([one_based_space_group_keys(r) for r in (OLD, NEW)])
    text = render_task_page(board, "space_group")
    rows = _rows(text, "### `per_class/<class>/accuracy`")
    assert list(rows) == ["14 P2_1/c", "225 Fm-3m", "230 Ia-3d"]
    for label, value in (("14 P2_1/c", "11.00"), ("225 Fm-3m", "22.00"), ("230 Ia-3d", "33.00")):
        assert [cell.strip("*") for cell in rows[label]] == [value, value]  # old and new file on the same row
    rruff = _rows(
        render_task_page(board, "experimental_rruff908"), "### `space_group/per_class/<class>/accuracy`"
    )
    assert list(rruff) == ["14 P2_1/c", "225 Fm-3m", "230 Ia-3d"]


def test_crystal_system_and_extinction_group_rows_keep_their_names() -> None:
    board = Board([one_based_space_group_keys(r) for r in (OLD, NEW)])
    cs = _rows(render_task_page(board, "crystal_system"), "### `per_class/<class>/accuracy`")
    eg = _rows(render_task_page(board, "extinction_group"), "### `per_class/<class>/accuracy`")
    rruff_cs = _rows(
        render_task_page(board, "experimental_rruff908"), "### `crystal_system/per_class/<class>/accuracy`"
    )
    assert list(cs) == ["cubic"] and list(eg) == ["13"] and list(rruff_cs) == ["cubic"]
