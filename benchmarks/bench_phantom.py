"""Phantom throughput at the default 256 x 256 x 64 grid.

Prints absolute times and, as a machine-independent baseline measured in the same
process, the ratio to drawing and Gaussian-filtering one plain noise volume of the
same size (the cheapest thing a volumetric phantom could possibly do).

    .venv/bin/python benchmarks/bench_phantom.py [--cases 6]
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from scipy import ndimage

from covidweak.phantom import PhantomConfig, generate_study, write_study
from covidweak.phantom.study import _anatomy


def _noise_volume_seconds(config: PhantomConfig, repeats: int = 3) -> float:
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(repeats):
        ndimage.gaussian_filter(rng.standard_normal((config.slices, config.size, config.size), dtype=np.float32), 1.0)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    args = parser.parse_args()
    config = PhantomConfig()
    patterns = ("covid", "cap", "normal")
    generate_study(999, 0, "covid", config)  # warm imports and BLAS
    baseline = _noise_volume_seconds(config)

    _anatomy.cache_clear()
    start = time.perf_counter()
    for i in range(args.cases):
        generate_study(1000 + i, 0, patterns[i % 3], config)
    new_patient = (time.perf_counter() - start) / args.cases

    start = time.perf_counter()
    for i in range(args.cases):  # follow-ups of the last patient: anatomy is cached
        generate_study(1000 + args.cases - 1, i + 1, patterns[(args.cases - 1) % 3], config)
    follow_up = (time.perf_counter() - start) / args.cases

    with tempfile.TemporaryDirectory() as tmp:
        _anatomy.cache_clear()
        start = time.perf_counter()
        for i in range(args.cases):
            write_study(generate_study(2000 + i, 0, patterns[i % 3], config), tmp)
        with_write = (time.perf_counter() - start) / args.cases

    print(f"grid {config.size}x{config.size}x{config.slices}, {args.cases} cases each")
    print(f"baseline noise volume (randn + gaussian_filter): {baseline * 1000:.0f} ms")
    for name, seconds in (("generate_study, new patient", new_patient), ("generate_study, follow-up", follow_up),
                          ("generate_study + write_study", with_write)):
        print(f"{name:32s} {1 / seconds:5.2f} cases/s  {seconds * 1000:6.0f} ms/case  "
              f"{seconds / baseline:5.1f}x baseline")


if __name__ == "__main__":
    main()
