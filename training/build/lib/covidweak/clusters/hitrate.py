"""Lesion hit rate (Wu et al. Sect. 4.3.2, Tables 5-6).

On one slice, detected lesions (the components of a LAM or of a thresholded CAM) and
ground-truth lesions (4-connected components of the lesion mask) are boxed. A ground-truth
lesion is *hit* when some detected box overlaps it by more than the threshold and the
detected region's spatial maximum lies inside the overlap of the two boxes. The hit rate is
hits / ground-truth lesions, pooled over all slices.

The overlap is the intersection over union of the two boxes: Sect. 4.3.2 says "the ratio of
the area of the LAM box which overlaps the GT lesion box" and Sect. 5.2 makes it precise,
"the area of the overlap needs to be over half of the union pixels" at threshold 0.5.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage as ndi

from .lam import FOUR_CONNECTIVITY

OVERLAP_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Wu et al. Table 5: overlap thresholds 0.1-0.9."""
CAM_THRESHOLD = 0.2
"""Zhou et al. (CVPR 2016) Sect. 3: CAM regions are the pixels above 20% of the map's maximum."""
MIN_BOXED_MM2 = 19.6
"""Smallest lesion cross-section (mm², a disk about 5 mm across) counted by the second reading of
the hit rate. Wu et al.'s ground truth are radiologists' boxes; the 4-connected components of a
voxel mask also hold a lesion's pole and partial-volume specks of a few pixels (on the FeCNN
validation slices, 240 of 578 components were missed by every detection, median box 11 pixels),
which no reader boxes. The same size as the smallest piece FeCNN reports
(``clusters.ct.MIN_PIECE_MM2``). Our reading, reported beside the count over every component."""

Box = tuple[int, int, int, int]  # row_start, col_start, row_stop, col_stop (stop exclusive)


def label_boxes(labels: np.ndarray) -> list[Box]:
    """Bounding box of each component 1..m of an (H, W) label image, in label order."""
    return [(s[0].start, s[1].start, s[0].stop, s[1].stop) for s in ndi.find_objects(labels) if s is not None]


def box_area(box: Box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def box_intersection(a: Box, b: Box) -> Box:
    return max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])


def box_iou(a: Box, b: Box) -> float:
    overlap = box_area(box_intersection(a, b))
    union = box_area(a) + box_area(b) - overlap
    return overlap / union if union else 0.0


def truth_components(mask: np.ndarray, min_pixels: int = 0) -> np.ndarray:
    """Ground-truth lesions of one slice: (H, W) mask, nonzero = lesion -> 4-connected labels 1..m,
    renumbered without the components of fewer than ``min_pixels`` pixels."""
    labels, count = ndi.label(np.asarray(mask) != 0, structure=FOUR_CONNECTIVITY)
    if min_pixels <= 1 or count == 0:
        return labels
    keep = np.bincount(labels.ravel(), minlength=count + 1) >= min_pixels
    keep[0] = False
    renumber = np.zeros(count + 1, dtype=labels.dtype)
    renumber[keep] = np.arange(1, int(keep.sum()) + 1)
    return renumber[labels]


def slice_hits(detected: np.ndarray, heatmap: np.ndarray, truth: np.ndarray,
               thresholds: Sequence[float] = OVERLAP_THRESHOLDS) -> tuple[np.ndarray, int]:
    """Hits on one slice at each threshold, and the number of ground-truth lesions.

    detected: (H, W) int labels of detected regions; heatmap: (H, W) map whose maximum inside
    each region is its spatial maximum; truth: (H, W) int labels of ground-truth lesions.
    Returns ((len(thresholds),) int64 hit counts, lesion count).
    """
    thresholds = np.asarray(thresholds, dtype=float)
    truth_boxes = label_boxes(truth)
    hits = np.zeros(len(thresholds), dtype=np.int64)
    if not truth_boxes or detected.max() == 0:
        return hits, len(truth_boxes)
    detected_boxes = label_boxes(detected)
    peaks = ndi.maximum_position(heatmap, detected, np.arange(1, len(detected_boxes) + 1))
    for gt in truth_boxes:
        best = 0.0
        for box, (row, col) in zip(detected_boxes, peaks):
            inside = box_intersection(box, gt)
            if inside[0] <= row < inside[2] and inside[1] <= col < inside[3]:
                best = max(best, box_iou(box, gt))
        hits += best > thresholds
    return hits, len(truth_boxes)


def cam_regions(cam: np.ndarray, fraction: float = CAM_THRESHOLD) -> np.ndarray:
    """The plain CAM baseline's detected regions: components of ``cam > fraction * max`` (H, W) -> labels."""
    cam = np.asarray(cam, dtype=np.float32)
    if cam.max() <= 0:
        return np.zeros(cam.shape, dtype=np.int32)
    return ndi.label(cam > fraction * cam.max(), structure=FOUR_CONNECTIVITY)[0]


def hit_rate_table(hits: np.ndarray, lesions: int, thresholds: Sequence[float] = OVERLAP_THRESHOLDS) -> list[dict]:
    """Table 5 rows ``{"threshold", "hits", "lesions", "hit_rate"}`` from pooled counts."""
    return [{"threshold": float(t), "hits": int(h), "lesions": int(lesions),
             "hit_rate": float(h) / lesions if lesions else None} for t, h in zip(thresholds, hits)]
