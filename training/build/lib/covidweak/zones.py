"""Kim et al.'s lung zones and the 3x2 severity array.

Kim et al. (ViT CXR severity, Sec. 2.2 "ROI max pooling") split the lungs into right
and left by connected components, then split *each lung* into upper, middle and lower
zones by lines at 5/12 and 2/3 of the way from the highest to the lowest point of
that lung's mask. We follow the text literally: the lines are per lung, so a right
lung sitting higher than the left (the usual case) gets its own lines. A 3x2 array
holds 1 where a zone contains any lesion (rows upper/middle/lower, columns
right/left); the global score is its sum, 0-6.

The same rule on a CT lung label volume, along the patient's cranio-caudal axis
(physical superior coordinate, whatever the image direction), gives CT zones.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .errors import InputError

ZONE_FRACTIONS = (5 / 12, 2 / 3)
"""Split lines as fractions of lung height from its top (Kim et al., Sec. 2.2)."""
ZONE_NAMES = ("upper", "middle", "lower")
LUNG_NAMES = ("right", "left")
LUNG_LABELS = (1, 2)


def _zones_from_height(height: np.ndarray, lungs: np.ndarray) -> np.ndarray:
    """Zone codes 1 upper / 2 middle / 3 lower (0 outside lungs) from a per-element height
    (larger = more superior) with ``lungs.ndim`` dimensions, broadcastable to ``lungs``.

    Height usually varies along one axis only (an axial CT, a radiograph's rows), so the cut
    lines are found on that axis alone: expanding it to the whole volume cost a 512x512x300 CT
    1.3 s and 600 MB, most of the post-processing time of ``covidweak segment``.
    """
    height = np.asarray(height, dtype=np.float64)
    lungs = np.asarray(lungs)
    constant_axes = tuple(axis for axis in range(lungs.ndim) if height.shape[axis] == 1)
    zones = np.zeros(lungs.shape, dtype=np.uint8)
    for label in LUNG_LABELS:
        inside = lungs == label
        present = inside.any(axis=constant_axes, keepdims=True)  # the shape of height
        if not present.any():
            continue
        h = np.broadcast_to(height, present.shape)[present]
        top, bottom = float(h.max()), float(h.min())
        depth = (top - height) / max(top - bottom, 1e-9)
        codes = 1 + (depth >= ZONE_FRACTIONS[0]).astype(np.uint8) + (depth >= ZONE_FRACTIONS[1])
        np.copyto(zones, codes, where=inside)
    return zones


def zone_map_2d(lungs: np.ndarray) -> np.ndarray:
    """Zones of a frontal radiograph's lung mask.

    lungs: (rows, cols) 0 / 1 right / 2 left, row 0 = most superior.
    Returns (rows, cols) uint8: 0 outside the lungs, 1 upper, 2 middle, 3 lower.
    """
    lungs = np.asarray(lungs)
    if lungs.ndim != 2:
        raise InputError(f"zone_map_2d needs a 2-D lung mask, got {lungs.ndim}-D; pass one frontal image")
    rows = np.arange(lungs.shape[0], dtype=np.float64)[:, None]
    return _zones_from_height(-rows, lungs)


def superior_coordinate(image: sitk.Image) -> np.ndarray:
    """Physical LPS z (mm, +superior) of each voxel, as a (z, y, x)-broadcastable array.

    Index axes that do not move along the patient's z stay of length 1, so an axial CT gives a
    (z, 1, 1) column instead of a volume.
    """
    direction = np.array(image.GetDirection()).reshape(3, 3)
    spacing, origin = np.array(image.GetSpacing()), np.array(image.GetOrigin())
    size = image.GetSize()
    height = np.full((1, 1, 1), origin[2])
    for axis in range(3):  # ITK index axis i, j, k = array axis 2, 1, 0
        if direction[2, axis] != 0.0:
            shape = [1, 1, 1]
            shape[2 - axis] = size[axis]
            height = height + (direction[2, axis] * spacing[axis] * np.arange(size[axis])).reshape(shape)
    return height


def zone_map_3d(lungs: sitk.Image) -> np.ndarray:
    """CT zones along the cranio-caudal axis.

    lungs: 3-D label image 0 / 1 right / 2 left (any direction matrix).
    Returns a (z, y, x) uint8 array like ``sitk.GetArrayFromImage(lungs)``: 0 outside,
    1 upper, 2 middle, 3 lower.
    """
    if lungs.GetDimension() != 3:
        raise InputError("zone_map_3d needs a 3-D lung label image; use zone_map_2d for radiographs")
    return _zones_from_height(superior_coordinate(lungs), sitk.GetArrayViewFromImage(lungs))


def severity_array(zones: np.ndarray, lungs: np.ndarray, lesions: np.ndarray) -> np.ndarray:
    """3x2 array (rows upper/middle/lower, columns right/left): 1 where a zone holds any lesion.

    zones, lungs, lesions: same-shape arrays (2-D radiograph or 3-D CT); lesions > 0 is
    a lesion. Returns int array (3, 2).
    """
    zones, lungs, lesions = np.asarray(zones), np.asarray(lungs), np.asarray(lesions)
    if not (zones.shape == lungs.shape == lesions.shape):
        raise InputError(f"zone, lung and lesion arrays differ in shape {zones.shape}, {lungs.shape}, {lesions.shape}")
    hit = lesions > 0
    out = np.zeros((3, 2), dtype=int)
    for col, label in enumerate(LUNG_LABELS):
        for row in range(3):
            out[row, col] = int(np.any(hit & (lungs == label) & (zones == row + 1)))
    return out


def global_score(array: np.ndarray) -> int:
    """Sum of the 3x2 severity array, 0-6."""
    return int(np.asarray(array).sum())
