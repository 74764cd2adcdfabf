"""Nearest-neighbour search over slice embeddings: exact (numpy) and approximate (FAISS IVF).

Distances are Euclidean, as DuCN compares a query's 128-d embedding with every library
embedding "one by one using the Euclidean distance" (DuCN Sect. 2.3, similar case
recommendation). Exact search is a chunked matrix product; it is the reference the
approximate index is measured against (benchmarks/bench_index.py).

The approximate index is an inverted file with flat (uncompressed) vectors, ``IndexIVFFlat``:
k-means cells over the library, and a query scans only its ``nprobe`` nearest cells. IVF
was chosen over HNSW because it supports removing vectors and is quick to train on two
cores; flat storage keeps the distances exact for the vectors it does scan, so only recall,
never the reported distance, is approximate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CHUNK_ELEMENTS = 1 << 22
"""Entries of one query x library distance block (16 MB of float32), bounding exact search's memory."""

IVF_CELLS_PER_SQRT_SLICE = 1.0
"""nlist = this x sqrt(slices), rounded to a power of two: the usual IVF rule, balancing cell scans against
the coarse quantiser; larger constants train too slowly on two cores at a million slices."""

IVF_MAX_CELLS = 4096
IVF_NPROBE = 48
"""Cells a query scans: the smallest value of benchmarks/bench_index.py's sweep giving recall@10 >= 0.95
at 100k and 1M slices, on its default library and on one with 4x more (less clustered) patterns."""

IVF_RETRAIN_FACTOR = 4
"""Retrain the cells when the library grew or shrank by this factor since they were trained."""


def squared_norms(vectors: np.ndarray) -> np.ndarray:
    """(n, d) -> (n,) float32 squared L2 norms."""
    return np.einsum("ij,ij->i", vectors, vectors)


def pairwise_distances(queries: np.ndarray, library: np.ndarray, library_sq: np.ndarray) -> np.ndarray:
    """Euclidean distances (m, n) between queries (m, d) and library rows (n, d), library_sq (n,) their squared norms."""
    squared = squared_norms(queries)[:, None] + library_sq[None, :] - 2.0 * (queries @ library.T)
    return np.sqrt(np.maximum(squared, 0.0))


def _library_chunks(num_queries: int, num_rows: int):
    step = max(1, CHUNK_ELEMENTS // max(1, num_queries))
    for start in range(0, num_rows, step):
        yield start, min(num_rows, start + step)


def exact_knn(queries: np.ndarray, library: np.ndarray, library_sq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest library rows of each query, nearest first.

    queries (m, d), library (n, d), library_sq (n,), k <= n -> distances (m, k) float32, rows (m, k) int64.
    Ties are broken by the lower row number, so results are reproducible.
    """
    best_d = np.full((len(queries), 0), np.inf, dtype=np.float32)
    best_r = np.zeros((len(queries), 0), dtype=np.int64)
    for start, stop in _library_chunks(len(queries), len(library)):
        block = pairwise_distances(queries, library[start:stop], library_sq[start:stop]).astype(np.float32)
        rows = np.broadcast_to(np.arange(start, stop, dtype=np.int64), block.shape)
        best_d = np.concatenate([best_d, block], axis=1)
        best_r = np.concatenate([best_r, rows], axis=1)
        if best_d.shape[1] > k:
            keep = np.argpartition(best_d, k - 1, axis=1)[:, :k]
            best_d = np.take_along_axis(best_d, keep, axis=1)
            best_r = np.take_along_axis(best_r, keep, axis=1)
    order = np.lexsort((best_r, best_d), axis=1)
    return np.take_along_axis(best_d, order, axis=1), np.take_along_axis(best_r, order, axis=1)


def nearest_query_per_row(queries: np.ndarray, library: np.ndarray, library_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every library row, its distance to the nearest query and that query's row.

    queries (m, d), library (n, d), library_sq (n,) -> distances (n,) float32, query rows (n,) int64.
    """
    distances = np.empty(len(library), dtype=np.float32)
    rows = np.empty(len(library), dtype=np.int64)
    for start, stop in _library_chunks(len(queries), len(library)):
        block = pairwise_distances(queries, library[start:stop], library_sq[start:stop])
        rows[start:stop] = np.argmin(block, axis=0)
        distances[start:stop] = block[rows[start:stop], np.arange(stop - start)]
    return distances, rows


def segment_minima(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Row of the smallest value in each contiguous segment (lowest row on ties).

    values (n,), starts (s,) increasing segment starts with starts[0] == 0 -> rows (s,) int64.
    """
    segment = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(values))))
    order = np.lexsort((np.arange(len(values)), values, segment))
    return order[starts]


def ivf_cells(num_slices: int) -> int:
    """nlist for a library of ``num_slices`` vectors (see IVF_CELLS_PER_SQRT_SLICE)."""
    target = max(1.0, IVF_CELLS_PER_SQRT_SLICE * math.sqrt(num_slices))
    return int(min(IVF_MAX_CELLS, 2 ** round(math.log2(target))))


class IvfCache:
    """A FAISS ``IndexIVFFlat`` over the library rows, ids = row numbers; a cache, rebuilt from the vectors.

    ``add`` appends rows; ``reset`` re-adds a renumbered library into the trained cells, and
    retrains them when the size moved by IVF_RETRAIN_FACTOR.
    """

    def __init__(self, vectors: np.ndarray):
        import faiss

        self.trained_size = len(vectors)
        self.index = faiss.IndexIVFFlat(faiss.IndexFlatL2(vectors.shape[1]), vectors.shape[1], ivf_cells(len(vectors)))
        # ivf_cells keeps nlist <= sqrt(n), so small libraries train fine without FAISS's 39-points-per-cell warning.
        self.index.cp.min_points_per_centroid = 1
        self.index.train(np.ascontiguousarray(vectors, np.float32))
        self.add(vectors, 0)

    @classmethod
    def read(cls, path: Path, num_slices: int) -> "IvfCache | None":
        """A cache saved by :meth:`write`, or None when the file is unreadable or holds another library size."""
        import faiss

        try:
            index = faiss.read_index(str(path))
        except RuntimeError:
            return None
        if not isinstance(index, faiss.IndexIVFFlat) or index.ntotal != num_slices:
            return None
        cache = cls.__new__(cls)
        cache.trained_size, cache.index = num_slices, index
        return cache

    def write(self, path: Path) -> None:
        import faiss

        temp = path.with_name(f".{path.name}.tmp")
        faiss.write_index(self.index, str(temp))
        temp.replace(path)

    def add(self, vectors: np.ndarray, first_row: int) -> None:
        ids = np.arange(first_row, first_row + len(vectors), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)

    def reset(self, vectors: np.ndarray) -> "IvfCache":
        """This cache refilled with ``vectors`` (rows renumbered by a removal), or a retrained one."""
        ratio = max(len(vectors), 1) / max(self.trained_size, 1)
        if ratio > IVF_RETRAIN_FACTOR or ratio < 1 / IVF_RETRAIN_FACTOR:
            return IvfCache(vectors)
        self.index.reset()
        self.add(vectors, 0)
        return self

    def grown_too_much(self, num_slices: int) -> bool:
        return num_slices > IVF_RETRAIN_FACTOR * self.trained_size

    def knn(self, queries: np.ndarray, k: int, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (m, d), k -> distances (m, k) float32 Euclidean, rows (m, k) int64 (-1 where fewer were found)."""
        self.index.nprobe = min(nprobe, self.index.nlist)
        squared, rows = self.index.search(np.ascontiguousarray(queries, np.float32), k)
        return np.sqrt(np.maximum(squared, 0.0)), rows
