"""Within-source exact duplicates: which pairs join a set (identical, origin-shifted, supercell and primitive
copies) and which do not (a 0.5 % larger cell, another source, another space group, moved atoms, the far end
of a finely stepped series); labels do not
depend on input order; structures load only when compared; the per-bucket cap is logged; the cache stores and
exposes the sets; a real AMCSD pair labelled duplicate also matches under pymatgen's default matcher."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.duplicates import (
    DuplicateCandidate,
    duplicate_sets,
    lattices_agree,
    make_matcher,
)
from pxrdbench.data.store import build_cache
from pxrdbench.errors import InputError
from pxrdbench.symmetry.labels import symmetry_labels

CIFS = Path(__file__).resolve().parents[1] / "fixtures" / "sources" / "cifs"


def rutile(a: float = 4.594, c: float = 2.959, x: float = 0.3053) -> Structure:
    """TiO2 rutile (P4_2/mnm, 136) with a free oxygen parameter x."""
    return Structure.from_spacegroup(
        "P4_2/mnm", Lattice.tetragonal(a, c), ["Ti", "O"], [[0, 0, 0], [x, x, 0]]
    )


def anatase() -> Structure:
    """TiO2 anatase (I4_1/amd, 141)."""
    return Structure.from_spacegroup(
        141, Lattice.tetragonal(3.785, 9.514), ["Ti", "O"], [[0, 0.75, 0.125], [0, 0.75, 0.3333]]
    )


def candidate(record_id: str, structure: Structure, source: str = "amcsd") -> DuplicateCandidate:
    """A candidate labelled as the cache labels it: spglib group and Niggli cell of the primitive cell."""
    labels = symmetry_labels(structure)
    return DuplicateCandidate(
        id=record_id,
        source=source,
        formula=structure.composition,
        space_group=labels.space_group_number,
        lattice=labels.niggli,
        structure=structure,
    )


def test_identical_structures_form_one_set_labelled_by_the_smallest_id() -> None:
    labels = duplicate_sets([candidate("b", rutile()), candidate("a", rutile()), candidate("c", anatase())])
    assert labels == ["a", "a", ""]


def test_a_pressure_series_member_with_a_half_percent_larger_cell_is_not_a_duplicate() -> None:
    base, squeezed = rutile(), rutile(4.594 * 1.005, 2.959 * 1.005)
    assert duplicate_sets([candidate("p0", base), candidate("p1", squeezed)]) == ["", ""]
    # the tight matcher alone rejects it too, while pymatgen's defaults (scale=True, ltol=0.2) would merge it
    assert not make_matcher().fit(base, squeezed)
    assert StructureMatcher().fit(base, squeezed)


def test_a_finely_stepped_series_is_not_chained_into_one_set() -> None:
    """Neighbours 0.06 % apart match; the ends (0.12 %) do not, so the third point cannot join via the second."""
    series = [candidate(f"t{k}", rutile(4.594 * (1 + 6e-4 * k), 2.959 * (1 + 6e-4 * k))) for k in range(3)]
    assert duplicate_sets(series) == ["t0", "t0", ""]
    assert duplicate_sets(series[1:]) == ["t1", "t1"]  # alone, the second and third points are one set


def test_another_source_or_another_space_group_is_never_a_duplicate() -> None:
    assert duplicate_sets([candidate("a", rutile(), "amcsd"), candidate("b", rutile(), "mp_cgcnn")]) == [
        "",
        "",
    ]
    assert duplicate_sets([candidate("r", rutile()), candidate("t", anatase())]) == ["", ""]


def test_same_cell_with_moved_atoms_is_not_a_duplicate() -> None:
    # the oxygen parameter 0.3053 -> 0.33 moves O by about 0.16 Å: same formula, group and cell
    assert duplicate_sets([candidate("a", rutile()), candidate("b", rutile(x=0.33))]) == ["", ""]


def test_origin_shifted_supercell_and_primitive_copies_are_duplicates() -> None:
    """Decision: the cache describes a crystal by its primitive Niggli cell, so any cell choice or origin of
    the same structure is the same entry (and renders the same pattern)."""
    base = rutile()
    shifted = base.copy()
    shifted.translate_sites(range(len(shifted)), [0.11, 0.27, 0.4], frac_coords=True, to_unit_cell=True)
    supercell = base * (1, 1, 2)
    labels = duplicate_sets([candidate("a", base), candidate("b", shifted), candidate("c", supercell)])
    assert labels == ["a", "a", "a"]
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    primitive = nacl.get_primitive_structure()
    assert len(primitive) == 2 and len(nacl) == 8
    assert duplicate_sets([candidate("conv", nacl), candidate("prim", primitive)]) == ["conv", "conv"]


def test_labels_do_not_depend_on_input_order() -> None:
    entries = [
        candidate("r1", rutile()),
        candidate("r2", rutile()),
        candidate("r3", rutile(4.594 * 1.005, 2.959 * 1.005)),
        candidate("r4", rutile(4.594 * 1.005, 2.959 * 1.005)),
        candidate("r5", rutile(x=0.33)),
        candidate("t1", anatase()),
        candidate("t2", anatase()),
        candidate("x1", rutile(), source="other"),
    ]
    expected = dict(zip([e.id for e in entries], duplicate_sets(entries), strict=True))
    assert expected == {
        "r1": "r1",
        "r2": "r1",
        "r3": "r3",
        "r4": "r3",
        "r5": "",
        "t1": "t1",
        "t2": "t1",
        "x1": "",
    }
    rng = random.Random(0)
    for _ in range(5):
        shuffled = entries[:]
        rng.shuffle(shuffled)
        assert dict(zip([e.id for e in shuffled], duplicate_sets(shuffled), strict=True)) == expected


def test_structures_load_lazily_and_only_for_candidate_pairs() -> None:
    calls: list[str] = []

    def loader(name: str, structure: Structure):
        def load() -> Structure:
            calls.append(name)
            return structure

        return load

    entries = [
        DuplicateCandidate(c.id, c.source, c.formula, c.space_group, c.lattice, loader(c.id, c.structure))
        for c in (candidate("a", rutile()), candidate("b", rutile()), candidate("t", anatase()))
    ]
    assert duplicate_sets(entries) == ["a", "a", ""]
    assert sorted(calls) == ["a", "b"]  # anatase has no candidate partner: never loaded, each loaded once


def test_the_per_bucket_cap_is_logged_and_counts_the_rest_as_distinct() -> None:
    messages: list[str] = []
    entries = [candidate(f"r{i}", rutile()) for i in range(3)]
    assert duplicate_sets(entries, max_calls_per_bucket=0, log=messages.append) == ["", "", ""]
    assert len(messages) == 1 and "remaining pairs are counted as distinct" in messages[0]
    # one call joins r0-r1; r0-r2 is the second call (the cap), so r2 stays alone
    assert duplicate_sets(entries, max_calls_per_bucket=1, log=messages.append) == ["r0", "r0", ""]


def test_repeated_ids_are_rejected() -> None:
    with pytest.raises(InputError, match="unique"):
        duplicate_sets([candidate("a", rutile()), candidate("a", rutile())])


def test_lattice_prefilter_is_relative_and_folds_niggli_angle_forms() -> None:
    cell = (3.0, 4.0, 5.0, 90.0, 95.0, 90.0)
    assert lattices_agree(cell, (3.002, 4.0, 5.0, 90.0, 95.0, 90.0))  # 0.067 %
    assert not lattices_agree(cell, (3.004, 4.0, 5.0, 90.0, 95.0, 90.0))  # 0.13 %
    assert lattices_agree(cell, (3.0, 4.0, 5.0, 90.05, 85.0, 90.0))  # all-acute / all-obtuse forms


def test_the_cache_stores_sets_and_maps_rows_to_representatives(tmp_path) -> None:
    folder = tmp_path / "cifs"
    folder.mkdir()
    for name in ("nacl_a", "nacl_b", "nacl_c"):
        (folder / f"{name}.cif").write_text((CIFS / "nacl.cif").read_text())
    (folder / "olivine.cif").write_text((CIFS / "minerals" / "olivine_disordered.cif").read_text())
    cache = DatasetCache.open(build_cache(f"cif_dir:{folder}", root=tmp_path / "cache", log=lambda m: None))
    ids = cache.entries["id"].tolist()
    assert ids == ["nacl_a", "nacl_b", "nacl_c", "olivine"]
    assert cache.entries["duplicate_set"].tolist() == ["nacl_a", "nacl_a", "nacl_a", ""]
    rep = cache.duplicate_sets()
    assert rep.dtype == np.int64 and rep.tolist() == [0, 0, 0, 3]
    info = cache.info()
    assert (info["duplicate_sets"], info["in_duplicate_sets"]) == (1, 3)
    assert (cache.manifest["counts"]["duplicate_sets"], cache.manifest["counts"]["in_duplicate_sets"]) == (
        1,
        3,
    )
    # an entries table without the column (assembled by hand) gets the same sets from the cached atoms
    bare = DatasetCache(cache.path, cache.manifest, cache.entries.drop(columns="duplicate_set"))
    assert bare.duplicate_sets().tolist() == rep.tolist()


AMCSD_PAIR = (401, 1091)  # Co2SiO4 olivine (Pnma), two refinements; labelled one set by the AMCSD build


def test_an_amcsd_pair_labelled_duplicate_also_matches_under_pymatgen_defaults() -> None:
    """Reference check on real data: the pair our rule calls duplicate is ``StructureMatcher().fit``-equal."""
    pytest.importorskip("larixite")
    from larixite.amcsd import AMCSD

    from pxrdbench.data.sources.amcsd import default_db_path
    from pxrdbench.data.structure_io import read_cif_text

    db = AMCSD(str(default_db_path()), read_only=True)
    structures = [read_cif_text(db.get_cif(i).ciftext, f"amcsd:{i}") for i in AMCSD_PAIR]
    entries = [candidate(f"amcsd:{i}", s) for i, s in zip(AMCSD_PAIR, structures, strict=True)]
    assert duplicate_sets(entries) == ["amcsd:1091", "amcsd:1091"]  # "amcsd:1091" < "amcsd:401" as strings
    assert StructureMatcher().fit(*structures)
