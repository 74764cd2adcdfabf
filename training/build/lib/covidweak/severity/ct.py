"""CT involvement per lung and per zone, and a 6-zone involvement score from the weak segmentation.

The lobar CT severity score scores each of the five lobes 0-5 by the share of the lobe that is
involved. The lobes are not segmented here, so the same 0-5 scale is applied to six zones
instead: each lung (right / left from the lung label) split into upper, middle and lower zones
by Kim et al.'s lines at 5/12 and 2/3 of that lung's cranio-caudal extent
(:func:`covidweak.zones.zone_map_3d`). The total, 0-30, is a 6-zone analogue of the lobar
score and is named so in the output; it is not the lobar score.

Zone codes (``zones.nii.gz``): 0 outside the lungs, 1 right upper, 2 right middle, 3 right lower,
4 left upper, 5 left middle, 6 left lower.

The array-level functions come first; :func:`run_ct_severity` (the CT branch of
``covidweak severity``) reads the files and writes ``ct_severity.json`` and ``zones.nii.gz``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..zones import LUNG_LABELS, LUNG_NAMES, ZONE_NAMES, zone_map_3d

SCORE_NAME = "6-zone CT involvement score (0-30), an analogue of the lobar CT severity score; lobes are not segmented"
SCORE_UPPER_BOUNDS = (5.0, 25.0, 50.0, 75.0)
"""Involvement % that ends scores 1-4: score 1 is 0 < p < 5; scores 2-4 are p <= 25, 50, 75
(the bound belongs to the lower score: "5-25 %, 26-50 %, 51-75 %" read on a continuous scale);
score 5 is p > 75; score 0 is exactly no involved voxel. So 5 % scores 2, 25 % scores 2,
25.001 % scores 3 and 75 % scores 4."""
MAX_ZONE_SCORE = 5
LESION_TYPES = {1: "GGO", 2: "crazy paving", 3: "consolidation"}
"""Phantom lesion labels (lesions.nii.gz of ``covidweak phantom``)."""
OUTPUT_FILES = {"json": "ct_severity.json", "zones": "zones.nii.gz"}


def involvement_score(percent: float) -> int:
    """0-5 score of one zone from its involvement in % (see :data:`SCORE_UPPER_BOUNDS` for the bounds)."""
    percent = float(percent)
    if not 0.0 <= percent <= 100.0:  # also refuses NaN
        raise ValueError(f"involvement must be a percentage in 0..100, got {percent}")
    if percent == 0.0:
        return 0
    # Strictly below 5 % is score 1; from there each bound is inclusive.
    if percent < SCORE_UPPER_BOUNDS[0]:
        return 1
    return 2 + int(np.searchsorted(SCORE_UPPER_BOUNDS[1:], percent, side="left"))


def zone_codes(lungs: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Six zone codes from lung labels and per-lung zones.

    lungs: (Z, Y, X) 0 / 1 right / 2 left; zones: same shape, 0 / 1 upper / 2 middle / 3 lower.
    Returns (Z, Y, X) uint8: 0 outside, 1-3 right upper/middle/lower, 4-6 left upper/middle/lower.
    """
    lungs, zones = np.asarray(lungs), np.asarray(zones)
    if lungs.shape != zones.shape:
        raise InputError(f"lung and zone arrays differ in shape {lungs.shape} vs {zones.shape}")
    codes = np.zeros(lungs.shape, dtype=np.uint8)
    for offset, label in enumerate(LUNG_LABELS):
        inside = (lungs == label) & (zones > 0)
        codes[inside] = zones[inside] + 3 * offset
    return codes


def _share(lung_voxels: int, lesion_voxels: int, voxel_ml: float) -> dict:
    lung_ml, lesion_ml = lung_voxels * voxel_ml, lesion_voxels * voxel_ml
    percent = 100.0 * lesion_voxels / lung_voxels if lung_voxels else 0.0
    return {"lung_volume_ml": lung_ml, "lesion_volume_ml": lesion_ml, "involvement_percent": percent}


