"""Classical lung mask against the phantom's exact lungs, per study and by CT category.

    python scripts/probes/lung_dice.py --patients 30 --pattern covid --size 256 --slices 64 --seed 61000

Generates each patient's study ``--study`` (0 = baseline, 2 = lesions at their peak), runs
``covidweak.lungs.segment_lungs`` on its CT and prints the right and left lung Dice, the
share of lesion voxels the mask leaves out, and the patient's CT category; then the lowest
Dice per category. ``--classical`` leaves out the CT lung network's step (:mod:`covidweak.lungs.learned`).
"""

import argparse
from collections import defaultdict

import numpy as np
import SimpleITK as sitk

from covidweak.lungs import LEFT, RIGHT, segment_lungs
from covidweak.metrics import dice_per_label
from covidweak.phantom import PhantomConfig
from covidweak.phantom.burden import involvement_category
from covidweak.phantom.study import generate_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=30)
    parser.add_argument("--pattern", default="covid", choices=("covid", "cap", "normal"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--seed", type=int, default=61000)
    parser.add_argument("--study", type=int, default=0)
    parser.add_argument("--classical", action="store_true", help="the classical mask alone")
    args = parser.parse_args()
    lowest = defaultdict(lambda: 1.0)
    for patient in range(args.patients):
        study = generate_study(args.seed + patient, args.study, args.pattern, PhantomConfig(size=args.size, slices=args.slices))
        found = sitk.GetArrayFromImage(segment_lungs(study.ct, learned=not args.classical))
        truth = sitk.GetArrayFromImage(study.lungs)
        lesions = sitk.GetArrayFromImage(study.lesions) > 0
        scores = dice_per_label(found, truth, (RIGHT, LEFT))
        category = involvement_category(study.meta["lung_involvement"])
        missed = float(np.count_nonzero(lesions & (found == 0)) / max(np.count_nonzero(lesions), 1))
        lowest[category] = min(lowest[category], *scores.values())
        print(f"{study.study_id} CT-{category} involvement {study.meta['lung_involvement']:.3f} "
              f"Dice right {scores[RIGHT]:.3f} left {scores[LEFT]:.3f} lesion outside the mask {missed:.3f}", flush=True)
    for category in sorted(lowest):
        print(f"CT-{category}: lowest lung Dice {lowest[category]:.3f}")


if __name__ == "__main__":
    main()
