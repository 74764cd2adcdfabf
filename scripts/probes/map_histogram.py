"""Fig. 3 (left) of M-SEAM-NAM: how a weak-seg file's pixel probabilities are distributed over the lungs.

The paper reads T_bg = 0.01 off the histogram of SEAM's output. This prints, for one weight file on every
study of a phantom dataset, the share of lung voxels (lesion voxels and lesion-free lung voxels apart)
in each probability bin, as the file is read (its attenuation gate, logit offset and size gate applied)
or, with ``--raw``, as the network gives it (sigmoid of its map, none of the three), which is what NAM's
T_fg and T_bg split during training.

    python scripts/probes/map_histogram.py --data WORK/val --weights Resources/Models/seam-light.pt --method seam
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from covidweak.datasets import open_dataset
from covidweak.io import read_ct, read_image
from covidweak.models import load_weights
from covidweak.weakseg.calibration import settings_of
from covidweak.weakseg.evaluate import lesion_truth
from covidweak.weakseg.infer import T_BG, T_FG, segment_ct

EDGES = (0.0, 0.001, T_BG, 0.05, T_FG, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0000001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--method", required=True)
    parser.add_argument("--raw", action="store_true", help="without the file's gate, offset and size gate")
    args = parser.parse_args()
    model = load_weights(args.weights, method=args.method, device="cpu")
    if args.raw:
        for key in settings_of(model.preprocess):
            model.preprocess.pop(key, None)
    counts = {"lesion": np.zeros(len(EDGES) - 1), "lesion-free lung": np.zeros(len(EDGES) - 1)}
    for record in open_dataset(args.data):
        ct, lungs = read_ct(record.ct_path), read_image(record.lung_mask_path)
        probability = sitk.GetArrayFromImage(segment_ct(ct, model, lungs=lungs, device="cpu").probability)
        truth = lesion_truth(read_image(record.lesion_mask_path)).astype(bool)
        lung = sitk.GetArrayFromImage(lungs) > 0
        counts["lesion"] += np.histogram(probability[truth], EDGES)[0]
        counts["lesion-free lung"] += np.histogram(probability[lung & ~truth], EDGES)[0]
    bins = [f"[{a:g}, {min(b, 1):g}{']' if b > 1 else ')'}" for a, b in zip(EDGES[:-1], EDGES[1:])]
    print("| voxels | " + " | ".join(bins) + " |\n|---" * 1 + "|---" * len(bins) + "|")
    for name, row in counts.items():
        print(f"| {name} ({int(row.sum()):,}) | " + " | ".join(f"{100 * v / row.sum():.2f} %" for v in row) + " |")


if __name__ == "__main__":
    main()
