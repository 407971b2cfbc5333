"""Error types. Every message names the offending input (file, row, id or argument) and the cause."""

from __future__ import annotations


class PxrdbenchError(Exception):
    """Base class of every error pxrdbench raises on purpose."""


class InputError(PxrdbenchError, ValueError):
    """Bad user input. ``source`` names the input (path, row, id, argument); ``reason`` says what is wrong."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def __reduce__(self) -> tuple:
        """Pickle with (source, reason) so the error crosses process boundaries (worker pools)."""
        return (type(self), (self.source, self.reason))


class StructureError(InputError):
    """A crystal structure cannot be parsed or is physically invalid (no sites, zero volume, unknown element)."""


class PatternError(InputError):
    """A measured or rendered pattern is invalid (NaN, non-increasing 2θ, empty, wrong array keys)."""


class WavelengthError(InputError):
    """A wavelength is missing, unknown or non-positive, or a 2θ range is empty."""


class DatasetError(PxrdbenchError):
    """A dataset cannot be found or built (the message says where to put the files or how to get them)."""


class CacheError(PxrdbenchError):
    """A cache directory is corrupt or partial; callers rebuild rather than read it."""


class ConfigError(PxrdbenchError, ValueError):
    """An unknown name (model, view, dataset, preset) or an invalid configuration value."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...], kind: str) -> ConfigError:
    """Build a ConfigError for an unknown ``name`` of ``kind`` with close matches from ``choices``."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(choices))}.")
