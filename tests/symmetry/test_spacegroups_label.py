"""``space_group_label``: the 1-based number and the short Hermann–Mauguin symbol."""

from __future__ import annotations

import pytest

from pxrdbench.errors import StructureError
from pxrdbench.symmetry.spacegroups import space_group_label


@pytest.mark.parametrize(
    ("number", "label"),
    [
        (1, "1 P1"),
        (2, "2 P-1"),
        (14, "14 P2_1/c"),
        (62, "62 Pnma"),
        (63, "63 Cmcm"),
        (166, "166 R-3m"),
        (194, "194 P6_3/mmc"),
        (225, "225 Fm-3m"),
        (229, "229 Im-3m"),
        (230, "230 Ia-3d"),
    ],
)
def test_known_labels(number: int, label: str) -> None:
    assert space_group_label(number) == label


@pytest.mark.parametrize("bad", [0, 231, -1, 2.5, True])
def test_out_of_range_numbers_are_refused(bad: object) -> None:
    with pytest.raises(StructureError):
        space_group_label(bad)  # type: ignore[arg-type]
