"""Symmetry labels of a structure: space group, crystal system, Laue class, extinction group, Niggli cell.

The space group is found with spglib through pymatgen's ``SpacegroupAnalyzer``. Its stability is checked on a
tolerance ladder (the AlphaDiffract filter keeps only structures whose space group is the same for symprec
0.01–0.1 Å): ``symprec_stable`` is True when every rung of the ladder gives the same space group number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pxrdbench.errors import StructureError
from pxrdbench.symmetry.extinction import extinction_group_index, extinction_symbol
from pxrdbench.symmetry.spacegroups import (
    crystal_system,
    crystal_system_index,
    laue_class,
    point_group,
    space_group_symbol,
)

NIGGLI_TOLERANCE = 1e-3
"""Relative tolerance of pymatgen's Niggli reduction (the AlphaDiffract consistency tolerance)."""

if TYPE_CHECKING:
    from pymatgen.core import Structure


@dataclass(frozen=True)
class SymmetryLabels:
    """All symmetry labels of one structure (classification and lattice targets).

    ``niggli`` is (a, b, c) in Å and (α, β, γ) in degrees of the Niggli-reduced primitive lattice.
    ``groups_across_ladder`` holds the space-group number found at each symprec of the ladder, in order.
    """

    space_group_number: int
    space_group_symbol: str
    crystal_system: str
    crystal_system_index: int
    laue_class: str
    point_group: str
    extinction_group: int
    extinction_symbol: str
    niggli: tuple[float, float, float, float, float, float]
    symprec_stable: bool
    groups_across_ladder: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-serialisable; tuples become lists)."""
        out = asdict(self)
        out["niggli"] = list(self.niggli)
        out["groups_across_ladder"] = list(self.groups_across_ladder)
        return out


# Stand-in elements for relabelled sites: Z = 3..83 without the noble gases (all have an electronegativity).
_STAND_IN_Z: tuple[int, ...] = tuple(z for z in range(3, 84) if z not in (10, 18, 36, 54))


def _species_labelled(structure: Structure) -> Structure:
    """Copy of ``structure`` with one stand-in element per distinct site species string (ordered sites).

    Used only when spglib rejects a disordered structure: sites with the same species string (e.g.
    ``"Au:0.250, Cu:0.750"``) get the same element, so they stay symmetry-equivalent.
    """
    from pymatgen.core import Element, Structure

    labels: dict[str, int] = {}
    for site in structure:
        labels.setdefault(site.species_string, len(labels))
    if len(labels) > len(_STAND_IN_Z):
        raise ValueError(f"{len(labels)} distinct site species; at most {len(_STAND_IN_Z)} can be relabelled")
    species = [Element.from_Z(_STAND_IN_Z[labels[site.species_string]]) for site in structure]
    return Structure(structure.lattice, species, structure.frac_coords)


def _analyzer(structure: Structure, symprec: float, angle_tolerance: float) -> Any:
    """pymatgen SpacegroupAnalyzer (spglib) at the given tolerances (Å, degrees), whose dataset is computed.

    If spglib fails on the structure as given (some disordered inputs), sites are relabelled by species
    string.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle_tolerance)
        sga.get_space_group_number()
    except Exception:
        sga = SpacegroupAnalyzer(
            _species_labelled(structure), symprec=symprec, angle_tolerance=angle_tolerance
        )
    return sga


def _ladder_group(structure: Structure, symprec: float, angle_tolerance: float) -> int:
    """Space-group number at one rung of the tolerance ladder; 0 when spglib cannot decide there (an unstable rung,
    e.g. coordinates rounded in the file at a tight symprec), which makes the structure ``symprec_stable=False``."""
    try:
        return int(_analyzer(structure, symprec, angle_tolerance).get_space_group_number())
    except Exception:
        return 0


def symmetry_labels(
    structure: Structure,
    *,
    symprec: float = 0.1,
    angle_tolerance: float = 5.0,
    ladder: tuple[float, ...] = (0.01, 0.03, 0.05, 0.1),
    source: str = "structure",
    primitive_niggli: bool = True,
) -> SymmetryLabels:
    """Compute the symmetry labels of ``structure``.

    Args:
        structure: a pymatgen Structure; partial occupancies are allowed (spglib treats species + occupancy as
            the site label; if it fails, sites are relabelled by their species string).
        symprec: distance tolerance in Å for the reported space group.
        angle_tolerance: angle tolerance in degrees (used on every rung of the ladder too).
        ladder: symprec values (Å) at which the group is recomputed (``symprec_stable``).
        source: names the structure in error messages (file, id).
        primitive_niggli: reduce spglib's primitive cell (found at ``symprec``), so the Niggli cell is a
            property of the crystal, not of the cell the file happens to use (an fcc metal gives a = b = c,
            α = β = γ = 60° whether it is given conventional or primitive). False reduces the input lattice
            as given.

    The Niggli cell is pymatgen's ``Lattice.get_niggli_reduced_lattice(tol=NIGGLI_TOLERANCE)``; its tol is
    relative to the cube root of the cell volume (1e-3, the AlphaDiffract consistency tolerance).
    ``symprec_stable`` is True when every rung of the ladder gives the reported group.

    Raises:
        StructureError: the structure is empty or spglib/Niggli reduction fails.
    """
    if len(structure) == 0:
        raise StructureError(source, "structure has no sites")
    try:
        sga = _analyzer(structure, symprec, angle_tolerance)
        number = int(sga.get_space_group_number())
        across = tuple(_ladder_group(structure, p, angle_tolerance) for p in ladder)
        lattice = structure.lattice
        if primitive_niggli:
            primitive = sga.find_primitive()
            lattice = primitive.lattice if primitive is not None else lattice
        niggli = lattice.get_niggli_reduced_lattice(tol=NIGGLI_TOLERANCE)
    except Exception as exc:  # spglib / pymatgen raise many types; report them uniformly
        raise StructureError(source, f"symmetry analysis failed: {type(exc).__name__}: {exc}") from exc
    a, b, c = (float(x) for x in niggli.abc)
    alpha, beta, gamma = (float(x) for x in niggli.angles)
    return SymmetryLabels(
        space_group_number=number,
        space_group_symbol=space_group_symbol(number),
        crystal_system=crystal_system(number),
        crystal_system_index=crystal_system_index(number),
        laue_class=laue_class(number),
        point_group=point_group(number),
        extinction_group=extinction_group_index(number),
        extinction_symbol=extinction_symbol(number),
        niggli=(a, b, c, alpha, beta, gamma),
        symprec_stable=len(set(across)) <= 1 and (not across or across[0] == number),
        groups_across_ladder=across,
    )
