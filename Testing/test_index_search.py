"""Case index search: the best slice pair by hand, aggregate ranking, and exact vs FAISS IVF agreement."""

from __future__ import annotations

import numpy as np
import pytest

from covidweak.index import CaseIndex
from covidweak.index.search import exact_knn, ivf_cells, segment_minima, squared_norms

SHA = "c" * 64


def _study(name: str) -> dict:
    return dict(study_id=name, patient_id=f"patient-{name}", diagnosis="covid", source_path=f"/ct/{name}.nii.gz")


@pytest.fixture
def tiny(tmp_path):
    """Three 2-d studies. Query rows q0 = (0.6, 0.8), q1 = (-1, 0). Distances by hand:
    A: q0-slice11 (0, 1) = sqrt(0.36 + 0.04) = 0.632 is its best pair (q0-slice10 (1, 0) = 0.894, q1 pairs >= 1.41);
    B: q1-slice3 (-0.6, -0.8) = sqrt(0.16 + 0.64) = 0.894 (q1-slice4 (0, -1) = 1.414, q0 pairs >= 1.897);
    C: q1-slice7 (-1, 0) = 0, an exact match."""
    index = CaseIndex.create(tmp_path / "ix", SHA, dim=2)
    index.add_study(_study("A"), np.array([[1, 0], [0, 1]], np.float32), [10, 11])
    index.add_study(_study("B"), np.array([[-0.6, -0.8], [0, -1]], np.float32), [3, 4])
    index.add_study(_study("C"), np.array([[-1, 0]], np.float32), [7])
    return index


QUERY = np.array([[0.6, 0.8], [-1.0, 0.0]], np.float32)
BY_HAND = [("C", 0.0, 1, 7), ("A", 0.4 ** 0.5, 0, 11), ("B", 0.8 ** 0.5, 1, 3)]


@pytest.mark.parametrize("approximate", [False, True])
def test_search_studies_returns_the_best_slice_pair(tiny, approximate):
    tiny.approximate_from = 1 if approximate else 10 ** 9
    results = tiny.search_studies(QUERY, 3, ranking="slice_pair")
    assert tiny.uses_approximate_search() == approximate
    assert [r["rank"] for r in results] == [1, 2, 3]
    for result, (study_id, distance, query_slice, match_slice) in zip(results, BY_HAND):
        assert (result["study_id"], result["query_slice"], result["match_slice"]) == (study_id, query_slice, match_slice)
        assert result["distance"] == pytest.approx(distance, abs=1e-3)
        assert (result["patient_id"], result["source_path"]) == (f"patient-{study_id}", f"/ct/{study_id}.nii.gz")
        assert result["diagnosis"] == "covid"


def test_search_slices_by_hand(tiny):
    lines = tiny.search_slices(QUERY, 2)
    assert [(r["study_id"], r["slice"]) for r in lines[0]] == [("A", 11), ("A", 10)]
    assert [r["distance"] for r in lines[0]] == pytest.approx([0.4 ** 0.5, 0.8 ** 0.5], abs=1e-5)
    assert [(r["rank"], r["study_id"], r["slice"], r["distance"]) for r in lines[1]][0] == (1, "C", 7, 0.0)


def test_aggregate_ranking_by_hand(tiny):
    """Centroids: query (-0.2, 0.4); A (0.5, 0.5), B (-0.3, -0.9), C (-1, 0). Distances sqrt(0.49 + 0.01) = 0.707,
    sqrt(0.01 + 1.69) = 1.304, sqrt(0.64 + 0.16) = 0.894, so A, C, B (the best slice pair would put C first);
    each result still names its study's nearest slice pair, as for slice_pair."""
    results = tiny.search_studies(QUERY, 3, ranking="aggregate")
    assert [(r["study_id"], r["query_slice"], r["match_slice"]) for r in results] == [("A", 0, 11), ("C", 1, 7), ("B", 1, 3)]
    assert [r["distance"] for r in results] == pytest.approx([0.50 ** 0.5, 0.80 ** 0.5, 1.70 ** 0.5], abs=1e-5)
    assert tiny.search_studies(QUERY, 3) == results  # the default ranking


