"""Study-level ground truth derived from the voxel labels: weak per-slice labels as
M-SEAM-NAM's training data had them, and the lesion table written to meta.json."""

from __future__ import annotations

import numpy as np

from ..zones import LUNG_NAMES, ZONE_NAMES
from .grid import Grid
from .lesions import TYPE_NAMES

ANNOTATION_STEP = (4, 5)
"""M-SEAM-NAM (Sec. 3.1): training positives were annotated every four or five slices."""


def weak_slice_labels(has_lesion: np.ndarray, diagnosis: str, rng: np.random.Generator) -> list[str]:
    """One of positive / negative / unknown per axial slice.

    Slices of a negative ("normal") patient are all negative. In a positive patient a
    radiologist marks lesion slices only every 4-5 slices within each run of lesion
    slices (each run gets at least one mark); every other slice, with or without
    lesion, is unknown.
    """
    n = len(has_lesion)
    if diagnosis == "normal":
        return ["negative"] * n
    out = ["unknown"] * n
    k = 0
    while k < n:
        if not has_lesion[k]:
            k += 1
            continue
        end = k
        while end < n and has_lesion[end]:
            end += 1
        step = int(rng.integers(ANNOTATION_STEP[0], ANNOTATION_STEP[1] + 1))
        mark = k + int(rng.integers(0, min(step, end - k)))
        while mark < end:
            out[mark] = "positive"
            mark += int(rng.integers(ANNOTATION_STEP[0], ANNOTATION_STEP[1] + 1))
        k = end
    return out


def lesion_table(grid: Grid, ids: np.ndarray, labels: np.ndarray, lungs: np.ndarray, zones: np.ndarray,
                 seen_on_cxr: set[int]) -> list[dict]:
    """meta.json's lesion list from the rendered masks.

    ids, labels, lungs, zones: (z, y, x) arrays; seen_on_cxr: ids of the lesions that
    cast a visible opacity on the radiograph. Each lesion reports its type (the most
    frequent label of its voxels), centroid in RAS mm, volume in mL, the lung and zone
    holding most of it, and ``cxr_visible``.
    """
    flat = np.flatnonzero(ids)
    if not len(flat):
        return []
    lesion = ids.reshape(-1)[flat].astype(np.int64)
    n = int(lesion.max()) + 1
    count = np.bincount(lesion, minlength=n)
    index = np.stack(np.unravel_index(flat, ids.shape), axis=1).astype(np.float64)
    centroid = np.stack([np.bincount(lesion, weights=index[:, a], minlength=n) for a in range(3)], axis=1)
    centroid /= np.maximum(count, 1)[:, None]

    def majority(values: np.ndarray, levels: int) -> np.ndarray:
        table = np.bincount(lesion * levels + values.reshape(-1)[flat], minlength=n * levels).reshape(n, levels)
        return table.argmax(axis=1)

    kind = majority(labels, 4)
    lung = majority(lungs, 3)
    zone = majority(zones, 4)
    rows = []
    for i in np.flatnonzero(count):
        lps = grid.index_to_phys(centroid[i])
        rows.append({
            "id": int(i),
            "type": int(kind[i]),
            "type_name": TYPE_NAMES[int(kind[i])],
            "centroid_ras": [round(float(-lps[0]), 2), round(float(-lps[1]), 2), round(float(lps[2]), 2)],
            "volume_ml": round(float(count[i] * grid.voxel_ml), 3),
            "lung": LUNG_NAMES[int(lung[i]) - 1],
            "zone": ZONE_NAMES[max(int(zone[i]), 1) - 1],
            "cxr_visible": int(i) in seen_on_cxr,
        })
    return rows
