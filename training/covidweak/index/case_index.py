"""CaseIndex: the library of recommendation embeddings that ``covidweak similar`` searches.

DuCN (Sect. 2.3, similar case recommendation) transfers every image of the library into a
128-d embedding, keeps them "as an index database", and recommends the library images at
the smallest Euclidean distance from the query's embedding. The index stores one embedding
per lung slice of each study, the study's metadata (patient, diagnosis, source path, the
slice numbers) and the sha256 of the model that made the embeddings, since embeddings of
two models are not comparable.

Per-study aggregate: the mean of the study's slice embeddings, its centroid
(:func:`aggregate_embedding`), stored for every study.

How studies are ranked (``search_studies``): by default (``ranking="aggregate"``) by the Euclidean
distance between the two studies' centroids. A study is a set of slices, and the centroid of unit
embeddings keeps both where they lie and how far they spread (its length shrinks as the slices
disagree), so a study whose lesions pull some slices away from healthy lung sits apart from one
without. ``ranking="slice_pair"`` ranks by the best slice pair instead: min over query slices i
and library slices j of ||q_i - v_j||, the paper's image-to-image comparison. Either way each
result names the nearest slice pair inside the recommended study (query_slice, match_slice), the
images a radiologist should look at first.

Why the centroid is the default: chosen on two validation cohorts of phantom patients (seeds 59000 at
256²×64 and 59100 at 240²×48, 36 patients each, one study, a third per diagnosis) by nDCG@5 of lesion
similarity (:mod:`covidweak.similar.similarity`), other patients only, with the shipped
``ducn-light``: centroid 0.900 / 0.904, the L2-normalised centroid (this index's aggregate before
format 2) 0.881 / 0.878, a symmetric Chamfer distance 0.873 / 0.886, the best slice pair 0.646 /
0.666 (``python scripts/probes/ducn_rankings.py``). One close pair of slices says little about two
whole studies.

Search is exact below ``approximate_from`` slices (APPROXIMATE_FROM_SLICES by default) and
uses the FAISS IVF cache of search.py from there on; the files of storage.py are the only
source of truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..progress import Progress
from . import storage
from .checks import check_k, check_matrix, check_slice_numbers, study_row
from .search import (IVF_NPROBE, IvfCache, exact_knn, nearest_query_per_row, pairwise_distances, segment_minima,
                     squared_norms)

DUCN_EMBEDDING_DIM = 128
"""Length of DuCN's recommendation embedding (DuCN Sect. 2.3: ResNet-18 with its 1000 outputs replaced by 128)."""

APPROXIMATE_FROM_SLICES = 250_000
"""Libraries with at least this many slices are searched with the FAISS IVF index. Below it exact search
keeps recall at 1 and stays interactive on two cores (benchmarks/bench_index.py at 100k slices: 10-25 ms
per query slice, 0.4 s per 32-slice query study), while the IVF would lose 3-8 % of the true neighbours;
at 1M slices exact search takes 0.18 s per slice and 3.5 s per study, the IVF about 3 ms per slice."""

RANKINGS = ("aggregate", "slice_pair")  # the first is the default, see the module docstring
APPROXIMATE_CANDIDATES = 64
"""Nearest slices first fetched per query slice when ranking studies approximately (one study's worth);
multiplied by 4 until k distinct studies own them."""


def aggregate_embedding(slice_vectors: np.ndarray) -> np.ndarray:
    """The study aggregate: (n, d) slice embeddings -> (d,) float32 mean, the study's centroid."""
    return slice_vectors.astype(np.float64).mean(axis=0).astype(np.float32)


class _Rows:
    """A float/int array that grows by appending rows, with amortised doubling (adds stay O(added))."""

    def __init__(self, array: np.ndarray):
        self._data = array
        self.size = len(array)

    @property
    def view(self) -> np.ndarray:
        return self._data[:self.size]

    def append(self, rows: np.ndarray) -> None:
        need = self.size + len(rows)
        if need > len(self._data):
            grown = np.empty((max(need, 2 * len(self._data)),) + self._data.shape[1:], self._data.dtype)
            grown[:self.size] = self.view
            self._data = grown
        self._data[self.size:need] = rows
        self.size = need


