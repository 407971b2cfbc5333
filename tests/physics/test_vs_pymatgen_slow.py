"""pxrdbench's stick patterns against pymatgen's XRDCalculator on real structures (slow).

75 Materials Project structures (first rows of ../shared/data/mp-cgcnn/structures.csv.gz) and 25 partially
occupied AMCSD structures of at most 40 sites (first in AMCSD id order, shipped with larixite), at Cu Kα and
Mo Kα (the mean wavelengths, used by both codes), 2θ = 0–90°. Every peak of scaled intensity ≥ 1 in either
list must appear in the other within 0.01° with |ΔI| ≤ 1 on the 0–100 scale. Peaks closer than 1e-4° are
summed in both lists first: pymatgen bins 2θ by rounding to multiples of 1e-5°, so two orbits of a nearly
symmetric cell 1e-8° apart can fall on both sides of a bin edge and become two half-height peaks.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Structure

from pxrdbench.data.structure_io import read_cif_text
from pxrdbench.errors import StructureError
from pxrdbench.physics.peaks import simulate
from pxrdbench.physics.wavelength import NAMED_SOURCES

pytestmark = pytest.mark.slow

N_MP = 75
N_AMCSD_DISORDERED = 25
MAX_AMCSD_SITES = 40


def _merge_close(two_theta: np.ndarray, intensity: np.ndarray, tol: float = 1e-4) -> tuple[np.ndarray, ...]:
    """Sum peaks closer than ``tol`` degrees."""
    if two_theta.size == 0:
        return two_theta, intensity
    starts = np.flatnonzero(np.concatenate(([True], np.diff(two_theta) > tol)))
    return two_theta[starts], np.add.reduceat(intensity, starts)


def _unmatched(tt_a, i_a, tt_b, i_b, min_intensity=1.0, tol_tt=0.01, tol_i=1.0) -> list[str]:
    """Peaks of list a with I ≥ min_intensity that have no partner in b within the tolerances."""
    problems = []
    for t, i in zip(tt_a[i_a >= min_intensity], i_a[i_a >= min_intensity], strict=True):
        near = np.flatnonzero(np.abs(tt_b - t) <= tol_tt)
        if not near.size or np.min(np.abs(i_b[near] - i)) > tol_i:
            problems.append(f"{t:.5f}° I={i:.3f}")
    return problems


@cache
def _mp_structures(data_root: str) -> tuple[tuple[str, Structure], ...]:
    import pandas as pd

    frame = pd.read_csv(f"{data_root}/mp-cgcnn/structures.csv.gz", nrows=N_MP)
    return tuple(
        (mid, read_cif_text(text, mid)) for mid, text in zip(frame["material_id"], frame["cif"], strict=True)
    )


@cache
def _amcsd_disordered() -> tuple[tuple[str, Structure], ...]:
    amcsd = pytest.importorskip("larixite.amcsd", reason="larixite (AMCSD database) is not installed")
    from sqlalchemy import text

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        db = amcsd.get_amcsd(download_full=False)
        ids = [row[0] for row in db.execall(text("select id from cif order by id"))]
    chosen = []
    for cif_id in ids:
        try:
            structure = read_cif_text(db.get_cif(cif_id).ciftext, f"amcsd:{cif_id}")
        except StructureError:
            continue
        if not structure.is_ordered and len(structure) <= MAX_AMCSD_SITES:
            chosen.append((f"amcsd:{cif_id}", structure))
        if len(chosen) == N_AMCSD_DISORDERED:
            break
    return tuple(chosen)


@pytest.mark.parametrize("source", ["CuKa", "MoKa"])
def test_real_structures_agree_with_pymatgen(shared_data, source):
    structures = list(_mp_structures(str(shared_data))) + list(_amcsd_disordered())
    assert len(structures) >= 100
    assert sum(not s.is_ordered for _, s in structures) >= 20
    lam = NAMED_SOURCES[source].angstrom
    calculator = XRDCalculator(wavelength=lam)
    failures = []
    for name, structure in structures:
        ours = simulate(structure, lam, (0, 90), source=name)
        theirs = calculator.get_pattern(structure, two_theta_range=(0, 90))
        tt_o, i_o = _merge_close(ours.two_theta, ours.intensity)
        tt_p, i_p = _merge_close(np.asarray(theirs.x), np.asarray(theirs.y))
        missing = _unmatched(tt_o, i_o, tt_p, i_p) + _unmatched(tt_p, i_p, tt_o, i_o)
        if missing:
            failures.append(f"{name}: {missing[:3]}")
    assert not failures, f"{len(failures)} of {len(structures)} patterns differ at {source}: {failures[:5]}"
