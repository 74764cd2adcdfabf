"""The best Table 1 Dice any stride-8 class map can reach at a given input size, and an HU-threshold control.

    python scripts/probes/resolution_ceiling.py PHANTOM_DIR [INPUT_SIZE ...]     (default 128 256 448)

A CAM, SEAM or M-SEAM-NAM map has one value per 8x8 input pixels (ResNet-38's output stride),
upsampled bilinearly to the slice grid. The best such map a network could produce is the
ground truth itself averaged over each cell: this probe builds that *oracle map* from the
lesion mask (resize the slice to INPUT_SIZE, average over 8x8 cells, upsample back
bilinearly), keeps it inside the lungs, thresholds it and scores it exactly as
``covidweak evaluate weakseg`` scores a network (voxels pooled per patient, positive patients
only). What it cannot reach, no training at that input size can.

The control column is the best single HU threshold inside the lungs (lesion = HU above it),
chosen per patient with the truth in hand: how far intensity alone goes on this phantom. A last
row gives the stride-1 oracle at the first input size: what a full-resolution network (the
U-Net) at that size can reach.
"""

import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from torch.nn import functional as F

from covidweak.models.resnet38 import OUTPUT_STRIDE
from covidweak.training.session import load_records
from covidweak.weakseg.evaluate import confusion_counts, patient_metrics, table

THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6)
"""Thresholds of the oracle map; the table reports the one with the best mean over patients."""
HU_THRESHOLDS = tuple(range(-800, -275, 25))
DEFAULT_SIZES = (128, 256, 448)


def oracle_map(lesion: np.ndarray, input_size: int, stride: int = OUTPUT_STRIDE) -> np.ndarray:
    """(Z, Y, X) bool lesion mask -> (Z, Y, X) float32 in [0, 1]: the mask as a map of that stride sees it.

    Each slice is area-resized to input_size x input_size, averaged over stride x stride cells
    and upsampled bilinearly to (Y, X), as inference upsamples a class map. Stride 1 is a
    full-resolution network at that input size (the U-Net).
    """
    grid = input_size // stride
    x = torch.from_numpy(lesion.astype(np.float32))[:, None]
    cells = F.adaptive_avg_pool2d(F.interpolate(x, size=(input_size, input_size), mode="area"), (grid, grid))
    return F.interpolate(cells, size=lesion.shape[1:], mode="bilinear", align_corners=False)[:, 0].numpy()


def pooled_dice(counts: dict) -> np.ndarray:
    """{patient: (T, 3) tp/fp/fn} -> (T,) mean Dice over the positive patients, per threshold (Table 1's mean)."""
    n = len(next(iter(counts.values())))
    return np.array([table([patient_metrics(*c[i]) for c in counts.values()])["positive"]["dice"]["mean"]
                     for i in range(n)])


def main(data: Path, sizes: tuple[int, ...]) -> None:
    maps = [(size, OUTPUT_STRIDE) for size in sizes] + [(sizes[0], 1)]
    oracle = {key: {} for key in maps}
    by_hu = {}
    for record in load_records(data):
        if record.lesion_mask_path is None or record.lung_mask_path is None:
            continue
        lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(record.lung_mask_path))) > 0
        lesion = sitk.GetArrayFromImage(sitk.ReadImage(str(record.lesion_mask_path))) > 0
        hu = sitk.GetArrayFromImage(sitk.ReadImage(str(record.ct_path)))
        for size, stride in maps:
            counts = confusion_counts(oracle_map(lesion, size, stride) * lungs, lesion, THRESHOLDS)
            oracle[size, stride][record.patient_id] = oracle[size, stride].get(record.patient_id, 0) + counts
        counts = confusion_counts(np.where(lungs, hu, -np.inf), lesion, HU_THRESHOLDS)
        by_hu[record.patient_id] = by_hu.get(record.patient_id, 0) + counts
    positives = sum(1 for c in by_hu.values() if c[0, 0] + c[0, 2] > 0)
    print(f"{data}: {positives} positive patients (Table 1 pooling, lung voxels only)")
    for size, stride in maps:
        dice = pooled_dice(oracle[size, stride])
        best = int(np.argmax(dice))
        print(f"  oracle stride-{stride} map at input {size}: best mean positive Dice {dice[best]:.3f} "
              f"(threshold {THRESHOLDS[best]}; per threshold {np.round(dice, 3).tolist()})")
    best_hu = [max(patient_metrics(*row)["dice"] for row in c) for c in by_hu.values() if c[0, 0] + c[0, 2] > 0]
    print(f"  best HU threshold per patient (control): mean positive Dice {np.mean(best_hu):.3f}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(Path(sys.argv[1]), tuple(int(s) for s in sys.argv[2:]) or DEFAULT_SIZES)
