"""ROI max pooling (RMP) of Kim et al. (Sec. 2.2, Eq. 9): lesion probability map -> 3x2 array.

The lung mask is split into right and left lungs by connected components; each lung is
cut into upper / middle / lower zones by lines at 5/12 and 2/3 of its height
(:func:`covidweak.zones.zone_map_2d` holds that rule), and each of the six zones takes
the maximum probability inside it. Radiographs are displayed as read: row 0 superior and
the patient's right lung on the image's left (smaller column).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .. import zones

SEVERITY_THRESHOLD = 0.5
"""A zone counts as involved when its probability reaches 0.5 (Kim et al., Fig. 3: maps thresholded at 0.5)."""


def split_lungs(mask: np.ndarray) -> np.ndarray:
    """Right / left lungs of a binary lung mask by connected components.

    mask: (rows, cols), nonzero = lung (a 0/1/2 label map is re-split, its labels ignored).
    Returns (rows, cols) uint8: 0 background, 1 right lung (smaller column), 2 left lung.
    The two largest components are the lungs; smaller islands join the lung whose side of
    the midline between the two lung centroids they lie on. A single component is the
    right or the left lung by which half of the image holds its centroid.
    """
    mask = np.asarray(mask) > 0
    components, count = ndimage.label(mask)
    out = np.zeros(mask.shape, dtype=np.uint8)
    if count == 0:
        return out
    index = np.arange(1, count + 1)
    sizes = ndimage.sum(mask, components, index)
    centroid_cols = np.array([c[1] for c in ndimage.center_of_mass(mask, components, index)])
    if count == 1:
        out[mask] = 1 if centroid_cols[0] < mask.shape[1] / 2 else 2
        return out
    first, second = np.argsort(-sizes, kind="stable")[:2]
    midline = (centroid_cols[first] + centroid_cols[second]) / 2
    for label, column in zip(index, centroid_cols):
        out[components == label] = 1 if column < midline else 2
    return out


def zone_lines(lungs: np.ndarray) -> list[dict]:
    """The four zone lines of a right/left label map, in its pixel coordinates.

    lungs: (rows, cols) 0 / 1 right / 2 left. Returns one dict per present lung and
    fraction: ``{"lung", "fraction", "row", "col_start", "col_end"}``, ``row`` the line's
    (fractional) row, measured from the lung's highest to its lowest mask row as the zone
    rule does, and the columns the lung's extent.
    """
    lungs = np.asarray(lungs)
    lines = []
    for name, label in zip(zones.LUNG_NAMES, zones.LUNG_LABELS):
        rows, cols = np.nonzero(lungs == label)
        if rows.size == 0:
            continue
        top, bottom = int(rows.min()), int(rows.max())
        for fraction in zones.ZONE_FRACTIONS:
            lines.append({"lung": name, "fraction": round(fraction, 5), "row": top + fraction * (bottom - top),
                          "col_start": int(cols.min()), "col_end": int(cols.max())})
    return lines


def region_masks(lungs: np.ndarray) -> np.ndarray:
    """(rows, cols) 0/1/2 lungs -> (3, 2, rows, cols) bool: one mask per zone (row) and lung (column)."""
    lungs = np.asarray(lungs)
    zone_map = zones.zone_map_2d(lungs)
    return np.stack([np.stack([(zone_map == row + 1) & (lungs == label) for label in zones.LUNG_LABELS])
                     for row in range(3)])


def roi_max_pool(probability: torch.Tensor, regions: torch.Tensor) -> torch.Tensor:
    """Max of a probability map inside each of the six zones (differentiable in ``probability``).

    probability: (N, H, W) values in [0, 1]; regions: (N, 3, 2, H, W) bool from
    :func:`region_masks`. Returns (N, 3, 2); a zone with no pixels (a missing lung) gets 0.
    """
    inside = probability[:, None, None] * regions
    return inside.flatten(start_dim=3).amax(dim=3)


def severity_from_map(probability: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """(H, W) probability map and (H, W) 0/1/2 lungs -> (3, 2) float array of zone maxima."""
    regions = torch.from_numpy(region_masks(lungs))[None]
    return roi_max_pool(torch.as_tensor(np.asarray(probability, dtype=np.float32))[None], regions)[0].numpy()


def binarise(array: np.ndarray, threshold: float = SEVERITY_THRESHOLD) -> np.ndarray:
    """(3, 2) probabilities -> (3, 2) int 0/1 (1 where the probability is at least ``threshold``)."""
    return (np.asarray(array) >= threshold).astype(int)


def global_score(array: np.ndarray, threshold: float = SEVERITY_THRESHOLD) -> int:
    """Global severity score 0-6 of a (3, 2) probability array: the sum of its binarised zones."""
    return zones.global_score(binarise(array, threshold))
