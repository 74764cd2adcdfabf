"""Timing shared by the benchmark scripts (run them from the repository root: ``python benchmarks/bench_X.py``)."""

from __future__ import annotations

import time


def best_of(repeats: int, fn) -> float:
    """Shortest wall time of ``repeats`` calls (s): the least disturbed by other processes."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
