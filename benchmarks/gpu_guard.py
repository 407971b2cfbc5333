"""Import guard of the GPU check: refuse the packages that the lent GPU machine does not have.

The machine has no pymatgen, spglib, pyxtal or larixite. :func:`install` puts a finder first on
``sys.meta_path`` that raises :class:`BlockedImportError` for them (a ``ModuleNotFoundError``, so code that
handles their absence behaves as it will there). It prints the module that tried the import to stderr at once
and records it in ``guard.violations``, even when the importer catches the error. So a CPU run here fails on
the same imports as the GPU machine, and says which file and line made them.
"""

from __future__ import annotations

import sys
from typing import Any

BLOCKED = ("pymatgen", "spglib", "pyxtal", "larixite")


class BlockedImportError(ModuleNotFoundError):
    """An import of a package that the GPU machine does not have."""


def importer(skip: int = 1) -> str:
    """``file:line (module)`` of the innermost frame outside the import machinery and this file."""
    frame = sys._getframe(skip)
    while frame is not None:
        file = frame.f_code.co_filename
        if not (file.startswith("<frozen") or "importlib" in file or file == __file__):
            return f"{file}:{frame.f_lineno} ({frame.f_globals.get('__name__', '?')})"
        frame = frame.f_back
    return "<unknown importer>"


class ImportGuard:
    """A meta-path finder that refuses ``blocked`` top-level packages and their submodules."""

    def __init__(self, blocked: tuple[str, ...] = BLOCKED) -> None:
        self.blocked = tuple(blocked)
        self.violations: list[dict[str, str]] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.partition(".")[0] not in self.blocked:
            return None
        who = importer(2)
        self.violations.append({"module": name, "importer": who})
        message = f"GPU-check import guard: {who} imports {name!r}, which the GPU machine does not have"
        print(f"\n*** {message}\n", file=sys.stderr, flush=True)
        raise BlockedImportError(message, name=name)


def install(blocked: tuple[str, ...] = BLOCKED) -> ImportGuard:
    """Put an :class:`ImportGuard` first on ``sys.meta_path``. Raises RuntimeError if a blocked package is
    already imported: the guard sees only imports made after it is installed."""
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in blocked)
    if loaded:
        raise RuntimeError(f"GPU-check import guard installed too late: already imported {loaded[:5]}")
    guard = ImportGuard(blocked)
    sys.meta_path.insert(0, guard)
    return guard
