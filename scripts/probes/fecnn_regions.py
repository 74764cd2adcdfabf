"""Hit rate of FeCNN's lesion boxes under other ways of turning the LAHm into regions.

    python scripts/probes/fecnn_regions.py --data TRAIN_FOLDER --split val [--weights fecnn-light]

Runs FeCNN once per lesion slice of the chosen studies and scores each region rule with
``covidweak.clusters.hitrate.slice_hits`` (the hit rate of ``evaluate fecnn``). ``--split val``
re-creates the training run's validation patients (``split_by_patient``, fractions 0.84 / 0.16,
seed 0, as ``scripts/ct_classifiers.sh`` trains), so a rule can be chosen without a test cohort.
The rules (``RULES``) differ only in how the regions on the slice grid are made; every one ends
with the split into attenuating pieces (``clusters.ct.attenuating_pieces``, no further margin). Prints one
line per rule: hit rate at overlap 0.1 and 0.5 over every component and over components of at
least ``MIN_BOXED_MM2``, the number of detections and the share of them that lie mostly (half their
pixels or more) on lesion.
"""

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
from scipy import ndimage as ndi
from skimage.filters import threshold_otsu

from covidweak.clusters.ct import attenuating_pieces, fecnn_input, grown_regions, lung_cells, to_slice
from covidweak.clusters.hitrate import MIN_BOXED_MM2, slice_hits, truth_components
from covidweak.clusters.lam import FOUR_CONNECTIVITY, gradcam_lahm, lesion_activation_map, lesion_components, normalise
from covidweak.datasets import open_dataset
from covidweak.datasets.splits import split_by_patient
from covidweak.io import read_ct, read_image
from covidweak.lungs.geometry import to_canonical
from covidweak.models import load_weights
from covidweak.models.fecnn import COVID_CLASS
from covidweak.weakseg.infer import batches
from covidweak.weakseg.prepare import input_box

THRESHOLDS = (0.1, 0.5)


def cells(unit, inside, box, slice_shape, **_):
    """Components on the network grid, nearest-upsampled (the rule before REGION_MARGIN_MM)."""
    return to_slice(lesion_components(unit, inside), slice_shape, box, order=0)


def fine(unit, inside, box, slice_shape, scale=1.0, **_):
    """The map bilinear-upsampled to the slice, cut at Otsu's level of the lung cells (times ``scale``)."""
    cells = unit[inside] if inside is not None else unit
    level = threshold_otsu(cells) * scale if cells.size > 1 and np.ptp(cells) > 0 else None
    if level is None:
        return np.zeros(slice_shape, dtype=np.int32)
    smooth = to_slice(unit, slice_shape, box, order=1)
    return ndi.label(smooth > level, structure=FOUR_CONNECTIVITY)[0]


def grown(unit, inside, box, slice_shape, pixels=2, **_):
    """The cell regions grown by ``pixels`` (``clusters.ct.grown_regions``; 4 pixels of 1.4 mm is the
    package's REGION_MARGIN_MM)."""
    return grown_regions(cells(unit, inside, box, slice_shape), pixels)


def whole_pieces(unit, inside, box, slice_shape, hu=None, lungs=None, floor=-700.0, share=0.5, **_):
    """Every dense lung piece of the slice of which at least ``share`` lies in a cell region, kept whole."""
    regions = cells(unit, inside, box, slice_shape)
    dense, count = ndi.label((lungs > 0) & (hu > floor), structure=FOUR_CONNECTIVITY)
    if count == 0:
        return np.zeros(slice_shape, dtype=np.int32)
    sizes = np.bincount(dense.ravel(), minlength=count + 1)
    covered = np.bincount(dense.ravel(), weights=(regions > 0).ravel(), minlength=count + 1)
    keep = (covered >= share * np.maximum(sizes, 1)) & (covered > 0)
    keep[0] = False
    return np.where(keep[dense], dense, 0).astype(np.int32)


