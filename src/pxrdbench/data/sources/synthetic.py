"""Synthetic random crystals from pyxtal, for rare space groups and tiny test sets.

For every requested space group and index ``i`` the generator draws, from a numpy Generator seeded with
``(seed, space group, i)`` (so each entry is reproducible on its own), a composition from a fixed element
palette (binary/ternary oxides, halides and intermetallics), atom counts built from the group's Wyckoff
multiplicities, and a random crystal ``pyxtal().from_random(3, sg, species, numIons, factor=volume_factor)``.
A draw is kept only when spglib (symprec 0.1 Å) finds the requested group; incompatible or failed draws are
retried with a new composition up to ``max_attempts`` times, then the entry becomes a SourceFailure.
Record id ``"synthetic:<sg>:<i>"``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from itertools import islice

import numpy as np

from pxrdbench.data.records import SourceFailure, StructureRecord
from pxrdbench.data.sources.base import SourceInfo, SourceItem, check_max_structures
from pxrdbench.errors import InputError

SOURCE = "synthetic"
GENERATOR_VERSION = 1  # bump when the drawing procedure changes (cache keys)
DEFAULT_N_PER_GROUP = (
    5  # 1,150 entries: 97 s for `data build synthetic --workers 2` (generation in the main process)
)
OXIDE_CATIONS = ("Li", "Na", "Mg", "Al", "K", "Ca", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn",
                 "Ga", "Sr", "Y", "Zr", "Nb", "Mo", "Sn", "Ba", "La", "W")  # fmt: skip
HALIDE_CATIONS = ("Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "Ag", "Cu", "Zn", "Pb")
HALOGENS = ("F", "Cl", "Br", "I")
METALS = (
    "Mg",
    "Al",
    "Si",
    "Ti",
    "Fe",
    "Co",
    "Ni",
    "Cu",
    "Zn",
    "Ga",
    "Zr",
    "Nb",
    "Mo",
    "Pd",
    "Ag",
    "Sn",
    "Pt",
    "Au",
)
FAMILIES = ("oxide", "halide", "intermetallic")


def draw_species(rng: np.random.Generator) -> tuple[str, list[str]]:
    """A chemical family and 2–3 distinct elements; for ionic families the anion comes last."""
    family = FAMILIES[int(rng.integers(len(FAMILIES)))]
    n_species = int(rng.integers(2, 4))
    if family == "intermetallic":
        return family, [str(e) for e in rng.choice(METALS, size=n_species, replace=False)]
    cations, anion = (
        (OXIDE_CATIONS, "O") if family == "oxide" else (HALIDE_CATIONS, str(rng.choice(HALOGENS)))
    )
    return family, [*(str(e) for e in rng.choice(cations, size=n_species - 1, replace=False)), anion]


def draw_counts(
    rng: np.random.Generator,
    sites: Sequence[tuple[int, int]],
    n_species: int,
    max_atoms: int,
    *,
    force_general: bool = False,
) -> list[int]:
    """Atom counts per species, each a sum of 1–2 Wyckoff multiplicities.

    ``sites`` are (multiplicity, degrees of freedom) of the group's Wyckoff positions, the general position
    first. Sites are drawn with weight (1/m)·(3 if the site has free coordinates else 1): small cells, but
    positions that do not add symmetry. With ``force_general`` the last species also fills the general
    position (the only way some groups avoid a supergroup), and the cap rises to fit it. The largest count
    goes to the last species (the anion of ionic families). Returns [] when over the cap.
    """
    mult = np.array([m for m, _ in sites], dtype=int)
    weights = np.array([(3.0 if dof > 0 else 1.0) / m for m, dof in sites])
    weights /= weights.sum()
    counts = sorted(
        int(rng.choice(mult, size=int(rng.integers(1, 3)), p=weights).sum()) for _ in range(n_species)
    )
    cap = max_atoms
    if force_general:
        counts[-1] = int(mult[0]) + (counts[-1] if rng.random() < 0.3 else 0)
        cap = max(max_atoms, int(mult[0]) + (n_species - 1) * int(mult.min()) * 2)
    return counts if sum(counts) <= cap else []


def space_group_number(structure, symprec: float = 0.1) -> int:
    """International space-group number spglib finds for a pymatgen structure at ``symprec`` (Å)."""
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, [site.specie.Z for site in structure])
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    return 0 if dataset is None else int(dataset.number)


def generate_one(
    sg: int,
    index: int,
    *,
    seed: int = 0,
    volume_factor: float = 1.1,
    max_atoms: int = 48,
    max_attempts: int = 10,
    symprec: float = 0.1,
) -> SourceItem:
    """The synthetic entry ``(sg, index)``: a StructureRecord, or a SourceFailure after max_attempts draws."""
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group

    record_id = f"{SOURCE}:{sg}:{index}"
    rng = np.random.default_rng([seed, sg, index])
    group = Group(sg)
    sites = [(int(wp.multiplicity), int(wp.get_dof())) for wp in group]
    reasons: list[str] = []
    for attempt in range(1, max_attempts + 1):
        family, species = draw_species(rng)
        force_general = attempt > max_attempts // 2  # later draws put one species on the general position
        counts = draw_counts(rng, sites, len(species), max_atoms, force_general=force_general)
        if not counts or not group.check_compatible(counts)[0]:
            reasons.append(f"{species}{counts or '>max_atoms'} incompatible")
            continue
        crystal = pyxtal()
        try:
            crystal.from_random(3, sg, species, counts, factor=volume_factor, max_count=5, random_state=rng)
            structure = crystal.to_pymatgen()
        except Exception as exc:  # pyxtal gives up on crowded or incompatible draws
            reasons.append(f"{species}{counts}: {type(exc).__name__}")
            continue
        found = space_group_number(structure, symprec)
        if found != sg:
            reasons.append(f"{species}{counts}: spglib found {found}")
            continue
        meta = {
            "space_group": sg,
            "family": family,
            "attempts": attempt,
            "seed": seed,
            "volume_factor": volume_factor,
        }
        return StructureRecord(record_id, structure, SOURCE, "", meta)
    return SourceFailure(
        record_id, SOURCE, f"no valid crystal in {max_attempts} draws: " + "; ".join(reasons[-3:])
    )


def parse_space_groups(spec: str | Sequence[int] | None) -> list[int]:
    """Space-group numbers from ``None`` (all 230), a list, or text: ``"1-10"``, ``"225"``, ``"1-3/225"``."""
    if spec is None:
        return list(range(1, 231))
    if isinstance(spec, str):
        numbers: list[int] = []
        for part in spec.replace(",", "/").split("/"):
            lo, _, hi = part.strip().partition("-")
            try:
                numbers.extend(range(int(lo), int(hi or lo) + 1))
            except ValueError:
                raise InputError("space_groups", f"cannot read {part!r} in {spec!r}") from None
        spec = numbers
    groups = [int(g) for g in spec]
    bad = [g for g in groups if not 1 <= g <= 230]
    if bad or not groups:
        raise InputError("space_groups", f"space-group numbers must lie in 1..230, got {bad or 'none'}")
    return groups


def iter_synthetic(
    *,
    max_structures: int | None = None,
    root: str | os.PathLike[str] | None = None,
    space_groups: str | Sequence[int] | None = None,
    n_per_group: int = DEFAULT_N_PER_GROUP,
    seed: int = 0,
    volume_factor: float = 1.1,
    max_atoms: int = 48,
    max_attempts: int = 10,
) -> Iterator[SourceItem]:
    """Yield ``n_per_group`` random crystals per space group, index-major (all groups for index 0, then 1...).

    ``root`` is accepted for a uniform signature and, when given, read as the ``space_groups`` text (so the
    dataset name ``"synthetic:1-10"`` means groups 1 to 10).
    """
    limit = check_max_structures(max_structures)
    groups = parse_space_groups(str(root) if root is not None and space_groups is None else space_groups)
    if n_per_group < 0 or volume_factor <= 0 or max_atoms < 1 or max_attempts < 1:
        raise InputError(
            "synthetic", "need n_per_group >= 0, volume_factor > 0, max_atoms >= 1, max_attempts >= 1"
        )
    pairs = ((sg, i) for i in range(n_per_group) for sg in groups)
    for sg, i in islice(pairs, limit):
        yield generate_one(
            sg, i, seed=seed, volume_factor=volume_factor, max_atoms=max_atoms, max_attempts=max_attempts
        )


def fingerprint_synthetic(root: str | os.PathLike[str] | None = None) -> str:
    """The pyxtal version, generator version and the space groups requested."""
    from importlib.metadata import version

    groups = parse_space_groups(str(root) if root is not None else None)
    listed = hashlib.sha256(",".join(map(str, groups)).encode()).hexdigest()[:12]
    return f"pyxtal={version('pyxtal')};generator={GENERATOR_VERSION};n={DEFAULT_N_PER_GROUP};groups={listed}"


INFO = SourceInfo(
    name=SOURCE,
    iterate=iter_synthetic,
    fingerprint=fingerprint_synthetic,
    description="pyxtal random crystals (oxides, halides, intermetallics), seeded per entry, any group",
    expected_count=230 * DEFAULT_N_PER_GROUP,
    licence="generated (pyxtal MIT)",
    provenance="generated locally with pyxtal",
    notes="spglib (symprec 0.1) must find the requested group; failed draws are retried, then reported",
)
