"""The phantom cohort beside the papers' patients: lung involvement, slices with lesion, lesion mix.

    python scripts/probes/phantom_cohort.py --patients 100 --seed 1            # generate, then measure
    python scripts/probes/phantom_cohort.py --data PHANTOM_DIR                 # measure a written dataset

Generates ``--patients`` patients with one study each and the default covid / cap / normal
mix (into a temporary folder unless ``--keep DIR``), then prints
``covidweak.phantom.cohort.cohort_table`` (markdown) and the generation time per study.
"""

import argparse
import tempfile
import time
from pathlib import Path

from covidweak.phantom import PhantomConfig, generate_dataset
from covidweak.phantom.cohort import cohort_stats, cohort_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="measure this phantom dataset instead of generating one")
    parser.add_argument("--patients", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--keep", help="write the generated dataset here (default: a temporary folder)")
    args = parser.parse_args()
    if args.data:
        print(cohort_table(cohort_stats(args.data)))
        return
    with tempfile.TemporaryDirectory(prefix="phantom-cohort-") as scratch:
        out = Path(args.keep or scratch)
        start = time.perf_counter()
        generate_dataset(out, patients=args.patients, studies_per_patient=1, seed=args.seed,
                         config=PhantomConfig(size=args.size, slices=args.slices))
        seconds = (time.perf_counter() - start) / args.patients
        print(cohort_table(cohort_stats(out)))
        print(f"\n{args.patients} patients at {args.size}² x {args.slices}, seed {args.seed}: "
              f"{seconds:.2f} s per study generated and written")


if __name__ == "__main__":
    main()