class CaseIndex:
    """Slice embeddings of a library of studies, persisted in a folder (storage.py) and searchable.

    Make one with :meth:`create` or :meth:`open`; every change is on disk before the call returns.
    ``approximate_from`` (slices) and ``nprobe`` (IVF cells scanned per query) may be changed on the
    object, e.g. to force the approximate path in a test or to tune recall.
    """

    def __init__(self, folder: Path, header: storage.Header, tables: storage.Tables, approximate_from: int):
        self.folder = Path(folder)
        self.approximate_from = approximate_from
        self.nprobe = IVF_NPROBE
        self._header = header
        self._cache: IvfCache | None = None
        self._cache_saved = False
        self._load(tables)

    def _load(self, tables: storage.Tables) -> None:
        self._studies = list(tables.studies)
        self._positions = {study["study_id"]: i for i, study in enumerate(self._studies)}
        counts = np.array([study["num_slices"] for study in self._studies], dtype=np.int64)
        self._vectors = _Rows(np.ascontiguousarray(tables.vectors, np.float32))
        self._squared = _Rows(squared_norms(self._vectors.view))
        self._slice_numbers = _Rows(tables.slice_numbers.astype(np.int64))
        self._row_study = _Rows(np.repeat(np.arange(len(counts), dtype=np.int64), counts))
        self._aggregates = _Rows(np.ascontiguousarray(tables.aggregates, np.float32))

    @classmethod
    def create(cls, folder, model_sha256: str, dim: int = DUCN_EMBEDDING_DIM,
               approximate_from: int = APPROXIMATE_FROM_SLICES) -> "CaseIndex":
        """A new empty index in ``folder`` (created); InputError if the folder holds any file."""
        folder = Path(folder)
        if folder.exists() and not folder.is_dir():
            raise InputError(f"{folder} is a file: give a new or empty folder for the case index")
        if folder.exists() and any(folder.iterdir()):
            raise InputError(f"{folder} already holds files: give a new or empty folder for the case index "
                             "(or open the existing index to add studies)")
        if not isinstance(model_sha256, str) or not model_sha256:
            raise InputError("model_sha256 is empty: give the sha256 of the weights that make the embeddings")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InputError(f"dim={dim!r}: give the embedding length, a positive whole number")
        folder.mkdir(parents=True, exist_ok=True)
        empty = storage.Tables(np.zeros((0, dim), np.float32), np.zeros((0, dim), np.float32), np.zeros(0, np.int64))
        header = storage.write_generation(folder, storage.Header(model_sha256, int(dim)), empty)
        storage.write_header(folder, header)
        return cls(folder, header, empty, approximate_from)

    @classmethod
    def open(cls, folder, model_sha256: str | None = None,
             approximate_from: int = APPROXIMATE_FROM_SLICES) -> "CaseIndex":
        """The index in ``folder``; with ``model_sha256``, InputError unless it was built by that model."""
        folder = Path(folder)
        header = storage.read_header(folder)
        if model_sha256 is not None and header.model_sha256 != model_sha256:
            raise InputError(f"case index {folder} was built with model sha256 {header.model_sha256[:12]}..., "
                             f"the current model is {model_sha256[:12]}...: rebuild the index with that model "
                             "(`covidweak index build`) or use the weights it was built with")
        return cls(folder, header, storage.read_tables(folder, header), approximate_from)

    @classmethod
    def open_or_create(cls, folder, model_sha256: str, dim: int = DUCN_EMBEDDING_DIM,
                       approximate_from: int = APPROXIMATE_FROM_SLICES) -> "CaseIndex":
        """The index in ``folder`` when it holds one (which ``model_sha256`` must have built), else a new
        empty one: what a resumable build starts from (see resume.pending_studies)."""
        if (Path(folder) / storage.HEADER_NAME).exists():
            index = cls.open(folder, model_sha256, approximate_from)
            if index.dim != dim:
                raise InputError(f"case index {folder} holds {index.dim}-d embeddings, the model makes {dim}-d: "
                                 "rebuild it with `covidweak index build` into a new folder")
            return index
        return cls.create(folder, model_sha256, dim, approximate_from)

    # ------------------------------------------------------------------ contents

    @property
    def model_sha256(self) -> str:
        return self._header.model_sha256

    @property
    def dim(self) -> int:
        return self._header.dim

    @property
    def num_slices(self) -> int:
        return self._vectors.size

    def __len__(self) -> int:
        return len(self._studies)

    def has_study(self, study_id: str) -> bool:
        return study_id in self._positions

    def study_ids(self) -> list[str]:
        return [study["study_id"] for study in self._studies]

    def study(self, study_id: str) -> dict:
        """One study's metadata: the required keys, num_slices, slice_numbers (list) and its other fields."""
        position = self._position(study_id)
        study = self._studies[position]
        rows = self._rows_of(position)
        return dict(study["metadata"], **{key: study[key] for key in storage.STUDY_COLUMNS if key != "metadata"},
                    slice_numbers=self._slice_numbers.view[rows].tolist())

    def _position(self, study_id: str) -> int:
        if study_id not in self._positions:
            raise InputError(f"study {study_id!r} is not in the case index {self.folder}: "
                             "list the indexed studies with index.study_ids()")
        return self._positions[study_id]

    def _rows_of(self, position: int) -> slice:
        start = sum(study["num_slices"] for study in self._studies[:position])
        return slice(start, start + self._studies[position]["num_slices"])

    # ------------------------------------------------------------------ changes

    def add_study(self, study: Mapping, slice_vectors: np.ndarray, slice_numbers: Sequence[int]) -> None:
        """Add one study: slice_vectors (n, dim) float32, one row per entry of slice_numbers."""
        self.add_studies([(study, slice_vectors, slice_numbers)])

    def add_studies(self, items: Iterable[tuple[Mapping, np.ndarray, Sequence[int]]]) -> None:
        """Add several studies in one write (all or none): items of (study, slice_vectors, slice_numbers)."""
        rows, vectors, numbers = [], [], []
        for study, slice_vectors, slice_numbers in items:
            count = len(slice_vectors) if hasattr(slice_vectors, "__len__") else 0
            row = study_row(study, count)
            if row["study_id"] in self._positions:
                raise InputError(f"study {row['study_id']} is already in the case index: remove it first to replace it")
            checked = check_matrix(slice_vectors, self.dim, f"slice_vectors of study {row['study_id']}")
            if checked.dtype != np.float32:
                raise InputError(f"slice_vectors of study {row['study_id']} have dtype {checked.dtype}: "
                                 "give float32 (.astype(numpy.float32))")
            numbers.append(check_slice_numbers(slice_numbers, len(checked), row["study_id"]))
            rows.append(row)
            vectors.append(checked)
        if len({row["study_id"] for row in rows}) != len(rows):
            raise InputError("the same study_id appears twice among the studies to add: give each study once")
        if not rows:
            return
        self._check_unchanged_on_disk()
        new_vectors = np.concatenate(vectors)
        new_aggregates = np.stack([aggregate_embedding(v) for v in vectors])
        ids = [row["study_id"] for row in rows]
        header = storage.append_rows(self.folder, self._header, new_vectors, new_aggregates,
                                     storage.study_rows_bytes(rows), storage.slice_rows_bytes(ids, numbers), len(rows))
        self._commit(header)
        first_row, first_position = self.num_slices, len(self._studies)
        for position, row in enumerate(rows, start=first_position):
            self._positions[row["study_id"]] = position
        self._studies.extend(rows)
        self._vectors.append(new_vectors)
        self._squared.append(squared_norms(new_vectors))
        self._slice_numbers.append(np.concatenate(numbers))
        self._row_study.append(np.repeat(np.arange(first_position, len(self._studies)), [len(v) for v in vectors]))
        self._aggregates.append(new_aggregates)
        if self._cache is not None:
            self._cache.add(new_vectors, first_row)

    def remove_study(self, study_id: str) -> None:
        self.remove_studies([study_id])

    def remove_studies(self, study_ids: Iterable[str]) -> None:
        """Remove studies (all or none); InputError naming the first unknown id. Rewrites the files once."""
        positions = {self._position(study_id) for study_id in study_ids}
        if not positions:
            return
        self._check_unchanged_on_disk()
        keep_study = np.ones(len(self._studies), dtype=bool)
        keep_study[sorted(positions)] = False
        keep_row = keep_study[self._row_study.view]
        tables = storage.Tables(self._vectors.view[keep_row], self._aggregates.view[keep_study],
                                self._slice_numbers.view[keep_row],
                                [study for study, keep in zip(self._studies, keep_study) if keep])
        next_header = storage.Header(self.model_sha256, self.dim, self._header.generation + 1)
        self._commit(storage.write_generation(self.folder, next_header, tables))
        self._load(tables)
        if self._cache is not None:
            self._cache = self._cache.reset(self._vectors.view)

    def _check_unchanged_on_disk(self) -> None:
        """InputError when another process changed the folder since this object read it: writing from this
        stale state would cut off that process's additions."""
        if storage.read_header(self.folder) != self._header:
            raise InputError(f"case index {self.folder} was changed by another process: open it again, then retry "
                             "(one writer at a time)")

    def _commit(self, header: storage.Header) -> None:
        storage.write_header(self.folder, header)
        self._header = header
        self._cache_saved = False
        storage.remove_stale_files(self.folder, header)

    # ------------------------------------------------------------------ search

    def _queries(self, vectors, what: str) -> np.ndarray:
        return np.ascontiguousarray(check_matrix(vectors, self.dim, what), np.float32)

    def uses_approximate_search(self) -> bool:
        return self.num_slices >= self.approximate_from

    def prepare_search(self, progress: Progress | None = None) -> None:
        """Read or build the approximate index now rather than inside the first search (nothing to do below
        ``approximate_from``): a first build at a million slices trains for a minute or two."""
        if not self.uses_approximate_search():
            return
        if progress is not None:
            progress.update(0, 1, "preparing the approximate search index")
        self._ivf()
        if progress is not None:
            progress.update(1, 1, "approximate search index ready")

    def _ivf(self) -> IvfCache:
        """The FAISS cache for the current state: in memory, else read from the folder, else built (and saved)."""
        path = self.folder / storage.cache_name(self._header.generation, self.num_slices)
        if self._cache is not None and self._cache.grown_too_much(self.num_slices):
            self._cache = None
        if self._cache is None and path.exists():
            self._cache = IvfCache.read(path, self.num_slices)
            self._cache_saved = self._cache is not None
        if self._cache is None:
            self._cache = IvfCache(self._vectors.view)
        if not self._cache_saved:
            # A read-only library can still be searched; the next writable open saves the cache.
            with contextlib.suppress(OSError, RuntimeError):
                self._cache.write(path)
                self._cache_saved = True
        return self._cache

    def _knn(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (m, d), k -> distances (m, k), library rows (m, k), nearest first."""
        if not self.uses_approximate_search():
            return exact_knn(queries, self._vectors.view, self._squared.view, k)
        distances, rows = self._ivf().knn(queries, k, self.nprobe)
        short = np.flatnonzero((rows < 0).any(axis=1))
        if len(short):
            # The probed cells held fewer than k vectors: answer those queries exactly rather than with holes.
            distances[short], rows[short] = exact_knn(queries[short], self._vectors.view, self._squared.view, k)
        return distances, rows

    def search_slices(self, vectors: np.ndarray, k: int) -> list[list[dict]]:
        """The k nearest library slices of each query vector: vectors (m, dim) -> m lists of
        {rank, study_id, slice, distance}, nearest first."""
        queries = self._queries(vectors, "query vectors")
        k = check_k(k, self.num_slices, "slices")
        distances, rows = self._knn(queries, k)
        study_of, numbers = self._row_study.view, self._slice_numbers.view
        return [[{"rank": rank, "study_id": self._studies[study_of[row]]["study_id"], "slice": int(numbers[row]),
                  "distance": float(distance)} for rank, (distance, row) in enumerate(zip(line_d, line_r), start=1)]
                for line_d, line_r in zip(distances, rows)]

    def search_studies(self, slice_vectors: np.ndarray, k: int, ranking: str = RANKINGS[0]) -> list[dict]:
        """The k library studies most similar to a query study, slice_vectors (n, dim) its slice embeddings.

        Each result: rank, study_id, patient_id, diagnosis, lesions, source_path, distance, query_slice (row of
        slice_vectors) and match_slice (slice number in that study) of the best-matching slice pair.
        ``ranking`` is "aggregate" (the distance of the studies' centroids) or "slice_pair" (the distance of
        that pair); see the module docstring.
        """
        queries = self._queries(slice_vectors, "query slice_vectors")
        k = check_k(k, len(self._studies), "studies")
        if ranking not in RANKINGS:
            raise InputError(f"ranking={ranking!r}: give one of {', '.join(RANKINGS)}")
        if ranking == "aggregate":
            return self._by_aggregate(queries, k)
        if self.uses_approximate_search():
            found = self._best_pairs_approximate(queries, k)
        else:
            found = self._best_pairs_exact(queries, k)
        return [self._study_result(rank, *match) for rank, match in enumerate(found, start=1)]

    def _best_pairs_exact(self, queries: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[tuple[int, float, int, int]]:
        """(study position, distance, query row, library row) of the k studies with the nearest slice pair,
        among all library rows or among ``rows`` (sorted, whole studies only)."""
        rows = np.arange(self.num_slices) if rows is None else rows
        distance, query_row = nearest_query_per_row(queries, self._vectors.view[rows], self._squared.view[rows])
        study_of = self._row_study.view[rows]
        starts = np.flatnonzero(np.concatenate([[True], study_of[1:] != study_of[:-1]]))
        best = segment_minima(distance, starts)
        order = np.lexsort((study_of[best], distance[best]))[:k]
        return [(int(study_of[best[i]]), float(distance[best[i]]), int(query_row[best[i]]), int(rows[best[i]]))
                for i in order]

    def _best_pairs_approximate(self, queries: np.ndarray, k: int) -> list[tuple[int, float, int, int]]:
        """As _best_pairs_exact, over the candidate studies that own one of the IVF's nearest slices of some
        query slice; candidates are then ranked exactly, so a study found through a worse pair still gets its
        best pair. Only a study none of whose slices the IVF returned can be missed."""
        wanted = min(self.num_slices, APPROXIMATE_CANDIDATES)
        while True:
            _, rows = self._ivf().knn(queries, wanted, self.nprobe)
            candidates = np.unique(self._row_study.view[rows[rows >= 0]])
            if len(candidates) >= k or wanted >= self.num_slices:
                break
            wanted = min(self.num_slices, wanted * 4)
        if len(candidates) < k:  # the probed cells hold fewer than k studies: search them all
            return self._best_pairs_exact(queries, k)
        return self._best_pairs_exact(queries, k, np.flatnonzero(np.isin(self._row_study.view, candidates)))

    def _by_aggregate(self, queries: np.ndarray, k: int) -> list[dict]:
        query = aggregate_embedding(queries)[None, :]
        distances = pairwise_distances(query, self._aggregates.view, squared_norms(self._aggregates.view))[0]
        results = []
        for rank, position in enumerate(np.lexsort((np.arange(len(distances)), distances))[:k], start=1):
            rows = self._rows_of(int(position))
            pair = pairwise_distances(queries, self._vectors.view[rows], self._squared.view[rows])
            query_row, offset = np.unravel_index(np.argmin(pair), pair.shape)
            results.append(self._study_result(rank, int(position), float(distances[position]), int(query_row),
                                              rows.start + int(offset)))
        return results

    def _study_result(self, rank: int, position: int, distance: float, query_row: int, library_row: int) -> dict:
        study = self._studies[position]
        # Indexes built before lesions were recorded have no such field.
        return {"rank": rank, "study_id": study["study_id"], "patient_id": study["patient_id"],
                "diagnosis": study["diagnosis"], "lesions": study["metadata"].get("lesions", "not recorded"),
                "source_path": study["source_path"], "distance": distance,
                "query_slice": query_row, "match_slice": int(self._slice_numbers.view[library_row])}
