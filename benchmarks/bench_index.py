"""Case index scaling: build time, query latency and recall@10 of the FAISS IVF index against exact search.

Synthetic library shaped like DuCN recommendation embeddings (128-d, L2-normalised, DuCN
Sect. 2.3): studies of SLICES_PER_STUDY slices scattered around their study's centre, study
centres scattered around a few hundred "pattern" centres. Queries are slices of new studies
drawn the same way (never library members). For each library size, in one process:

- build: writing the index folder (CaseIndex.add_studies) and training + filling the IVF cache;
- exact: CaseIndex.search_slices with the approximate path switched off, one query at a time
  (the baseline; its answers are the ground truth);
- approximate: the same calls through the IVF index at several nprobe values: latency,
  speed-up over exact (ratio measured in this process) and recall@10 (share of the exact 10
  nearest slices found);
- studies: CaseIndex.search_studies for whole query studies of QUERY_STUDY_SLICES slices, exact vs
  approximate: time per query study and the share of the exact 5 best studies the approximate finds.

    .venv/bin/python benchmarks/bench_index.py [--sizes 10000 100000 1000000] [--queries 200] [--folder DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from covidweak.index import DUCN_EMBEDDING_DIM, CaseIndex
from covidweak.index.search import IVF_NPROBE, ivf_cells

SLICES_PER_STUDY = 64
PATTERNS = 1024
STUDY_SPREAD = 0.8
SLICE_SPREAD = 0.4
"""Gaussian spreads (per unit-vector length) of study centres around their pattern and slices around their
study: slices of a study are close, studies of a pattern overlap, as triplet-trained embeddings are."""

K = 10
QUERY_STUDY_SLICES = 32


def unit_rows(array: np.ndarray) -> np.ndarray:
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


def synthetic_studies(rng: np.random.Generator, patterns: np.ndarray, studies: int, slices: int) -> np.ndarray:
    """(studies, slices, d) float32 L2-normalised slice embeddings of new studies."""
    d = patterns.shape[1]
    centres = unit_rows(patterns[rng.integers(len(patterns), size=studies)]
                        + STUDY_SPREAD / np.sqrt(d) * rng.standard_normal((studies, d)))
    noise = SLICE_SPREAD / np.sqrt(d) * rng.standard_normal((studies, slices, d))
    return unit_rows((centres[:, None, :] + noise).reshape(-1, d)).reshape(studies, slices, d)


def per_query_seconds(search, queries: np.ndarray) -> tuple[float, float, list]:
    """Median and 10th-percentile seconds of search(one query row) over the rows, and the answers.

    On a shared machine the median includes waiting for the CPU; the 10th percentile is close to the
    cost of the search itself."""
    answers, times = [], []
    for row in queries:
        start = time.perf_counter()
        answers.append(search(row[None, :]))
        times.append(time.perf_counter() - start)
    return float(np.median(times)), float(np.percentile(times, 10)), answers


def recall_at_k(approximate: list, exact: list) -> float:
    hits = [len({(r["study_id"], r["slice"]) for r in a[0]} & {(r["study_id"], r["slice"]) for r in e[0]})
            for a, e in zip(approximate, exact)]
    return float(np.mean(hits)) / K


def study_search(index: CaseIndex, query_studies: np.ndarray) -> tuple[float, list[set]]:
    """Mean seconds of search_studies(k=5) over query_studies (q, slices, d), and each answer's study ids."""
    start = time.perf_counter()
    found = [{r["study_id"] for r in index.search_studies(study, 5)} for study in query_studies]
    return (time.perf_counter() - start) / len(query_studies), found


