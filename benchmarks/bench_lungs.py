"""Time of the lung segmentation with the CT lung network's step (:mod:`covidweak.lungs.learned`), as a ratio
against the classical mask alone in the same process, on a large phantom CT.

    .venv/bin/python benchmarks/bench_lungs.py [--size 512] [--slices 300] [--repeats 2]
"""

from __future__ import annotations

import argparse

from timing import best_of

from covidweak.lungs import segment_lungs
from covidweak.lungs.learned import shipped_model
from covidweak.phantom import PhantomConfig
from covidweak.phantom.study import generate_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    # 358 mm across and 300 mm tall whatever the grid, as covidweak bench segment's phantom.
    spacing = (358.4 / args.size, 358.4 / args.size, 300.0 / args.slices)
    ct = generate_study(7, 0, "covid", PhantomConfig(size=args.size, slices=args.slices, spacing=spacing)).ct
    shipped_model()  # loaded once, outside the timing, as a running Slicer or batch has it
    classical = best_of(args.repeats, lambda: segment_lungs(ct, learned=False))
    learned = best_of(args.repeats, lambda: segment_lungs(ct))
    print(f"{args.size}x{args.size}x{args.slices}: classical {classical:.2f} s, with the network step "
          f"{learned:.2f} s ({learned / classical:.2f}x the classical time, +{learned - classical:.2f} s)")


if __name__ == "__main__":
    main()
