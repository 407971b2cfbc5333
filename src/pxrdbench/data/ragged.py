"""Ragged arrays: many variable-length arrays stored as one concatenation plus offsets (compact, mmap-friendly)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Ragged:
    """``values[offsets[i]:offsets[i+1]]`` is item i. ``values`` may have trailing dimensions."""

    values: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, indices: Sequence[int]) -> Ragged:
        """A new Ragged holding the given items, in order."""
        parts = [self[int(i)] for i in indices]
        return pack(parts, dtype=self.values.dtype, trailing=self.values.shape[1:])


def pack(arrays: Sequence[np.ndarray], *, dtype: np.dtype | type, trailing: tuple[int, ...] = ()) -> Ragged:
    """Concatenate ``arrays`` (each of shape (n_i, *trailing)) into one Ragged."""
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if arrays:
        values = np.concatenate([np.asarray(a, dtype=dtype).reshape(-1, *trailing) for a in arrays])
    else:
        values = np.zeros((0, *trailing), dtype=dtype)
    return Ragged(values, offsets)


def save_ragged(store: dict[str, np.ndarray], name: str, ragged: Ragged) -> None:
    """Add ``name.values`` / ``name.offsets`` to a dict destined for ``np.savez``."""
    store[f"{name}.values"] = ragged.values
    store[f"{name}.offsets"] = ragged.offsets


def load_ragged(npz: np.lib.npyio.NpzFile | dict[str, np.ndarray], name: str) -> Ragged:
    return Ragged(np.asarray(npz[f"{name}.values"]), np.asarray(npz[f"{name}.offsets"]))
