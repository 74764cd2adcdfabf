"""One phantom study: CT, masks, radiograph, weak labels and metadata."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from .. import zones
from ..errors import InputError
from .acquisition import acquire
from .anatomy import Anatomy, build_anatomy
from .config import GENERATOR_VERSION, PATTERNS, PhantomConfig, check_pattern
from .drr import lesion_thickness, lesions_seen, project_labels, render_drr, visible_opacity
from .grid import Grid
from .labels import lesion_table, weak_slice_labels
from .lesions import lesion_candidates, lesions_at, paint_lesions, plan_cap, plan_covid
from .mediastinum import hila

FILES = ("ct", "lungs", "lesions", "cxr", "cxr_lungs")


@dataclass
class PhantomStudy:
    """A generated study. Images share the CT geometry (identity direction, LPS);
    ``cxr`` is 2-D with row 0 superior and column 0 the patient's right.
    ``tissue`` is the phantom's internal tissue-class map (see ``tissues``), kept for
    realism checks and not written to disk."""

    study_id: str
    patient_id: str
    study_index: int
    diagnosis: str
    ct: sitk.Image
    lungs: sitk.Image
    lesions: sitk.Image
    cxr: sitk.Image
    cxr_lungs: sitk.Image
    meta: dict
    tissue: Optional[np.ndarray] = None


def patient_id_for(patient_seed: int) -> str:
    return f"phantom-{int(patient_seed)}"


@lru_cache(maxsize=2)
def _anatomy(patient_seed: int, grid: Grid) -> Anatomy:
    # Follow-ups of one patient are generated one after another; caching the anatomy
    # makes them cost only their lesions, noise and projection.
    return build_anatomy(patient_seed, grid)


def _image(array: np.ndarray, grid: Grid) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in grid.spacing))
    image.SetOrigin(grid.origin)
    return image


def _image_2d(array: np.ndarray, pixel: float) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((pixel, pixel))
    return image


def generate_study(patient_seed: int, study_index: int, pattern: str, config: PhantomConfig = PhantomConfig()) -> PhantomStudy:
    """Generate study ``study_index`` (0 = baseline) of patient ``patient_seed``.

    The anatomy depends only on ``patient_seed``; lesions on the seed and ``pattern``
    (their course over ``study_index``); noise and weak-label sampling on the study.
    ``meta["burden"]`` holds the patient's CT category and drawn baseline involvement target
    (None for "normal"; CAP draws no target), ``meta["lung_involvement"]`` this study's lesion / lung voxels.
    """
    check_pattern(pattern)
    config.validate()
    if int(study_index) < 0:
        raise InputError(f"study_index must be 0 or more, got {study_index}")
    grid = Grid(int(config.size), int(config.slices), tuple(float(s) for s in config.spacing))
    anatomy = _anatomy(int(patient_seed), grid)
    hu = anatomy.hu.copy()
    tissue = anatomy.tissue.copy()
    lungs = anatomy.lungs

    lesions, burden = [], None
    if pattern != "normal":
        rng = np.random.default_rng([int(patient_seed), 1, PATTERNS.index(pattern)])
        planner = plan_covid if pattern == "covid" else plan_cap
        plan = planner(rng, lesion_candidates(grid, lungs), float(grid.scale[:2].mean()), float(config.lesion_scale))
        lesions = lesions_at(plan.lesions, int(study_index))
        burden = {"ct_category": plan.ct_category, "target_involvement": None if plan.target is None else round(plan.target, 4),
                  "planned_involvement": round(plan.estimate, 4)}
    roots = np.array([grid.ref_to_phys(h) for h in hila(anatomy.shape).bronchus])
    labels, ids = paint_lesions(grid, hu, tissue, lungs, lesions, roots)
    opacity = visible_opacity(lesion_thickness(anatomy.hu, hu, grid.spacing), grid.spacing[0])
    for overlay in anatomy.overlays:
        overlay.apply(hu, tissue)
    study_rng = np.random.default_rng([int(patient_seed), 2, int(study_index)])
    ct = acquire(hu, grid.spacing, study_rng)

    cxr = render_drr(ct, grid.spacing)
    cxr_lungs = project_labels(lungs, grid.spacing)
    severity = zones.severity_array(zones.zone_map_2d(cxr_lungs), cxr_lungs, opacity)

    lungs_image = _image(lungs.copy(), grid)
    has_lesion = labels.any(axis=(1, 2))
    patient_id = patient_id_for(patient_seed)
    study_id = f"{patient_id}-t{int(study_index)}"
    meta = {
        "study_id": study_id,
        "patient_id": patient_id,
        "study_index": int(study_index),
        "diagnosis": pattern,
        "seed": int(patient_seed),
        "size": grid.size,
        "slices": grid.slices,
        "spacing": [float(s) for s in grid.spacing],
        "lesion_scale": float(config.lesion_scale),
        "slice_labels": weak_slice_labels(has_lesion, pattern, np.random.default_rng([int(patient_seed), 3, int(study_index)])),
        "slice_has_lesion": [bool(v) for v in has_lesion],
        "severity_array": severity.tolist(),
        "severity_global": zones.global_score(severity),
        "burden": burden,
        "lung_involvement": round(float(np.count_nonzero(labels)) / max(int(np.count_nonzero(lungs)), 1), 5),
        "lesions": lesion_table(grid, ids, labels, lungs, zones.zone_map_3d(lungs_image), lesions_seen(ids, opacity, grid.spacing)),
        "generator_version": GENERATOR_VERSION,
    }
    return PhantomStudy(
        study_id=study_id, patient_id=patient_id, study_index=int(study_index), diagnosis=pattern,
        ct=_image(ct, grid), lungs=lungs_image, lesions=_image(labels, grid),
        cxr=_image_2d(cxr, grid.spacing[0]), cxr_lungs=_image_2d(cxr_lungs, grid.spacing[0]),
        meta=meta, tissue=tissue,
    )


def write_study(study: PhantomStudy, out_dir: Path) -> Path:
    """Write ``out_dir/<study_id>/{ct,lungs,lesions,cxr,cxr_lungs}.nii.gz`` and ``meta.json``.

    Refuses to write into an existing study folder (no silent overwrite); returns the folder.
    """
    folder = Path(out_dir) / study.study_id
    if folder.exists() and any(folder.iterdir()):
        raise InputError(f"{folder} already holds files; write to an empty folder or delete it first")
    folder.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        sitk.WriteImage(getattr(study, name), str(folder / f"{name}.nii.gz"), useCompression=True)
    (folder / "meta.json").write_text(json.dumps(study.meta, indent=1))
    return folder