def zone_involvement(lesion_mask: np.ndarray, codes: np.ndarray, voxel_ml: float) -> list[dict]:
    """Volumes, involvement and score of the six zones, in code order 1-6.

    lesion_mask: (Z, Y, X), nonzero = lesion; codes: (Z, Y, X) from :func:`zone_codes`;
    voxel_ml: volume of one voxel in mL. Lesion voxels outside the lungs are not counted.
    Returns six dicts ``{"lung", "zone", "label", "lung_volume_ml", "lesion_volume_ml",
    "involvement_percent", "score"}``; an empty zone (e.g. a missing lung) has 0 % and score 0.
    """
    lesion = np.asarray(lesion_mask) != 0
    codes = np.asarray(codes)
    if lesion.shape != codes.shape:
        raise InputError(f"lesion mask and zone arrays differ in shape {lesion.shape} vs {codes.shape}")
    lung_voxels = np.bincount(codes.ravel(), minlength=7)
    lesion_voxels = np.bincount(codes[lesion].ravel(), minlength=7)
    table = []
    for code in range(1, 7):
        share = _share(int(lung_voxels[code]), int(lesion_voxels[code]), voxel_ml)
        table.append({"lung": LUNG_NAMES[(code - 1) // 3], "zone": ZONE_NAMES[(code - 1) % 3], "label": code,
                      **share, "score": involvement_score(share["involvement_percent"])})
    return table


def lung_involvement(lesion_mask: np.ndarray, lungs: np.ndarray, voxel_ml: float) -> dict:
    """``{"right": share, "left": share, "total": share}`` with share = lung and lesion mL and %.

    lesion_mask, lungs: same-shape (Z, Y, X) arrays; lungs 0 / 1 right / 2 left.
    """
    lesion = np.asarray(lesion_mask) != 0
    lungs = np.asarray(lungs)
    out = {}
    for name, label in zip(LUNG_NAMES, LUNG_LABELS):
        lung = lungs == label
        out[name] = _share(int(np.count_nonzero(lung)), int(np.count_nonzero(lung & lesion)), voxel_ml)
    both = np.isin(lungs, LUNG_LABELS)
    out["total"] = _share(int(np.count_nonzero(both)), int(np.count_nonzero(both & lesion)), voxel_ml)
    return out


def lesion_type_volumes(lesion_mask: np.ndarray, types: np.ndarray, voxel_ml: float) -> dict[str, float]:
    """Segmented lesion volume (mL) per known lesion type.

    lesion_mask: (Z, Y, X), nonzero = segmented lesion; types: same shape, the reference type
    labels of :data:`LESION_TYPES`. A segmented voxel counts for the type its reference label
    names; segmented voxels on no reference lesion belong to no type and are not counted.
    """
    lesion = np.asarray(lesion_mask) != 0
    types = np.asarray(types)
    if lesion.shape != types.shape:
        raise InputError(f"lesion mask and lesion type arrays differ in shape {lesion.shape} vs {types.shape}")
    counts = np.bincount(types[lesion].astype(np.int64).ravel(), minlength=max(LESION_TYPES) + 1)
    return {name: float(counts[label]) * voxel_ml for label, name in LESION_TYPES.items()}


def ct_severity(lesion_mask: np.ndarray, lungs: sitk.Image, lesion_types: Optional[np.ndarray] = None) -> tuple[dict, np.ndarray]:
    """Everything ``ct_severity.json`` reports about the lungs, and the zone code volume.

    lesion_mask: (Z, Y, X) array on ``lungs``' grid (nonzero = lesion); lungs: 3-D label image
    0 / 1 right / 2 left; lesion_types: optional (Z, Y, X) reference type labels.
    Returns (fields, codes): fields holds ``score_name``, ``zones``, ``lungs``, ``total_score``,
    ``involvement_percent`` and ``lesion_types_ml`` (None without types); codes is (Z, Y, X) uint8.
    """
    lung_array = sitk.GetArrayViewFromImage(lungs)
    if not np.isin(lung_array, LUNG_LABELS).any():
        raise InputError("no lungs found (the lung label image has no voxel labelled 1 or 2): "
                         "check the lung segmentation or give one with right = 1, left = 2")
    if np.asarray(lesion_mask).shape != lung_array.shape:
        raise InputError(f"lesion mask shape {np.asarray(lesion_mask).shape} differs from the lungs' "
                         f"{lung_array.shape}: give the segmentation of this CT")
    voxel_ml = float(np.prod(lungs.GetSpacing())) / 1000.0
    codes = zone_codes(lung_array, zone_map_3d(lungs))
    zones = zone_involvement(lesion_mask, codes, voxel_ml)
    per_lung = lung_involvement(lesion_mask, lung_array, voxel_ml)
    fields = {
        "score_name": SCORE_NAME,
        "zones": zones,
        "lungs": {name: per_lung[name] for name in LUNG_NAMES},
        "total_score": int(sum(zone["score"] for zone in zones)),
        "involvement_percent": per_lung["total"]["involvement_percent"],
        "lesion_types_ml": None if lesion_types is None else lesion_type_volumes(lesion_mask, lesion_types, voxel_ml),
    }
    return fields, codes


def phantom_lesion_types(image_path: Path, reference: sitk.Image) -> Optional[np.ndarray]:
    """The phantom's lesion type labels for a CT in a phantom study folder, else None.

    A phantom study folder holds ``meta.json`` and ``lesions.nii.gz`` (0, 1 GGO, 2 crazy paving,
    3 consolidation) beside its ``ct.nii.gz``; types are known only there. A label file on another
    grid than ``reference`` is not this CT's and is ignored.
    """
    from ..io import read_image

    folder = Path(image_path).parent
    labels_path, meta_path = folder / "lesions.nii.gz", folder / "meta.json"
    if Path(image_path).is_dir() or not (labels_path.is_file() and meta_path.is_file()):
        return None
    labels = read_image(labels_path)
    if labels.GetSize() != reference.GetSize() or not np.allclose(labels.GetSpacing(), reference.GetSpacing(), atol=1e-4):
        return None
    return sitk.GetArrayFromImage(labels)




def _segmentation(args, progress):
    """(ct, lungs image, lesion mask array, segmentation dict) from --from-segment or a fresh segmentation."""
    from ..io import read_ct
    from ..weakseg.infer import check_thresholds, threshold

    check_thresholds(args.t_fg, 0.0)
    ct = read_ct(args.image)
    if getattr(args, "from_segment", None):
        from ..weakseg.outputs import read_outputs

        result = read_outputs(Path(args.from_segment))
        if result.probability.GetSize() != ct.GetSize():
            raise InputError(f"the segmentation in {args.from_segment} has size {result.probability.GetSize()}, "
                             f"the CT {ct.GetSize()}: give the `covidweak segment` output of this CT")
        # The probability map is re-thresholded so that --t-fg means the same with or without --from-segment.
        mask = threshold(result.probability, args.t_fg)
        summary = result.summary
        about = {"method": summary.get("method"), "weights_sha256": summary.get("weights_sha256"), "t_fg": args.t_fg}
        return ct, result.lungs, sitk.GetArrayFromImage(mask), about
    from ..models import load_lesion_model
    from ..weakseg.infer import segment_ct

    model = load_lesion_model(args.seg_method, args.seg_weights, args.device)
    result = segment_ct(ct, model, t_fg=args.t_fg, device=args.device, progress=progress)
    about = {"method": model.method, "weights_sha256": model.sha256, "t_fg": args.t_fg}
    return ct, result.lungs, sitk.GetArrayFromImage(result.mask), about


def run_ct_severity(args) -> int:
    """The CT branch of ``covidweak severity IMAGE --out DIR``: writes ct_severity.json and zones.nii.gz.

    ``args``: the severity command's namespace (``image``, ``out``, ``device``, ``overwrite``,
    ``seg_method``, ``seg_weights``, ``t_fg``, ``from_segment``). Lesion types are reported when the
    CT lies in a phantom study folder, else ``lesion_types_ml`` is null.
    """
    from ..io import write_image
    from ..progress import command_progress
    from ..io.atomic import write_text
    from ..weakseg.outputs import check_writable

    start = time.perf_counter()
    paths = check_writable(args.out, args.overwrite, OUTPUT_FILES)
    progress = command_progress(args, "severity")
    ct, lungs, mask, about = _segmentation(args, progress)
    progress.update(0, 1, "zone involvement")
    fields, codes = ct_severity(mask, lungs, phantom_lesion_types(Path(args.image), ct))
    zones_image = sitk.GetImageFromArray(codes)
    zones_image.CopyInformation(ct)
    report = {"modality": "ct", **fields, "segmentation": about, "runtime_s": round(time.perf_counter() - start, 3)}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_image(zones_image, paths["zones"], overwrite=True)
    write_text(paths["json"], json.dumps(report, indent=2) + "\n")
    progress.update(1, 1, "zone involvement")
    print(f"6-zone CT involvement score {report['total_score']}/30, {report['involvement_percent']:.1f}% of the lungs "
          f"involved; wrote {', '.join(OUTPUT_FILES.values())} to {args.out}; research use only")
    return 0
