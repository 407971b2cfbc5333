"""The papers' own headline numbers, under the papers' own protocols — NOT comparable with this benchmark.

Each entry names the paper, the data set and the protocol the number was measured under (pool, split,
wavelength, ensemble …). The leaderboard prints them only in a separate table labelled "Published (paper's
protocol, not comparable)"; they never enter a ranking. Source of every number: the papers in
``shared/papers`` as summarised in ``METHOD_NOTES.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedNumber:
    """One number a paper reports for its own method, with the protocol it was measured under.

    ``text`` is the number exactly as printed in the paper (trailing zeros kept); :attr:`value` parses it.
    """

    method: str
    paper: str
    task: str
    metric: str
    text: str
    unit: str
    dataset: str
    protocol: str

    @property
    def value(self) -> float:
        """The number as a float."""
        return float(self.text)


PAPERS: dict[str, str] = {
    "xccp": "Xu et al., npj Comput. Mater. (2026), doi:10.1038/s41524-026-02015-y (XCCP / DEN-KAN)",
    "eacnn": "Zhang, Wang & Hu, Preprints.org (2025), doi:10.20944/preprints202504.1913.v1 (EACNN)",
    "difcon": "Das, Vorholt, Houben & Dronskowski, Crystals 15, 393 (2025) (DIFCON)",
    "xtalnet": "XtalNet: end-to-end CSP from PXRD (CPCP retrieval stage)",
    "alpha": "AlphaDiffract, arXiv:2603.23367 (2026)",
}

PROTOCOLS: dict[str, str] = {
    "mp": "MP 155,003 structures, 70/10/20 split stratified by SG; Cu Kα, FWHM 0.1°; pool = 27,060 test "
    "structures; no element prior",
    "mp_pre": "MP 155,003 structures, 70/10/20 split stratified by SG; Cu Kα, FWHM 0.1°; pool = 27,060 test "
    "structures; element pre-screen",
    "mp_open": "missing-candidate test: only the queries whose top-1 is correct with no element prior and the "
    "test-only pool (27,060), scored with and without the true structure in the pool; no element prior",
    "mp_full": "full-database candidate pool, element pre-screen",
    "mp_fwhm": "element pre-screen, test-time FWHM 0.5° (trained at 0.1°), no retraining",
    "mp_shift": "element pre-screen, +0.5° zero shift at FWHM 0.1°, no retraining",
    "opxrd": "773 measured opXRD patterns, pool = the 773 matched structures, element filter",
    "eacnn": "154,714 MP structures; pool and split not stated in the paper",
    "hmof": "MOFs, GSAS-simulated 3–30° 2θ; all test patterns vs all test crystals",
    # DIFCON §4.3, the test-set paragraph and the one after Figure 2: the equivariance test set is ~40,000 patterns
    # of the ~20,000 held-out ICSD structures (10 %) at the training parameter ranges, also used as the validation
    # set for early stopping; the invariance test set is ~360,000 patterns of the ~180,000 TRAINING structures (90 %)
    # simulated with parameter ranges disjoint from training's.
    "equi": "equivariance test set: ~20,000 held-out ICSD structures (10 %), training augmentation ranges; also the "
    "paper's validation set (early stopping)",
    "inv": "invariance test set: the ~180,000 training structures (90 % of ICSD) re-simulated with augmentation "
    "ranges disjoint from training",
    "inhouse": "82 in-house measured patterns (not public)",
    # AlphaDiffract §5.1: all 734 RRUFF patterns for classification (59 of them calculated profiles), only the 240
    # with complete structures for lattice regression (55 of them calculated profiles).
    "rruff": "RRUFF 734 patterns (59 are profiles calculated from single-crystal data); 10-model Cls. + Regr. "
    "ensemble trained on ICSD + MP (312,267), 20 keV",
    "rruff_edge": "RRUFF 734 patterns, 10-model Cls. + Regr. ensemble (μ = 1); the paper states 'over 87 %' within "
    "one subgroup-graph edge",
    "rruff_edge_cls": "RRUFF 734 patterns, classification-only model (Cls.: crystal-system and space-group heads, "
    "no lattice head), GEMD weight μ = 1, not the ensemble; the paper states 'over 85 %' within one "
    "subgroup-graph edge",
    "rruff_lattice": "RRUFF subset of 240 patterns with complete structures (Niggli-reduced targets; 55 are "
    "calculated profiles), not the 734; 10-model Cls. + Regr. ensemble, 20 keV",
    "rruff_major": "majority-class baseline on RRUFF (734 patterns), as reported by AlphaDiffract",
    "val": "simulated validation patterns; 10-model ensemble",
    "h100": "single model (not the ensemble), batch size 1, one NVIDIA H100, the 734 RRUFF patterns (Table 4; "
    "719–871 patterns/s across the three sets)",
}

# (paper, method, task, metric key, value, unit, dataset, protocol)
_ROWS: tuple[tuple[str, str, str, str, str, str, str, str], ...] = (
    ("xccp", "den_kan", "retrieval", "top1", "46.42", "%", "MP (XCCP)", "mp"),
    ("xccp", "den_kan", "retrieval", "prescreen/top1", "88.98", "%", "MP (XCCP)", "mp_pre"),
    ("xccp", "den_kan", "retrieval", "prescreen/top3", "97.56", "%", "MP (XCCP)", "mp_pre"),
    ("xccp", "den_kan", "retrieval", "prescreen/top5", "98.82", "%", "MP (XCCP)", "mp_pre"),
    ("xccp", "wa_kan", "retrieval", "top1", "41.45", "%", "MP (XCCP)", "mp"),
    ("xccp", "element_random", "retrieval", "element_random/top1", "17.93", "%", "MP (XCCP)", "mp_pre"),
    ("xccp", "den_kan", "retrieval", "space_group_via_top1/accuracy", "60.85", "%", "MP (XCCP)", "mp"),
    (
        "xccp",
        "den_kan",
        "retrieval",
        "prescreen/space_group_via_top1/accuracy",
        "93.39",
        "%",
        "MP (XCCP)",
        "mp_pre",
    ),
    ("xccp", "den_kan", "retrieval", "fullpool_prescreen/top1", "72.62", "%", "MP (XCCP)", "mp_full"),
    # XCCP Results, "Application II" last paragraph: the missing-candidate test, on the queries top-1-correct
    # without element prior (test-only pool), with and without the true structure in the pool.
    ("xccp", "den_kan", "retrieval", "in_pool/mean_top1_similarity", "0.861", "", "MP (XCCP)", "mp_open"),
    ("xccp", "den_kan", "retrieval", "removed/mean_top1_similarity", "0.813", "", "MP (XCCP)", "mp_open"),
    (
        "xccp",
        "den_kan",
        "robustness",
        "fwhm_0.5/retrieval/prescreen/top1",
        "79.67",
        "%",
        "MP (XCCP)",
        "mp_fwhm",
    ),
    (
        "xccp",
        "den_kan",
        "robustness",
        "shift_+0.5/retrieval/prescreen/top1",
        "84.40",
        "%",
        "MP (XCCP)",
        "mp_shift",
    ),
    ("xccp", "wa_kan", "experimental", "retrieval/prescreen/top1", "57.18", "%", "opXRD subset", "opxrd"),
    ("xccp", "wa_kan", "experimental", "retrieval/prescreen/top10", "99.61", "%", "opXRD subset", "opxrd"),
    ("eacnn", "eacnn", "retrieval", "top1", "95.96", "%", "MP (EACNN)", "eacnn"),
    ("eacnn", "eacnn", "retrieval", "top3", "99.95", "%", "MP (EACNN)", "eacnn"),
    ("eacnn", "eacnn", "retrieval", "top5", "99.98", "%", "MP (EACNN)", "eacnn"),
    ("xtalnet", "xtalnet_cpcp", "retrieval", "top10", "94.4", "%", "hMOF-100", "hmof"),
    ("xtalnet", "xtalnet_cpcp", "retrieval", "top10", "74.3", "%", "hMOF-400", "hmof"),
    # DIFCON §4.5 and Table 2 (values unchanged; the equi / inv protocols relabelled, see PROTOCOLS).
    ("difcon", "difcon", "crystal_system", "accuracy", "88", "%", "ICSD (DIFCON)", "equi"),
    ("difcon", "difcon", "extinction_group", "accuracy", "80", "%", "ICSD (DIFCON)", "equi"),
    ("difcon", "difcon", "space_group", "accuracy", "78", "%", "ICSD (DIFCON)", "equi"),
    ("difcon", "difcon", "crystal_system", "accuracy", "79", "%", "ICSD (DIFCON)", "inv"),
    ("difcon", "difcon", "extinction_group", "accuracy", "71", "%", "ICSD (DIFCON)", "inv"),
    ("difcon", "difcon", "space_group", "accuracy", "66", "%", "ICSD (DIFCON)", "inv"),
    ("difcon", "difcon", "experimental", "crystal_system/accuracy", "74", "%", "in-house", "inhouse"),
    ("difcon", "difcon", "experimental", "extinction_group/accuracy", "48", "%", "in-house", "inhouse"),
    ("difcon", "difcon", "experimental", "space_group/accuracy", "41", "%", "in-house", "inhouse"),
    # AlphaDiffract §2.4 (text) and Tables 1–2, "Cls. + Regr. Ensemble" RRUFF column; 734 patterns (§5.1).
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "crystal_system/accuracy",
        "81.74",
        "%",
        "RRUFF (734)",
        "rruff",
    ),
    ("alpha", "alphadiffract", "experimental", "space_group/accuracy", "66.21", "%", "RRUFF (734)", "rruff"),
    # AlphaDiffract §2.4, end of the second paragraph (Figure 3b): "over 87%" of the ensemble's RRUFF predictions
    # within 1 edge. Printed as "87" (was "87.0", a precision the paper does not give).
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "space_group/within_1_edge",
        "87",
        "%",
        "RRUFF (734)",
        "rruff_edge",
    ),
    # AlphaDiffract §2.3, last paragraph (Figure 2e): "with μ = 1, over 85% of predictions on RRUFF are correct
    # or ... within 1 edge", for the classification-only models trained to choose μ.
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "space_group/within_1_edge",
        "85",
        "%",
        "RRUFF (734)",
        "rruff_edge_cls",
    ),
    # AlphaDiffract §2.5 first paragraph and Table 3 (RRUFF, "Ours"): on the 240 RRUFF patterns with complete
    # structures (§5.1: "only the subset of 240 structures for lattice parameter regression"), not the 734.
    # MAPE as printed there: 23.50 and 2.91 (were "23.5" and "2.9").
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "lattice/length_mae",
        "2.11",
        "Å",
        "RRUFF (240)",
        "rruff_lattice",
    ),
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "lattice/angle_mae",
        "2.72",
        "°",
        "RRUFF (240)",
        "rruff_lattice",
    ),
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "lattice/length_mape",
        "23.50",
        "%",
        "RRUFF (240)",
        "rruff_lattice",
    ),
    (
        "alpha",
        "alphadiffract",
        "experimental",
        "lattice/angle_mape",
        "2.91",
        "%",
        "RRUFF (240)",
        "rruff_lattice",
    ),
    # AlphaDiffract §2.4 second paragraph and Tables 1–2, "Cls. + Regr. Ensemble" ICSD / MP columns.
    ("alpha", "alphadiffract", "crystal_system", "accuracy", "92.22", "%", "ICSD validation", "val"),
    ("alpha", "alphadiffract", "space_group", "accuracy", "81.75", "%", "ICSD validation", "val"),
    ("alpha", "alphadiffract", "crystal_system", "accuracy", "79.00", "%", "MP validation", "val"),
    ("alpha", "alphadiffract", "space_group", "accuracy", "59.54", "%", "MP validation", "val"),
    # AlphaDiffract §2.6, Table 4, RRUFF row: median 1.04 ms per sample and 871 samples/s, single model, "batch
    # size 1" (Table 4 caption). Keyed by batch size, so they sit beside our batch-1 numbers only (our
    # throughput_best / inference_throughput_per_s is at another batch size).
    ("alpha", "alphadiffract", "efficiency", "latency_ms_batch1", "1.04", "ms", "RRUFF (734)", "h100"),
    ("alpha", "alphadiffract", "efficiency", "throughput_batch1", "871", "1/s", "RRUFF (734)", "h100"),
    # AlphaDiffract §2.4 first paragraph and Tables 1–2, "Baseline" RRUFF column.
    (
        "alpha",
        "majority_class",
        "experimental",
        "crystal_system/accuracy",
        "26.98",
        "%",
        "RRUFF (734)",
        "rruff_major",
    ),
    (
        "alpha",
        "majority_class",
        "experimental",
        "space_group/accuracy",
        "3.27",
        "%",
        "RRUFF (734)",
        "rruff_major",
    ),
)

PUBLISHED: tuple[PublishedNumber, ...] = tuple(
    PublishedNumber(method, PAPERS[paper], task, metric, text, unit, dataset, PROTOCOLS[protocol])
    for paper, method, task, metric, text, unit, dataset, protocol in _ROWS
)


def published_rows() -> list[tuple[str, ...]]:
    """Rows (method, task, metric, value, dataset, protocol, paper), sorted."""
    rows = []
    for p in PUBLISHED:
        value = f"{p.text} {p.unit}".strip()
        rows.append((p.method, p.task, p.metric, value, p.dataset, p.protocol, p.paper))
    return sorted(rows)