RULES = {
    "cells, no margin": (cells, {}),
    "fine, Otsu": (fine, {}),
    "fine, 0.75 Otsu": (fine, {"scale": 0.75}),
    "grown 2 px": (grown, {"pixels": 2}),
    "grown 4 px": (grown, {"pixels": 4}),
    "grown 6 px": (grown, {"pixels": 6}),
    "grown 8 px": (grown, {"pixels": 8}),
    "grown 12 px": (grown, {"pixels": 12}),
    "grown 16 px": (grown, {"pixels": 16}),
    "whole pieces, touching": (whole_pieces, {"share": 0.0}),
    "whole pieces, 50 %": (whole_pieces, {"share": 0.5}),
    "whole pieces, 25 %": (whole_pieces, {"share": 0.25}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", choices=("val", "all"), default="val")
    parser.add_argument("--weights", default="fecnn-light")
    parser.add_argument("--limit", type=int, default=0, help="at most this many studies (0: all)")
    args = parser.parse_args()
    loaded = load_weights(args.weights, method="fecnn")
    loaded.model.eval()
    floor = float(loaded.preprocess["lesion_hu_floor"])
    records = [r for r in open_dataset(args.data) if r.lesion_mask_path is not None]
    if args.split == "val":
        records = split_by_patient(records, (0.84, 0.16, 0.0), seed=0)["val"]
    records = [r for r in records if r.diagnosis != "normal"][: args.limit or None]
    hits = {name: np.zeros((2, len(THRESHOLDS)), dtype=np.int64) for name in RULES}
    detections = dict.fromkeys(RULES, 0)
    on_lesion = dict.fromkeys(RULES, 0)
    lesions = np.zeros(2, dtype=np.int64)
    for record in records:
        canonical = to_canonical(read_ct(record.ct_path))
        hu = sitk.GetArrayFromImage(canonical)
        spacing_yx = canonical.GetSpacing()[1::-1]
        pixel_mm2 = float(np.prod(spacing_yx))
        lungs = sitk.GetArrayFromImage(to_canonical(read_image(record.lung_mask_path)))
        truth = sitk.GetArrayFromImage(to_canonical(read_image(record.lesion_mask_path))) * (lungs > 0)
        box = input_box(loaded.preprocess, lungs, spacing_yx)
        min_pixels = int(np.ceil(MIN_BOXED_MM2 / pixel_mm2))
        for centres in batches(np.flatnonzero(truth.reshape(len(truth), -1).any(axis=1)), 16):
            x = torch.from_numpy(fecnn_input(hu, lungs, centres, loaded.preprocess, box))
            lahm = gradcam_lahm(loaded.model, x, COVID_CLASS)[0]
            for b, z in enumerate(centres):
                unit = normalise(lahm[b])
                inside = lung_cells(loaded.preprocess, lungs[z], unit.shape, box)
                heat = to_slice(unit, truth.shape[1:], box, order=1)
                truths = (truth_components(truth[z]), truth_components(truth[z], min_pixels))
                lesions += [int(t.max()) for t in truths]
                for name, (rule, options) in RULES.items():
                    regions = rule(unit, inside, box, truth.shape[1:], hu=hu[z], lungs=lungs[z], floor=floor, **options)
                    pieces = attenuating_pieces(regions, hu[z], lungs[z], floor, pixel_mm2)[0] if regions.max() else regions
                    if name == "cells, no margin":  # the LAM exactly as detect_slices makes it
                        components = lesion_components(unit, inside)
                        peak_map = to_slice(lesion_activation_map(lahm[b], components, unit.shape), truth.shape[1:], box, order=1)
                    else:
                        peak_map = heat
                    detections[name] += int(pieces.max())
                    if pieces.max():
                        sizes = np.bincount(pieces.ravel())[1:]
                        inside_lesion = np.bincount(pieces.ravel(), weights=(truth[z] > 0).ravel())[1:]
                        on_lesion[name] += int((inside_lesion >= 0.5 * sizes).sum())
                    for k, gt in enumerate(truths):
                        hits[name][k] += slice_hits(pieces, peak_map, gt, THRESHOLDS)[0]
        print(f"{record.study_id}: {lesions[0]} lesions so far", flush=True)
    print(f"{len(records)} studies, {lesions[0]} lesions ({lesions[1]} of at least {MIN_BOXED_MM2:g} mm²)")
    for name in RULES:
        rates = hits[name] / np.maximum(lesions, 1)[:, None]
        print(f"{name:22s} all {100 * rates[0, 0]:5.1f} / {100 * rates[0, 1]:5.1f} %   "
              f"≥{MIN_BOXED_MM2:g} mm² {100 * rates[1, 0]:5.1f} / {100 * rates[1, 1]:5.1f} %   "
              f"detections {detections[name]}, {100 * on_lesion[name] / max(detections[name], 1):.0f} % on a lesion")


if __name__ == "__main__":
    main()
