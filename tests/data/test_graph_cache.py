"""Exactness of the compact graph cache (format 4): the graphs an encoder reads from the cache equal an independent
pymatgen neighbour search (edges matched as sets of (centre, neighbour, image), distances and vectors within
1e-5 Å) and the previous format's values (the float32 outputs of :mod:`pxrdbench.data.graphs`) within one
float32 ulp; old-format caches are refused with a clear message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.io.cif import CifWriter

from pxrdbench.data.cache import DatasetCache
from pxrdbench.data.cache_arrays import image_offsets
from pxrdbench.data.entry import BuildParams, process_entry
from pxrdbench.data.graphs import cgcnn_neighbors, radius_graph
from pxrdbench.data.store import CACHE_FORMAT, build_cache, cache_key
from pxrdbench.data.structure_io import read_cif_text
from pxrdbench.data.torch_dataset import graph_data, graph_from_arrays
from pxrdbench.errors import CacheError, DatasetError, StructureError

OLIVINE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "sources"
    / "cifs"
    / "minerals"
    / "olivine_disordered.cif"
)
TOL = 1e-5  # Å
PARAMS = BuildParams()


def structures() -> dict[str, Structure]:
    """Test crystals: a triclinic cell, atoms within 1e-7 of the cell faces, a thin cell (a chain along c) whose
    12 nearest neighbours are images up to ±6, and one isolated atom (empty radius graph, CGCNN padding only)."""
    return {
        "triclinic": Structure(
            Lattice.from_parameters(4.1, 5.3, 6.2, 81.0, 97.0, 103.0),
            ["Si", "O", "O", "Mg"],
            [[0.1, 0.2, 0.3], [0.45, 0.1, 0.7], [0.8, 0.6, 0.15], [0.3, 0.75, 0.55]],
        ),
        "boundary": Structure(
            Lattice.from_parameters(5.2, 6.1, 7.3, 90.0, 104.0, 90.0),
            ["Na", "Cl", "K", "Br"],
            [[1e-7, 0.5, 0.5], [0.9999999, 1e-7, 0.25], [0.5, 0.9999995, 0.9999998], [0.0, 0.0, 0.0]],
        ),
        "thin": Structure(Lattice.tetragonal(9.5, 1.3), ["Cu"], [[0.5, 0.5, 0.0]]),  # a chain along c
        "isolated": Structure(Lattice.cubic(9.0), ["Xe"], [[0.5, 0.5, 0.5]]),
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[DatasetCache, dict[str, Structure]]:
    """A cif_dir cache of the test crystals and the olivine fixture, with each structure parsed independently."""
    folder = tmp_path_factory.mktemp("graph-cifs")
    for name, structure in structures().items():
        CifWriter(structure).write_file(folder / f"{name}.cif")
    shutil.copy(OLIVINE, folder / "olivine.cif")
    path = build_cache(f"cif_dir:{folder}", root=tmp_path_factory.mktemp("graph-cache"), log=lambda m: None)
    cache = DatasetCache.open(path)
    parsed = {p.stem: read_cif_text(p.read_text(), p.stem) for p in folder.glob("*.cif")}
    return cache, parsed


def rows(cache: DatasetCache) -> dict[str, int]:
    return {str(i): r for r, i in enumerate(cache.entries["id"])}


def test_every_test_crystal_is_cached_with_exact_float64_atoms(built) -> None:
    cache, parsed = built
    assert set(rows(cache)) == set(parsed) == {"triclinic", "boundary", "thin", "isolated", "olivine"}
    for name, row in rows(cache).items():
        s = parsed[name]
        assert np.array_equal(cache.ragged("atoms.frac")[row], s.frac_coords), name
        assert np.array_equal(cache.arrays["atoms.lattice"][row], s.lattice.matrix), name
    frac = parsed["boundary"].frac_coords
    assert frac.max() > 0.99999 and 0 < frac[frac > 0].min() < 1e-6  # the near-face atoms survived the CIF


def pymatgen_edges(s: Structure, r: float) -> dict[tuple[int, int, tuple[int, ...]], float]:
    """Independent reference: {(centre i, neighbour j, image): distance} from ``get_neighbor_list``."""
    centre, neighbour, images, distance = s.get_neighbor_list(r)
    return {
        (int(i), int(j), tuple(int(x) for x in np.rint(img))): float(d)
        for i, j, img, d in zip(centre, neighbour, images, distance, strict=True)
    }


def cached_edges(graph) -> list[tuple[int, int, tuple[int, ...]]]:
    j, i = graph.edge_index.numpy()
    return [
        (int(a), int(b), tuple(int(x) for x in img)) for a, b, img in zip(i, j, graph.cell_shift, strict=True)
    ]


def with_images(cache: DatasetCache, row: int, kind: str):
    """What the encoder sees (graph_data) plus the stored image offsets to match edges with."""
    graph = graph_data(cache, row, kind)
    graph.cell_shift = cache.graph_arrays(row, kind)["cell_shift"]
    return graph


def test_radius_graph_matches_pymatgen_neighbour_list(built) -> None:
    cache, parsed = built
    for name, row in rows(cache).items():
        s = parsed[name]
        reference = pymatgen_edges(s, PARAMS.radius_cutoff)
        graph = with_images(cache, row, "radius")
        edges = cached_edges(graph)
        assert len(edges) == len(set(edges)) and set(edges) == set(reference), name
        expected = np.array([reference[e] for e in edges])
        assert np.abs(graph.edge_dist.numpy() - expected).max(initial=0) <= TOL, name
        vectors = np.array(
            [s.lattice.get_cartesian_coords(s.frac_coords[j] + img) - s.cart_coords[i] for i, j, img in edges]
        ).reshape(-1, 3)
        assert np.abs(graph.edge_vec.numpy() - vectors).max(initial=0) <= TOL, name
    assert with_images(cache, rows(cache)["isolated"], "radius").edge_index.shape == (2, 0)


def test_cgcnn_graph_matches_the_nearest_pymatgen_neighbours(built) -> None:
    cache, parsed = built
    k, pad = PARAMS.cgcnn_max_neighbors, PARAMS.cgcnn_radius + 1.0
    for name, row in rows(cache).items():
        s = parsed[name]
        reference = pymatgen_edges(s, PARAMS.cgcnn_radius)
        graph = with_images(cache, row, "cgcnn")
        edges, dist = cached_edges(graph), graph.edge_dist.numpy()
        assert len(edges) == k * len(s), name
        for i in range(len(s)):
            mine = edges[i * k : (i + 1) * k]
            assert all(e[0] == i for e in mine)
            nearest = sorted(d for (c, _, _), d in reference.items() if c == i)[:k]
            real = [e for e in mine if e != (i, i, (0, 0, 0))]
            assert len(real) == len(nearest) and set(real) <= set(reference), (name, i)
            got = dist[i * k : (i + 1) * k]
            assert np.abs(got[: len(real)] - [reference[e] for e in real]).max(initial=0) <= TOL
            assert np.abs(got[: len(real)] - nearest).max(initial=0) <= TOL  # the k nearest, nearest first
            assert np.all(got[len(real) :] == np.float32(pad))
    assert np.all(with_images(cache, rows(cache)["isolated"], "cgcnn").edge_dist.numpy() == pad)
    assert int(np.abs(cache.graph_arrays(rows(cache)["thin"], "cgcnn")["cell_shift"]).max()) == 6


def test_graphs_equal_the_previous_format_within_float32_rounding(built) -> None:
    """Format ≤ 3 stored the float32 outputs of ``radius_graph`` / ``cgcnn_neighbors`` as they are."""
    cache, parsed = built
    for name, row in rows(cache).items():
        s = parsed[name]
        old_r = radius_graph(s, PARAMS.radius_cutoff)
        new_r = cache.graph_arrays(row, "radius")
        assert np.array_equal(new_r["edge_index"], old_r["edge_index"]), name
        np.testing.assert_array_max_ulp(new_r["distance"], old_r["distance"], maxulp=1)
        assert np.abs(new_r["edge_vec"] - old_r["edge_vec"]).max(initial=0) <= 4e-7 * PARAMS.radius_cutoff
        old_c = cgcnn_neighbors(s, PARAMS.cgcnn_radius, PARAMS.cgcnn_max_neighbors)
        new_c = cache.graph_arrays(row, "cgcnn")
        assert np.array_equal(new_c["edge_index"], old_c["edge_index"]), name
        np.testing.assert_array_max_ulp(new_c["distance"], old_c["distance"], maxulp=1)
        assert new_c["frac"].dtype == np.float32 and np.array_equal(
            new_c["frac"], s.frac_coords.astype(np.float32)
        )


def test_uncached_items_give_the_same_graphs(built) -> None:
    """Items built outside the cache (Rietveld hidden phases: ``process_entry`` → ``graph_from_arrays``)."""
    cache, parsed = built
    row = rows(cache)["triclinic"]
    result = process_entry("triclinic", parsed["triclinic"], PARAMS)
    assert not isinstance(result, str)
    for kind in ("cgcnn", "radius"):
        direct, cached = graph_from_arrays({**result["atoms"], **result[kind]}), graph_data(cache, row, kind)
        assert np.array_equal(direct.edge_index.numpy(), cached.edge_index.numpy())
        np.testing.assert_array_max_ulp(direct.edge_dist.numpy(), cached.edge_dist.numpy(), maxulp=1)
        assert np.array_equal(direct.frac_coords.numpy(), cached.frac_coords.numpy())


def test_stored_graphs_are_compact(built) -> None:
    cache, _ = built
    arrays = cache.arrays
    assert not [k for k in arrays if k.endswith(("distance.values", "edge_vec.values", "edge_index.values"))]
    assert arrays["radius.image.values"].dtype == np.int8 and arrays["cgcnn.image.values"].dtype == np.int8
    assert arrays["radius.neighbor.values"].dtype == np.uint8  # fewer than 256 sites per structure here
    assert arrays["atoms.frac.values"].dtype == np.float64 and arrays["atoms.lattice"].dtype == np.float64
    assert len(arrays["radius.degree.values"]) == len(arrays["atoms.z.values"])
    with pytest.raises(DatasetError, match="unknown graph kind"):
        cache.graph_arrays(0, "knn")


def test_image_offsets_must_be_small_integers() -> None:
    assert image_offsets(np.array([[1.0, -2.0, 0.0]])).dtype == np.int8
    with pytest.raises(StructureError, match="int8"):
        image_offsets(np.array([[128.0, 0.0, 0.0]]))
    with pytest.raises(StructureError, match="not an integer"):
        image_offsets(np.array([[0.5, 0.0, 0.0]]))


def test_an_old_format_cache_is_refused_with_a_rebuild_hint(built, tmp_path) -> None:
    cache, _ = built
    old = tmp_path / cache.path.name
    shutil.copytree(cache.path, old)
    manifest = json.loads((old / "manifest.json").read_text())
    (old / "manifest.json").write_text(json.dumps({**manifest, "cache_format": 3}))
    with pytest.raises(CacheError, match=rf"cache format 3 != {CACHE_FORMAT}.*pxrdbench data build cif_dir:"):
        DatasetCache.open(old)
    key = cache_key(manifest["dataset"], PARAMS, None, 0, (0.8, 0.1, 0.1))
    assert (
        CACHE_FORMAT == 4 and key["cache_format"] == 4
    )  # the format is hashed: a new format → new directory
