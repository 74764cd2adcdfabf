"""Trachea and main bronchi: found in the superior slices and removed by leak-guarded region growing.

Choice (documented for reviewers): the airway is grown from a trachea seed with
a threshold raised in steps from -1000 HU; the last threshold whose region stays
below :data:`AIRWAY_MAX_ML` and does not jump in volume is kept. The airway lumen
is pure air (about -1000 HU) while aerated lung is -900..-700 HU, so the
growing stops inside the bronchial tree before it floods the parenchyma. The
same approach (seeded growing with an explosion check) is standard since
Mori et al. 1996 and Hu et al., IEEE TMI 20(6), 2001. Arrays are canonical (z, y, x).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from .masks import FACES, components_by_size

TRACHEA_AREA_MM2 = (60.0, 900.0)
"""Cross-section of an adult trachea (10-25 mm across, ~80-500 mm^2), widened for children and partial volume."""

TRACHEA_SEARCH_MM = 60.0
"""How far below the top of the air tree to look for the trachea (it runs ~10 cm above the carina)."""

MIDLINE_BAND = 0.2
"""The trachea's centre lies within this fraction of the body width from the body's midline."""

AIRWAY_THRESHOLDS_HU = tuple(range(-990, -850, 10))
"""Growing thresholds, tried in order; lung parenchyma begins around -900 HU in inspiration."""

AIRWAY_MAX_ML = 250.0
"""Trachea plus main and lobar bronchi hold ~50-150 mL in adults; more means the growing leaked."""

LEAK_JUMP = 2.0
LEAK_SLACK_ML = 20.0
"""A step that both more than doubles the region and adds more than this has broken into
parenchyma. The absolute part matters while the region is still a few voxels of trachea lumen."""


def trachea_seed(candidates: np.ndarray, body: np.ndarray, spacing_zyx) -> np.ndarray | None:
    """Voxels of the trachea in the most superior slices of the largest air tree, or None. (z, y, x) bool."""
    labels, order = components_by_size(candidates)
    if len(order) == 0:
        return None
    tree = labels == order[0]
    slices = np.flatnonzero(tree.any(axis=(1, 2)))
    top = int(slices.max())
    pixel_mm2 = float(spacing_zyx[1] * spacing_zyx[2])
    search = max(1, int(round(TRACHEA_SEARCH_MM / spacing_zyx[0])))
    for z in range(top, max(top - search, int(slices.min())) - 1, -1):
        body_columns = np.flatnonzero(body[z].any(axis=0))
        if body_columns.size == 0:
            continue
        middle = 0.5 * (body_columns[0] + body_columns[-1])
        width = body_columns[-1] - body_columns[0] + 1
        parts, count = ndi.label(tree[z])
        for part in range(1, count + 1):
            pixels = parts == part
            area = np.count_nonzero(pixels) * pixel_mm2
            x_centre = np.flatnonzero(pixels.any(axis=0)).mean()
            if TRACHEA_AREA_MM2[0] <= area <= TRACHEA_AREA_MM2[1] and abs(x_centre - middle) <= MIDLINE_BAND * width:
                seed = np.zeros_like(candidates)
                seed[z] = pixels
                return seed
    return None


def grow_airway(hu: np.ndarray, candidates: np.ndarray, seed: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Largest non-leaking region of ``hu < T`` inside ``candidates`` connected to ``seed``. (z, y, x) bool, maybe empty."""
    best = np.zeros_like(seed)
    best_volume = 0.0
    for threshold in AIRWAY_THRESHOLDS_HU:
        lumen = candidates & (hu < threshold)
        if not (lumen & seed).any():
            continue
        labels, _ = ndi.label(lumen, FACES)
        region = np.isin(labels, np.unique(labels[seed & lumen]))
        volume = np.count_nonzero(region) * voxel_ml
        leaked = best_volume > 0 and volume > LEAK_JUMP * best_volume and volume - best_volume > LEAK_SLACK_ML
        if volume > AIRWAY_MAX_ML or leaked:
            break
        best, best_volume = region, volume
    return best


def find_airway(hu: np.ndarray, candidates: np.ndarray, body: np.ndarray, spacing_zyx, voxel_ml: float) -> np.ndarray:
    """Trachea and main bronchi, dilated by one voxel to take the wall's partial-volume rim. Empty if no trachea is seen.

    Scans that start below the carina have no trachea in view; then nothing is
    removed and the lungs are separated by :func:`covidweak.lungs.masks.split_in_two` if they touch.
    """
    seed = trachea_seed(candidates, body, spacing_zyx)
    if seed is None:
        return np.zeros_like(candidates)
    airway = grow_airway(hu, candidates, seed, voxel_ml)
    if not airway.any():
        return airway
    return ndi.binary_dilation(airway, FACES) & candidates
