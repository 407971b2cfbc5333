"""Measured powder patterns: one loader per file format or set, and conversion onto a view's grid.

Every loader returns :class:`ExperimentalPattern` objects; :func:`to_grid` moves one to a view's wavelength
(Bragg's law), resamples it onto the view's 2θ grid and masks what the measurement does not cover.
"""

from .columns import load_columns
from .opxrd import iter_opxrd_archive, load_opxrd
from .pattern import (
    CRYSTAL_SYSTEMS,
    ExperimentalPattern,
    crystal_system_index,
    make_pattern,
    space_group_number,
    structure_labels,
    to_grid,
)
from .registry import EXTENSIONS, LOADERS, detect_format, list_formats, load_pattern
from .rietveld_cif import load_rietveld_cif
from .rruff908 import Rruff908Arrays, load_rruff908, rruff908_arrays
from .rruff_raw import load_rruff_dif, load_rruff_xy
from .xrdml import load_xrdml

__all__ = [
    "CRYSTAL_SYSTEMS",
    "EXTENSIONS",
    "LOADERS",
    "ExperimentalPattern",
    "Rruff908Arrays",
    "crystal_system_index",
    "detect_format",
    "iter_opxrd_archive",
    "list_formats",
    "load_columns",
    "load_opxrd",
    "load_pattern",
    "load_rietveld_cif",
    "load_rruff908",
    "load_rruff_dif",
    "load_rruff_xy",
    "load_xrdml",
    "make_pattern",
    "rruff908_arrays",
    "space_group_number",
    "structure_labels",
    "to_grid",
]