def bench_size(size: int, folder: Path, patterns: np.ndarray, queries: np.ndarray, query_studies: np.ndarray,
               nprobes: list[int]) -> None:
    """Build an index of ``size`` synthetic slices in ``folder`` and print its timings and recalls."""
    rng = np.random.default_rng(size)
    library = synthetic_studies(rng, patterns, size // SLICES_PER_STUDY, SLICES_PER_STUDY)
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    index = CaseIndex.create(folder, model_sha256="synthetic", dim=DUCN_EMBEDDING_DIM)
    index.add_studies(({"study_id": f"s{i}", "patient_id": f"p{i}", "diagnosis": "covid", "source_path": f"/s{i}"},
                       vectors, range(SLICES_PER_STUDY)) for i, vectors in enumerate(library))
    write_s = time.perf_counter() - start
    del library
    index.approximate_from = 0
    start = time.perf_counter()
    index.prepare_search()  # train and fill the IVF cache now, so the query timings below exclude it
    ivf_s = time.perf_counter() - start
    start = time.perf_counter()
    CaseIndex.open(folder, "synthetic", approximate_from=0).prepare_search()
    reopen_s = time.perf_counter() - start

    index.approximate_from = size + 1
    exact_s, exact_p10, exact = per_query_seconds(lambda q: index.search_slices(q, K), queries)
    exact_studies_s, exact_studies = study_search(index, query_studies)

    print(f"\n{size:,} slices ({size // SLICES_PER_STUDY:,} studies), IVF nlist={ivf_cells(size)}: "
          f"write {write_s:.1f} s, IVF train+fill {ivf_s:.1f} s, reopen + load IVF cache {reopen_s:.1f} s")
    print(f"  exact search: {exact_s * 1e3:.2f} ms per query, median ({exact_p10 * 1e3:.2f} ms 10th percentile), "
          f"the baseline")
    print(f"  {'nprobe':>6} {'median ms':>9} {'p10 ms':>7} {'exact/approx median':>19} {'p10':>5} {'recall@10':>9}")
    index.approximate_from = 0
    for nprobe in nprobes:
        index.nprobe = nprobe
        approx_s, approx_p10, approx = per_query_seconds(lambda q: index.search_slices(q, K), queries)
        mark = "  <- default" if nprobe == IVF_NPROBE else ""
        print(f"  {nprobe:>6} {approx_s * 1e3:>9.2f} {approx_p10 * 1e3:>7.2f} {exact_s / approx_s:>19.1f} "
              f"{exact_p10 / approx_p10:>5.1f} {recall_at_k(approx, exact):>9.3f}{mark}")
    index.nprobe = IVF_NPROBE
    approx_studies_s, approx_studies = study_search(index, query_studies)
    recall = np.mean([len(a & e) for a, e in zip(approx_studies, exact_studies)]) / 5
    print(f"  search_studies, {len(query_studies)} query studies of {query_studies.shape[1]} slices, k=5: "
          f"exact {exact_studies_s * 1e3:.1f} ms, approximate {approx_studies_s * 1e3:.1f} ms per study "
          f"(ratio {exact_studies_s / approx_studies_s:.1f}), study recall@5 {recall:.3f}; "
          f"load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--query-studies", type=int, default=10)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[4, 8, 16, 32, IVF_NPROBE, 64, 128])
    parser.add_argument("--patterns", type=int, default=PATTERNS,
                        help="pattern centres; many more than studies/16 makes the library diffuse and IVF harder")
    parser.add_argument("--folder", type=Path, help="where the index folders go (default: a temporary folder)")
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, cpus={os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.2f} at start, {args.patterns} patterns")
    rng = np.random.default_rng(0)
    patterns = unit_rows(rng.standard_normal((args.patterns, DUCN_EMBEDDING_DIM)))
    queries = synthetic_studies(rng, patterns, args.queries, 1)[:, 0, :]
    query_studies = synthetic_studies(rng, patterns, args.query_studies, QUERY_STUDY_SLICES)
    root = args.folder or Path(tempfile.mkdtemp(prefix="bench_index_"))
    try:
        for size in args.sizes:
            bench_size(size, root / f"index_{size}", patterns, queries, query_studies, sorted(set(args.nprobe)))
    finally:
        if args.folder is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
