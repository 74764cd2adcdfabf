"""The lesion table (lesions.csv), lung involvement and summary.json content.

A lesion is a 3-D connected component of the mask (26-connectivity: a lesion cut
obliquely by the slice grid stays one lesion). Coordinates are reported in RAS, the
convention of Slicer's markups; IJK are ITK indices (i along x, k along z), inclusive.
Lung and zone of a lesion are those holding most of its voxels; zones are Kim et al.'s
upper/middle/lower thirds along the cranio-caudal axis (:func:`covidweak.zones.zone_map_3d`).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import SimpleITK as sitk
from scipy import ndimage as ndi

from ..io.ras import ijk_to_ras_matrix
from ..zones import LUNG_LABELS, LUNG_NAMES, ZONE_NAMES, zone_map_3d

LESION_COLUMNS = (
    "id", "volume_ml", "centroid_r", "centroid_a", "centroid_s", "mean_hu", "max_probability", "lung", "zone",
    "bbox_r_min", "bbox_a_min", "bbox_s_min", "bbox_r_max", "bbox_a_max", "bbox_s_max",
    "bbox_i_min", "bbox_j_min", "bbox_k_min", "bbox_i_max", "bbox_j_max", "bbox_k_max",
)
RESEARCH_NOTE = "research use only: not for diagnosis or treatment decisions"
CONNECTIVITY = ndi.generate_binary_structure(3, 3)


def voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def ijk_to_ras(image: sitk.Image, ijk: np.ndarray) -> np.ndarray:
    """(N, 3) continuous ITK indices (i, j, k) -> (N, 3) RAS mm."""
    matrix = ijk_to_ras_matrix(image)
    return np.asarray(ijk, dtype=float) @ matrix[:3, :3].T + matrix[:3, 3]


def ras_boxes(image: sitk.Image, low_ijk: np.ndarray, high_ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RAS min and max corners of voxel-centre boxes between ITK indices, for any direction matrix.

    low_ijk, high_ijk: (N, 3) inclusive indices. Returns two (N, 3) arrays. The map is affine, so
    along each RAS axis the extreme corner takes, per index axis, whichever end moves it furthest.
    """
    matrix = ijk_to_ras_matrix(image)
    a = low_ijk[:, None, :] * matrix[None, :3, :3]  # (N, ras, ijk): each index axis' contribution
    b = high_ijk[:, None, :] * matrix[None, :3, :3]
    return np.minimum(a, b).sum(axis=2) + matrix[:3, 3], np.maximum(a, b).sum(axis=2) + matrix[:3, 3]


def _majority(codes: np.ndarray) -> int:
    """The most frequent nonzero code, 0 when there is none."""
    codes = codes[codes > 0]
    return int(np.bincount(codes).argmax()) if codes.size else 0


def lesion_table(probability: sitk.Image, mask: sitk.Image, ct: sitk.Image, lungs: sitk.Image,
                 zones: Optional[np.ndarray] = None) -> list[dict]:
    """One row per connected lesion of ``mask``, keys :data:`LESION_COLUMNS`, largest first.

    All four images share the CT grid. Volumes in mL, coordinates in RAS mm, HU as in ``ct``.
    ``zones``: ``zone_map_3d(lungs)`` when the caller has it already.
    """
    lesion = sitk.GetArrayViewFromImage(mask) > 0
    if not lesion.any():  # a lesion-free CT (most of a screening batch) skips the labelling pass
        return []
    labels, count = ndi.label(lesion, structure=CONNECTIVITY)
    prob = sitk.GetArrayViewFromImage(probability)
    hu = sitk.GetArrayViewFromImage(ct)
    lung_codes = sitk.GetArrayViewFromImage(lungs)
    zone_codes = zone_map_3d(lungs) if zones is None else zones
    boxes = ndi.find_objects(labels)
    low = np.array([[box[2].start, box[1].start, box[0].start] for box in boxes])
    high = np.array([[box[2].stop - 1, box[1].stop - 1, box[0].stop - 1] for box in boxes])
    ras_min, ras_max = ras_boxes(ct, low, high)
    # Statistics inside each lesion's bounding box: scipy's labelled statistics
    # (ndi.mean / maximum / center_of_mass) pass over the whole volume once per call and sort
    # every labelled voxel for the maximum, which took 18 s for a 512x512x300 CT with many lesions.
    stats = []
    for n, box in enumerate(boxes):
        inside = labels[box] == n + 1
        codes = lung_codes[box][inside]
        lung_label = _majority(codes)
        zone_code = _majority(zone_codes[box][inside][codes == lung_label]) if lung_label else 0
        centroid_zyx = np.argwhere(inside).mean(axis=0) + [box[0].start, box[1].start, box[2].start]
        stats.append((np.count_nonzero(inside), centroid_zyx[::-1], hu[box][inside].mean(dtype=np.float64),
                      prob[box][inside].max(), lung_label, zone_code))
    centres = ijk_to_ras(ct, np.array([centroid for _, centroid, *_ in stats]))
    rows = []
    for n, (voxels, _, mean_hu, max_prob, lung_label, zone_code) in enumerate(stats):
        rows.append({"volume_ml": float(voxels) * voxel_ml(ct), "centroid_r": centres[n, 0],
                     "centroid_a": centres[n, 1], "centroid_s": centres[n, 2], "mean_hu": float(mean_hu),
                     "max_probability": float(max_prob),
                     "lung": LUNG_NAMES[LUNG_LABELS.index(lung_label)] if lung_label else "outside",
                     "zone": ZONE_NAMES[zone_code - 1] if zone_code else "outside",
                     **{f"bbox_{a}_min": v for a, v in zip("ras", ras_min[n])},
                     **{f"bbox_{a}_max": v for a, v in zip("ras", ras_max[n])},
                     **{f"bbox_{a}_min": int(v) for a, v in zip("ijk", low[n])},
                     **{f"bbox_{a}_max": int(v) for a, v in zip("ijk", high[n])}})
    rows.sort(key=lambda row: -row["volume_ml"])
    return [{"id": i, **{k: _plain(v) for k, v in row.items()}} for i, row in enumerate(rows, start=1)]


