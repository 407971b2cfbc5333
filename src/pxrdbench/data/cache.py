"""Read access to a built dataset cache (see :mod:`pxrdbench.data.store` for the layout)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pxrdbench.data.entry import MAX_Z, BuildParams
from pxrdbench.data.ragged import Ragged, load_ragged
from pxrdbench.errors import DatasetError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetCache:
    """A verified cache directory: entries table, ragged arrays and manifest, loaded into memory once."""

    path: Path
    manifest: dict[str, Any]
    entries: pd.DataFrame

    @classmethod
    def open(cls, path: Path | str) -> DatasetCache:
        """Open and verify a cache directory (checksums of every file)."""
        from pxrdbench.data.store import verify_cache

        path = Path(path)
        manifest = verify_cache(path)
        entries = pd.read_csv(path / "entries.csv", keep_default_na=False)
        return cls(path=path, manifest=manifest, entries=entries)

    @classmethod
    def build_or_open(cls, dataset: str, **kwargs: Any) -> DatasetCache:
        """Build the cache if needed (see :func:`pxrdbench.data.store.build_cache`) and open it."""
        from pxrdbench.data.store import build_cache

        return cls.open(build_cache(dataset, **kwargs))

    @property
    def name(self) -> str:
        return str(self.manifest["dataset"])

    @property
    def hash(self) -> str:
        return str(self.manifest["hash"])

    @property
    def split_hash(self) -> str:
        return str(self.manifest["split_hash"])

    @property
    def params(self) -> BuildParams:
        p = dict(self.manifest["params"])
        p["ladder"] = tuple(p["ladder"])
        return BuildParams(**p)

    def __len__(self) -> int:
        return len(self.entries)

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.path / "arrays.npz") as npz:
            return {k: np.asarray(npz[k]) for k in npz.files}

    def ragged(self, name: str) -> Ragged:
        return load_ragged(self.arrays, name)

    @cached_property
    def reflections_d(self) -> Ragged:
        return self.ragged("reflections.d")

    @cached_property
    def reflections_intensity(self) -> Ragged:
        return self.ragged("reflections.intensity")

    @cached_property
    def reflections_hkl(self) -> Ragged:
        return self.ragged("reflections.hkl")

    def split_indices(self, split: str) -> np.ndarray:
        """Row indices of one split (``train``, ``val``, ``test``) or ``all``."""
        if split == "all":
            return np.arange(len(self.entries))
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; use one of {SPLITS} or 'all'")
        return np.flatnonzero(self.entries["split"].to_numpy() == split)

    @cached_property
    def labels(self) -> dict[str, np.ndarray]:
        """Label arrays over all rows (space_group is 0-based here, as the models use it)."""
        e = self.entries
        return {
            "crystal_system": e["crystal_system"].to_numpy(np.int64),
            "space_group": e["space_group"].to_numpy(np.int64) - 1,
            "extinction_group": e["extinction_group"].to_numpy(np.int64),
            "lattice": e[["a", "b", "c", "alpha", "beta", "gamma"]].to_numpy(np.float32),
        }

    @cached_property
    def element_multi_hot(self) -> np.ndarray:
        """Bool[N, 100]: element multi-hot over Z = 1..100."""
        out = np.zeros((len(self.entries), MAX_Z), dtype=bool)
        for i, text in enumerate(self.entries["elements"].astype(str)):
            for z in text.split():
                out[i, int(z) - 1] = True
        return out

    def duplicate_set_labels(self) -> np.ndarray:
        """Str[N]: each row's within-source duplicate-set label (the set's smallest id; "" when it has none).

        Read from the ``duplicate_set`` column of ``entries.csv``; an entries table without that column (one
        assembled by hand) gets it computed from the cached atoms, exactly as the build does.
        """
        if "duplicate_set" not in self.entries.columns:
            self.entries["duplicate_set"] = self._compute_duplicate_sets()
        return self.entries["duplicate_set"].astype(str).to_numpy()

    def duplicate_sets(self) -> np.ndarray:
        """Int64[N]: for every row, the row index of its duplicate set's representative (itself when alone).

        The representative is the row whose id is the set's label (its smallest id). Truth for query row
        ``i`` among candidate rows ``R`` is ``rep[R] == rep[i]``. Sets hold exact duplicates of one source
        (:mod:`pxrdbench.data.duplicates`), which always share a split.
        """
        labels = self.duplicate_set_labels()
        row_of = {str(i): r for r, i in enumerate(self.entries["id"].astype(str))}
        return np.array([row_of[lab] if lab else r for r, lab in enumerate(labels)], dtype=np.int64)

    def _compute_duplicate_sets(self) -> list[str]:
        from pxrdbench.data.duplicates import DuplicateCandidate, duplicate_sets, structure_loader

        e = self.entries
        z, frac = self.ragged("atoms.z"), self.ragged("atoms.frac")
        lattice = self.arrays["atoms.lattice"].astype(np.float32)  # float32 atoms, as the build compares them
        cells = e[["a", "b", "c", "alpha", "beta", "gamma"]].to_numpy(float)
        return duplicate_sets(
            [
                DuplicateCandidate(
                    id=str(e["id"].iloc[r]),
                    source=str(e["source"].iloc[r]),
                    formula=str(e["formula"].iloc[r]),
                    space_group=int(e["space_group"].iloc[r]),
                    lattice=tuple(cells[r]),
                    structure=structure_loader(z[r], frac[r].astype(np.float32), lattice[r]),
                )
                for r in range(len(e))
            ]
        )

    def reflections(self, index: int, d_min: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(d Å, m·|F|²) of one structure for d >= d_min (descending d)."""
        d = self.reflections_d[index]
        keep = d >= d_min
        return d[keep], self.reflections_intensity[index][keep]

    def graph_arrays(self, index: int, kind: str = "cgcnn") -> dict[str, np.ndarray]:
        """Atoms and edges of one structure (``kind`` "cgcnn", "radius" or "atoms"): z, frac and lattice
        (float32, rows = vectors, Å), edge_index int64 (2, E) [neighbour j, centre i], distance float32 (E,),
        cell_shift int8 (E, 3) and, for "radius", edge_vec float32 (E, 3). "atoms" has no edges (E = 0), for
        encoders that build their own pairs (CSPNet's fully connected graph).

        Distances and edge vectors are rebuilt in float64 from the stored float64 atoms and image offsets
        (:func:`pxrdbench.data.cache_arrays.decode_graph`); CGCNN padding gets ``cgcnn_radius`` + 1 Å.
        """
        from pxrdbench.data.cache_arrays import GRAPH_KINDS, decode_graph

        if kind not in (*GRAPH_KINDS, "atoms"):
            raise DatasetError(f"unknown graph kind {kind!r}; use one of {(*GRAPH_KINDS, 'atoms')}")
        frac, lattice = self.ragged("atoms.frac")[index], self.arrays["atoms.lattice"][index]
        if kind == "atoms":
            return {
                "z": self.ragged("atoms.z")[index],
                "frac": frac.astype(np.float32),
                "lattice": lattice.astype(np.float32),
                "edge_index": np.zeros((2, 0), dtype=np.int64),
                "distance": np.zeros(0, dtype=np.float32),
                "cell_shift": np.zeros((0, 3), dtype=np.int8),
            }
        degree = self.ragged("radius.degree")[index] if kind == "radius" else None
        graph = decode_graph(
            kind,
            frac,
            lattice,
            self.ragged(f"{kind}.neighbor")[index],
            self.ragged(f"{kind}.image")[index],
            degree=degree,
            pad_distance=float(self.manifest["params"]["cgcnn_radius"]) + 1.0,
        )
        atoms = {
            "z": self.ragged("atoms.z")[index],
            "frac": frac.astype(np.float32),
            "lattice": lattice.astype(np.float32),
        }
        return {**atoms, **graph}

    def info(self) -> dict[str, Any]:
        """Counts per split and crystal system, distinct space groups, failures, within-source duplicate sets
        (``duplicate_sets``: sets of two or more; ``in_duplicate_sets``: entries in them), hash, size and build
        time."""
        from pxrdbench.symmetry.spacegroups import CRYSTAL_SYSTEMS

        e = self.entries
        per_cs = {
            split: {
                CRYSTAL_SYSTEMS[int(k)]: int(v) for k, v in sorted(g["crystal_system"].value_counts().items())
            }
            for split, g in e.groupby("split")
        }
        size = sum(f.stat().st_size for f in self.path.iterdir() if f.is_file())
        counts = self.manifest["counts"]
        dup = self.duplicate_set_labels()
        return {
            "dataset": self.name,
            "cache_dir": str(self.path),
            "cache_hash": self.hash,
            "split_hash": self.split_hash,
            "entries_read": counts["entries_seen"],
            "structures": len(e),
            "failed": counts["failed"],
            "failed_parse": counts["failed_parse"],
            "failed_process": counts["failed_process"],
            "duplicates_dropped": counts["duplicates_dropped"],
            "splits": {s: int((e["split"] == s).sum()) for s in SPLITS},
            "crystal_systems": per_cs,
            "distinct_space_groups": int(e["space_group"].nunique()),
            "groups": int(e["group"].nunique()),
            "disordered": int(e["disordered"].sum()),
            "duplicate_sets": len({d for d in dup if d}),
            "in_duplicate_sets": int(sum(1 for d in dup if d)),
            "size_bytes": size,
            "build_time_s": self.manifest["build_time_s"],
        }
