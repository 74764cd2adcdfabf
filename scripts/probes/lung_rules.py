"""Validation sweep of the CT lung network's rules: lowest per-lung Dice per study for each
(RIM_VOXELS, MIN_SLICES) setting of :mod:`covidweak.lungs.learned`.

    python scripts/probes/lung_rules.py --pattern covid --patients 16 --size 256 --slices 64 --seed 81000 --studies 0 2

Run it on seeds that no reported cohort uses (the rules were chosen on 81000-85000; the
tables in docs/status.md use 61000, 71000, 72000 and the test phantom). Each study is generated
once and segmented once per setting; ``--studies 0 2`` takes the baseline and the follow-up at
peak lesion size, the heaviest study of a patient.
"""

import argparse

import SimpleITK as sitk

from covidweak.lungs import LEFT, RIGHT, learned, segment_lungs
from covidweak.metrics import dice_per_label
from covidweak.phantom import PhantomConfig
from covidweak.phantom.burden import involvement_category
from covidweak.phantom.study import generate_study

SETTINGS = ((2, 2), (1, 2), (1, 1))
"""(RIM_VOXELS, MIN_SLICES) pairs compared: the first shipped rules, then each relaxed in turn."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pattern", default="covid", choices=("covid", "cap", "normal"))
    parser.add_argument("--patients", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--seed", type=int, default=81000)
    parser.add_argument("--studies", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    print("study category " + " ".join(f"rim{rim}/slices{slices}" for rim, slices in SETTINGS))
    for patient in range(args.patients):
        for index in args.studies:
            study = generate_study(args.seed + patient, index, args.pattern, PhantomConfig(size=args.size, slices=args.slices))
            truth = sitk.GetArrayFromImage(study.lungs)
            scores = []
            for rim_voxels, min_slices in SETTINGS:
                # restore_dense_lung reads both module constants at call time.
                learned.RIM_VOXELS, learned.MIN_SLICES = rim_voxels, min_slices
                found = sitk.GetArrayFromImage(segment_lungs(study.ct))
                scores.append(min(dice_per_label(found, truth, (RIGHT, LEFT)).values()))
            category = involvement_category(study.meta["lung_involvement"])
            print(f"{study.study_id} CT-{category} " + " ".join(f"{score:.4f}" for score in scores), flush=True)


if __name__ == "__main__":
    main()