def test_exact_helpers_break_ties_by_row():
    library = np.array([[0, 0], [1, 0], [0, 1], [1, 0]], np.float32)
    distances, rows = exact_knn(np.array([[1, 0]], np.float32), library, squared_norms(library), 3)
    assert rows.tolist() == [[1, 3, 0]] and distances[0].tolist() == pytest.approx([0, 0, 1])
    assert segment_minima(np.array([3.0, 1.0, 1.0, 5.0, 2.0]), np.array([0, 2, 3])).tolist() == [1, 2, 4]


def _clustered_library(index: CaseIndex, studies: int, slices: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, index.dim))
    items = []
    for i in range(studies):
        vectors = centres[i % 8] + 0.5 * rng.standard_normal((slices, index.dim))
        vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
        items.append((_study(f"s{i}"), vectors, range(slices)))
    index.add_studies(items)
    queries = centres[rng.integers(8, size=6)] + 0.5 * rng.standard_normal((6, index.dim))
    return (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)


def _answers(index: CaseIndex, queries: np.ndarray):
    slices = [[(r["study_id"], r["slice"]) for r in line] for line in index.search_slices(queries, 10)]
    studies = index.search_studies(queries, 5, ranking="slice_pair")  # the ranking that reads the IVF
    return slices, [(r["study_id"], r["query_slice"], r["match_slice"]) for r in studies], [r["distance"] for r in studies]


def test_exact_and_approximate_agree_on_a_small_library(tmp_path):
    """With nprobe >= nlist the IVF scans every cell, so it must return the exact answers."""
    index = CaseIndex.create(tmp_path / "ix", SHA, dim=16)
    queries = _clustered_library(index, studies=60, slices=20)
    assert index.nprobe >= ivf_cells(index.num_slices)
    exact = _answers(index, queries)
    index.approximate_from = 100
    approximate = _answers(index, queries)
    assert approximate[:2] == exact[:2]
    assert approximate[2] == pytest.approx(exact[2], abs=1e-4)
    assert (tmp_path / "ix" / f"faiss-0-{index.num_slices}.ivf").exists()


def test_prepare_search_builds_and_saves_the_ivf_once(tmp_path):
    from covidweak.progress import Progress

    index = CaseIndex.create(tmp_path / "ix", SHA, dim=16)
    _clustered_library(index, studies=10, slices=10)
    calls = []
    index.prepare_search(Progress(lambda done, total, message: calls.append((done, total))))
    assert calls == [] and not list((tmp_path / "ix").glob("faiss-*"))  # exact search needs no index
    index.approximate_from = 1
    index.prepare_search(Progress(lambda done, total, message: calls.append((done, total))))
    assert calls == [(0, 1), (1, 1)] and (tmp_path / "ix" / "faiss-0-100.ivf").exists()


def test_the_ivf_cache_follows_adds_and_removals(tmp_path):
    index = CaseIndex.create(tmp_path / "ix", SHA, dim=16, approximate_from=1)
    queries = _clustered_library(index, studies=30, slices=10)
    index.search_slices(queries, 1)
    newcomer = queries[:3]
    index.add_study(_study("new"), newcomer, [5, 6, 7])
    assert [line[0]["study_id"] for line in index.search_slices(newcomer, 1)] == ["new"] * 3
    assert index.search_studies(newcomer[1:2], 1, ranking="slice_pair")[0]["match_slice"] == 6
    index.remove_studies(["new", "s0"])
    found = {r["study_id"] for line in index.search_slices(queries, 20) for r in line}
    assert not found & {"new", "s0"}
    reopened = CaseIndex.open(tmp_path / "ix", approximate_from=1)
    assert _answers(reopened, queries) == _answers(index, queries)
    assert sorted(p.name for p in (tmp_path / "ix").glob("faiss-*")) == [f"faiss-1-{index.num_slices}.ivf"]