def _plain(value):
    """numpy scalars -> Python numbers rounded for a readable CSV (0.001 mm / mL / HU)."""
    if isinstance(value, (float, np.floating)):
        return round(float(value), 4)
    return value


def involvement(mask: sitk.Image, lungs: sitk.Image, zones: Optional[np.ndarray] = None) -> dict:
    """Lesion and lung volumes (mL) and % involvement per lung, per zone and in total.

    Returns ``{"total": {...}, "right": {...}, "left": {...}, "right_upper": {...}, ...}``, each
    ``{"lung_ml", "lesion_ml", "percent"}``; lesion voxels outside the lungs are not counted.
    """
    lesion = sitk.GetArrayViewFromImage(mask) > 0
    lung_codes = sitk.GetArrayViewFromImage(lungs)
    zones = zone_map_3d(lungs) if zones is None else zones
    vml = voxel_ml(lungs)
    # Voxels per (lung label, zone) cell, cell = 4 * label + zone, counted in two passes over
    # the volume rather than two per region (18 in all). The cell codes stay uint8, one byte a
    # voxel, and are counted slice by slice: np.bincount widens its input to int64, which for a
    # whole 512x512x300 CT is a 600 MB temporary.
    cells = 4 * (max(LUNG_LABELS) + 1)
    key = np.zeros(lung_codes.shape, dtype=np.uint8)
    for label in LUNG_LABELS:
        key[lung_codes == label] = 4 * label
    # zones 1-3 fill the two low bits of 4 * label
    np.bitwise_or(key, zones.astype(np.uint8, copy=False), out=key, where=key > 0)
    lung_voxels = sum(np.bincount(plane.ravel(), minlength=cells) for plane in key)
    lesion_voxels = np.bincount(key[lesion], minlength=cells)

    def entry(cell_ids: list[int]) -> dict:
        lung_ml = float(lung_voxels[cell_ids].sum()) * vml
        lesion_ml = float(lesion_voxels[cell_ids].sum()) * vml
        return {"lung_ml": round(lung_ml, 3), "lesion_ml": round(lesion_ml, 3),
                "percent": round(100.0 * lesion_ml / lung_ml, 3) if lung_ml else 0.0}

    in_lung = {label: [4 * label + zone for zone in range(4)] for label in LUNG_LABELS}
    out = {"total": entry(sum(in_lung.values(), []))}
    for name, label in zip(LUNG_NAMES, LUNG_LABELS):
        out[name] = entry(in_lung[label])
        for code, zone in enumerate(ZONE_NAMES, start=1):
            out[f"{name}_{zone}"] = entry([4 * label + code])
    return out


def summarize(probability: sitk.Image, mask: sitk.Image, lungs: sitk.Image, lesions: list[dict], t_fg: float,
              t_bg: float, about: dict, zones: Optional[np.ndarray] = None) -> dict:
    """summary.json content: volumes, involvement, thresholds, model identity, version.

    The caller adds ``runtime_s`` and ``stage_seconds`` once its last stage has ended.
    """
    from .. import __version__

    prob = sitk.GetArrayViewFromImage(probability)
    in_lung = sitk.GetArrayViewFromImage(lungs) > 0
    uncertain = np.count_nonzero(in_lung & (prob >= t_bg) & (prob <= t_fg))
    share = involvement(mask, lungs, zones)
    return {
        "lesion_count": len(lesions),
        "lesion_volume_ml": share["total"]["lesion_ml"],
        "lung_volume_ml": {"right": share["right"]["lung_ml"], "left": share["left"]["lung_ml"],
                           "total": share["total"]["lung_ml"]},
        # Between T_bg and T_fg NAM treats pixels as uncertain (M-SEAM-NAM Sect. 2.2).
        "uncertain_volume_ml": round(float(uncertain) * voxel_ml(lungs), 3),
        "involvement": share,
        **about,
        "t_fg": t_fg,
        "t_bg": t_bg,
        "covidweak_version": __version__,
        "note": RESEARCH_NOTE,
    }
