"""Why ground-truth lesions miss at overlap 0.5: the FeCNN LAM's best piece for each lesion.

    python scripts/probes/fecnn_misses.py --data VAL_MANIFEST_OR_FOLDER [--weights fecnn-light]

For every 4-connected ground-truth component on the lesion slices of the studies, the best
detected piece whose peak lies inside the box overlap (``covidweak.clusters.hitrate``'s rule) is
found; the component is a hit (IoU > 0.5), missed by every piece ("none"), or hit by a piece
whose box is larger, smaller (under 90 % of the area) or shifted. Prints the counts and the
median truth box area (pixels) of each kind.
"""

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from covidweak.clusters.ct import detect_slices
from covidweak.clusters.hitrate import box_area, box_intersection, box_iou, label_boxes, truth_components
from covidweak.datasets import open_dataset
from covidweak.io import read_ct, read_image
from covidweak.lungs.geometry import to_canonical
from covidweak.models import load_weights
from covidweak.weakseg.infer import batches
from covidweak.weakseg.prepare import input_box


def kind_of(truth_box, boxes, peaks) -> str:
    best, which = 0.0, None
    for box, (row, col) in zip(boxes, peaks):
        inside = box_intersection(box, truth_box)
        if inside[0] <= row < inside[2] and inside[1] <= col < inside[3] and box_iou(box, truth_box) > best:
            best, which = box_iou(box, truth_box), box
    if which is None:
        return "none"
    if best > 0.5:
        return "hit"
    if box_area(which) > box_area(truth_box):
        return "larger"
    return "smaller" if box_area(which) < 0.9 * box_area(truth_box) else "shifted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--weights", default="fecnn-light")
    args = parser.parse_args()
    loaded = load_weights(args.weights, method="fecnn")
    loaded.model.eval()
    areas = defaultdict(list)
    for record in open_dataset(args.data):
        canonical = to_canonical(read_ct(record.ct_path))
        hu = sitk.GetArrayFromImage(canonical)
        spacing_yx = canonical.GetSpacing()[1::-1]
        lungs = sitk.GetArrayFromImage(to_canonical(read_image(record.lung_mask_path)))
        truth = sitk.GetArrayFromImage(to_canonical(read_image(record.lesion_mask_path))) * (lungs > 0)
        box = input_box(loaded.preprocess, lungs, spacing_yx)
        for centres in batches(np.flatnonzero(truth.reshape(len(truth), -1).any(axis=1)), 16):
            found = detect_slices(loaded.model, loaded.preprocess, hu, lungs, centres, box, "cpu", spacing_yx)
            for detection, z in zip(found, centres):
                boxes = label_boxes(detection.regions) if detection.regions.max() else []
                peaks = ndi.maximum_position(detection.lam, detection.regions, np.arange(1, len(boxes) + 1)) if boxes else []
                for truth_box in label_boxes(truth_components(truth[z])):
                    areas[kind_of(truth_box, boxes, peaks)].append(box_area(truth_box))
    for kind, values in sorted(areas.items(), key=lambda item: -len(item[1])):
        print(f"{kind:8s} {len(values):5d} lesions, truth box median {int(np.median(values))} px "
              f"(quartiles {int(np.percentile(values, 25))}-{int(np.percentile(values, 75))})")


if __name__ == "__main__":
    main()
