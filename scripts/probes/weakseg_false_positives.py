"""Where a weak-seg file's false-positive voxels lie, and whether a ridge filter tells them from true ones.

For every study of a phantom dataset, the map at T_fg is compared with the true lesion mask. Each
false-positive voxel is put in one of four places: on a slice with a lesion, within ``--near`` pixels
of it (in-plane, 4-connected) or farther; on a slice next to a lesion slice; elsewhere. With ``--sato
N``, the first N positive patients' predicted voxels on lesion slices are also scored by a Sato ridge
filter (bright tubes, sigma 1 and 2 pixels, on the CT slice windowed to -1000..100 HU), and the shares
of true and false positives above each ridge threshold are printed.

    python scripts/probes/weakseg_false_positives.py --data WORK/v5 --weights Resources/Models/mseamnam-light.pt --sato 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from covidweak.datasets import open_dataset
from covidweak.io import read_ct, read_image
from covidweak.models import load_weights
from covidweak.weakseg.evaluate import lesion_truth
from covidweak.weakseg.infer import T_FG, segment_ct

PLACES = ("lesion slice, near", "lesion slice, far", "next slice", "elsewhere")
RIDGE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2)


def places(false_positive: np.ndarray, truth: np.ndarray, near: int) -> np.ndarray:
    """(4,) voxel counts of ``false_positive`` (z, y, x) bool in each of PLACES, given ``truth`` (z, y, x) bool."""
    lesion_slice = truth.any(axis=(1, 2))
    next_slice = ndimage.binary_dilation(lesion_slice) & ~lesion_slice
    in_plane = np.zeros((3, 3, 3), bool)
    in_plane[1] = ndimage.generate_binary_structure(2, 1)
    close = ndimage.binary_dilation(truth, in_plane, iterations=near)
    per_slice = false_positive.sum(axis=(1, 2))
    near_count = int((false_positive & close)[lesion_slice].sum())
    return np.array([near_count, per_slice[lesion_slice].sum() - near_count, per_slice[next_slice].sum(),
                     per_slice[~lesion_slice & ~next_slice].sum()])


def main() -> None:
    from skimage.filters import sato

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--near", type=int, default=3, help="pixels from a lesion that count as near")
    parser.add_argument("--sato", type=int, default=0, help="positive patients whose voxels the ridge filter scores")
    args = parser.parse_args()
    model = load_weights(args.weights, device="cpu")
    total, tp_total, ridge, scored = np.zeros(len(PLACES)), 0, {"true": [], "false": []}, 0
    for record in open_dataset(args.data):
        ct = read_ct(record.ct_path)
        predicted = sitk.GetArrayFromImage(segment_ct(ct, model, lungs=read_image(record.lung_mask_path),
                                                      device="cpu").probability) > T_FG
        truth = lesion_truth(read_image(record.lesion_mask_path)).astype(bool)
        false_positive = predicted & ~truth
        counts = places(false_positive, truth, args.near)
        total += counts
        tp_total += int((predicted & truth).sum())
        hu = sitk.GetArrayFromImage(ct)[false_positive]
        print(f"{record.study_id} ({record.diagnosis}): TP {int((predicted & truth).sum())}, FP {int(counts.sum())} "
              f"({', '.join(f'{p} {int(c)}' for p, c in zip(PLACES, counts))}), FP median "
              f"{np.median(hu) if hu.size else float('nan'):.0f} HU", flush=True)
        if truth.any() and scored < args.sato:
            scored += 1
            image = np.clip((sitk.GetArrayFromImage(ct).astype(np.float32) + 1000) / 1100, 0, 1)
            for z in np.flatnonzero(predicted.any(axis=(1, 2))):
                tubes = sato(image[z], sigmas=(1, 2), black_ridges=False)
                ridge["true"].append(tubes[predicted[z] & truth[z]])
                ridge["false"].append(tubes[false_positive[z]])
    print(f"all: TP {tp_total}, FP {int(total.sum())}: " +
          ", ".join(f"{p} {100 * c / max(total.sum(), 1):.1f} %" for p, c in zip(PLACES, total)))
    if scored:
        true, false = np.concatenate(ridge["true"]), np.concatenate(ridge["false"])
        for q in RIDGE_THRESHOLDS:
            print(f"ridge > {q}: removes {100 * np.mean(true > q):.1f} % of true and "
                  f"{100 * np.mean(false > q):.1f} % of false positives ({scored} patients)")


if __name__ == "__main__":
    main()
