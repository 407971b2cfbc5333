"""The papers' published numbers: labelled with the data and protocol the paper measured them under."""

from __future__ import annotations

from pxrdbench.report.published import PUBLISHED, PublishedNumber, published_rows


def _alpha(metric: str) -> list[PublishedNumber]:
    return [p for p in PUBLISHED if p.method == "alphadiffract" and p.metric == metric]


def test_within_one_edge_ensemble_and_classification_only_model() -> None:
    by_text = {p.text: p for p in _alpha("space_group/within_1_edge")}
    assert set(by_text) == {"87", "85"}
    assert "ensemble" in by_text["87"].protocol and "over 87 %" in by_text["87"].protocol
    assert "classification-only" in by_text["85"].protocol and "μ = 1" in by_text["85"].protocol
    assert "not the ensemble" in by_text["85"].protocol and "over 85 %" in by_text["85"].protocol


def test_lattice_numbers_are_on_the_240_complete_structures() -> None:
    lattice = [p for p in PUBLISHED if p.method == "alphadiffract" and p.metric.startswith("lattice/")]
    assert {p.metric: p.text for p in lattice} == {
        "lattice/length_mae": "2.11",
        "lattice/angle_mae": "2.72",
        "lattice/length_mape": "23.50",
        "lattice/angle_mape": "2.91",
    }
    for p in lattice:
        assert p.dataset == "RRUFF (240)" and "240" in p.protocol and "not the 734" in p.protocol


def test_classification_numbers_are_on_the_734_patterns() -> None:
    for metric in ("crystal_system/accuracy", "space_group/accuracy"):
        (p,) = [q for q in _alpha(metric) if q.task == "experimental"]
        assert p.dataset == "RRUFF (734)" and "734" in p.protocol


def test_paper_throughput_is_keyed_by_its_batch_size() -> None:
    eff = {p.metric: p for p in PUBLISHED if p.method == "alphadiffract" and p.task == "efficiency"}
    assert set(eff) == {"latency_ms_batch1", "throughput_batch1"}
    assert eff["throughput_batch1"].text == "871" and eff["latency_ms_batch1"].text == "1.04"
    assert all("batch size 1" in p.protocol for p in eff.values())
    assert not any(p.metric in ("inference_throughput_per_s", "throughput_best") for p in PUBLISHED)


def test_texts_parse_and_rows_are_sorted() -> None:
    assert all(isinstance(p.value, float) for p in PUBLISHED)
    rows = published_rows()
    assert rows == sorted(rows) and len(rows) == len(PUBLISHED)
