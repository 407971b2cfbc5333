"""The leaderboard is a pure function of the results files (mock results in tests/fixtures/bench)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pxrdbench.report.leaderboard import MISSING, NOT_APPLICABLE, build_leaderboard, main
from pxrdbench.report.published import PUBLISHED
from pxrdbench.tasks.specs import TASKS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bench"
PUBLISHED_HEADING = "## Published (paper's protocol, not comparable)"


def _build(tmp_path: Path, name: str = "a", figures: bool = False) -> Path:
    results = tmp_path / name / "results"
    shutil.copytree(FIXTURES, results)
    out = tmp_path / name / "board"
    build_leaderboard(results, out, figures=figures)
    return out


def _table_after(text: str, heading: str, first: str = "| method") -> dict[str, list[str]]:
    """Rows (keyed by their first cell) of the first markdown table after ``heading`` whose header starts
    with ``first``; cells stripped."""
    lines = text[text.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows: dict[str, list[str]] = {"__header__": header}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells
    return rows


def _markdown(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.md"))}


def test_regenerates_byte_identically(tmp_path: Path) -> None:
    out_a = _build(tmp_path, "a")
    first = _markdown(out_a)
    build_leaderboard(tmp_path / "a" / "results", out_a, figures=False)
    assert _markdown(out_a) == first
    out_b = _build(tmp_path, "b")  # fresh copy: other mtimes, other directory
    assert _markdown(out_b) == first
    assert "README.md" in first and "tasks/retrieval.md" in first and len(first) == len(TASKS) + 1


def test_missing_vs_not_applicable(tmp_path: Path) -> None:
    text = (_build(tmp_path) / "README.md").read_text(encoding="utf-8")
    cs = _table_after(text, "### `crystal_system`")
    assert cs["__header__"][-2:] == ["toy_a", "toy_b"]
    assert "den_kan" not in cs  # a retrieval method cannot classify: not a row, named once under the table
    assert "Not serving `crystal_system`: den_kan" in text
    assert cs["majority_class"][-1] == MISSING  # serves the task, never run on toy_b
    lat = _table_after(text, "`length_mae`")
    assert lat["alphadiffract"][-1] == MISSING  # ran on toy_b, declares lattice, reported no lattice metrics
    pre = _table_after(text, "`prescreen/top1`")
    assert pre["xtalnet_cpcp"][-2] == MISSING and "majority_class" not in pre
    robust = _table_after(text, "`fwhm_0.5/retrieval/prescreen/top1`")
    assert "majority_class" not in robust  # serves robustness, but not its retrieval part: no row
    assert robust["den_kan"][-2] not in (MISSING, NOT_APPLICABLE)


def test_best_marking_follows_declared_direction(tmp_path: Path) -> None:
    out = _build(tmp_path)
    text = (out / "README.md").read_text(encoding="utf-8")
    lat = _table_after(text, "`length_mae`")  # lower is better
    assert lat["alphadiffract"][-2].startswith("**2.100**")
    assert "**" not in lat["majority_class"][-2]
    top1 = _table_after(text, "`top1`")  # higher is better
    assert top1["den_kan"][-2].startswith("**46.00**") and "**" not in top1["xtalnet_cpcp"][-2]
    detail = _table_after(
        (out / "tasks" / "retrieval.md").read_text(encoding="utf-8"), "## toy_a", "| metric"
    )
    header = detail["__header__"]
    xtalnet, den_kan = header.index("xtalnet_cpcp (ci)"), header.index("den_kan (ci)")
    assert detail["`mean_rank`"][xtalnet] == "**12.50**" and detail["`mean_rank`"][den_kan] == "20.00"
    sg = _table_after((out / "tasks" / "space_group.md").read_text(encoding="utf-8"), "## toy_a", "| metric")
    assert "**" not in "".join(sg["`hop_share_3`"])  # informational: never bold


def test_task_pages_put_methods_in_columns_and_breakdowns_in_their_own_tables(tmp_path: Path) -> None:
    text = (_build(tmp_path) / "tasks" / "crystal_system.md").read_text(encoding="utf-8")
    summary = _table_after(text, "## toy_a", "| metric")
    assert summary["__header__"][0] == "metric" and "alphadiffract (ci)" in summary["__header__"]
    assert not any(key.startswith("`per_class/") for key in summary)  # breakdowns are not summary rows
    per_class = _table_after(text, "### `per_class/<class>/accuracy`", "| class")
    assert "cubic" in per_class
    assert "den_kan" in text and "cannot serve" in text  # the retrieval method is named, not tabulated


def test_seeds_are_aggregated_as_mean_and_std(tmp_path: Path) -> None:
    text = (_build(tmp_path) / "README.md").read_text(encoding="utf-8")
    cs = _table_after(text, "### `crystal_system`")
    assert cs["alphadiffract"][-2] == "**81.00** ± 1.41 (2 seeds)"  # seeds 80 and 82: sample std sqrt(2)
    assert cs["alphadiffract"][-1] == "**70.00** [64.00, 76.00]"  # one seed: its bootstrap CI
    assert cs["alphadiffract"][1:3] == ["ci", "cpu (2 threads)"]


def test_published_numbers_only_in_their_own_table(tmp_path: Path) -> None:
    out = _build(tmp_path)
    text = (out / "README.md").read_text(encoding="utf-8")
    ours, published = text.split(PUBLISHED_HEADING)
    assert "not** comparable" in published
    assert "| den_kan | retrieval | top1 | 46.42 % |" in published
    assert "46.42" not in ours and "wa_kan" not in ours
    assert len([line for line in published.splitlines() if line.startswith("| ")]) == len(PUBLISHED) + 1
    for task_file in (out / "tasks").glob("*.md"):
        assert "46.42" not in task_file.read_text(encoding="utf-8")


def test_figures_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "board"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "stale.png").write_bytes(b"old")
    assert main(["--results", str(FIXTURES), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    assert pngs == [
        "crystal_system_accuracy.png", "retrieval_prescreen_top1.png", "retrieval_top1.png",
        "space_group_accuracy.png", "space_group_hops__toy_a.png",
    ]  # fmt: skip
    for name in pngs:
        assert (out / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(out / "figures" / name) in printed
    assert "![space_group_hops__toy_a](figures/space_group_hops__toy_a.png)" in (out / "README.md").read_text(
        encoding="utf-8"
    )


def test_empty_results_directory(tmp_path: Path) -> None:
    (tmp_path / "results").mkdir()
    paths = build_leaderboard(tmp_path / "results", tmp_path / "out", figures=False)
    text = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    assert "No results yet." in text and PUBLISHED_HEADING in text
    assert len(paths) == len(TASKS) + 1


def test_space_group_overview_shows_a_retrieval_methods_space_group_via_its_top1_structure(
    tmp_path: Path,
) -> None:
    text = (_build(tmp_path) / "README.md").read_text(encoding="utf-8")
    sg = _table_after(text, "### `space_group`")
    assert sg["den_kan"][-2] == "61.00 [55.00, 67.00] †"  # never bold: another protocol
    assert sg["den_kan"][-1] == NOT_APPLICABLE  # no retrieval result on toy_b to fall back on
    assert "† A retrieval method's space group" in text


def _with_evaluation_v2(results: Path) -> None:
    """Make den_kan's toy_a file a version-2 file with paired differences and the uniform-random expectation."""
    import json

    path = results / "den_kan__toy_a__ci__seed0.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["evaluation"] = {"version": 2}
    block = obj["metrics"]["retrieval"]
    block["uniform_random/top1"] = {"value": 0.5, "ci95": None, "n": 50, "std": None}
    block["top1/vs_chance"] = {"value": 45.5, "ci95": [30.0, 60.0], "n": 50, "std": None}
    block["top1/vs_pattern_nn"] = {"value": -10.0, "ci95": [-20.0, -1.0], "n": 50, "std": None}
    block["prescreen/top1/vs_element_random"] = {"value": 2.0, "ci95": [-1.0, 5.0], "n": 50, "std": None}
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def test_overview_opens_with_the_headline_table_and_marks_paired_differences(tmp_path: Path) -> None:
    results = tmp_path / "r"
    shutil.copytree(FIXTURES, results)
    _with_evaluation_v2(results)
    build_leaderboard(results, tmp_path / "board", figures=False)
    text = (tmp_path / "board" / "README.md").read_text(encoding="utf-8")
    assert text.index("## Headline") < text.index("## Overview")
    headline = _table_after(text, "## Headline")
    assert "crystal_system: accuracy (toy_a)" in headline["__header__"]
    assert headline["den_kan"][headline["__header__"].index("retrieval: top1 (toy_a)")].startswith(
        "**46.00**"
    )
    top1 = _table_after(text, "`top1`")
    # the paired interval lies above 0 against chance, below 0 against pattern NN: named; element_random straddles 0
    assert top1["den_kan"][-2].endswith("(> chance; < pattern_nn)")
    assert top1["random ranking of the whole pool (analytic)"][-2] == "0.50"
    pre = _table_after(text, "`prescreen/top1`")
    assert "(" not in pre["den_kan"][-2].split("]")[-1]  # not distinguishable from the element-only baseline
    # which runs predate the evaluation code is said at the top
    assert "runs predate evaluation version 2" in text
    predating = text[text.index("runs predate") : text.index("## Headline")]
    assert "den_kan / toy_a / ci" not in predating and "alphadiffract / toy_a / ci" in predating
