"""The study record every data source yields: the phantom and each public dataset reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

DIAGNOSES = ("covid", "cap", "normal")
"""Patient-level labels. Readers map their dataset's classes onto these or ``unknown``."""

SLICE_LABELS = ("positive", "negative", "unknown")
"""Per-axial-slice weak labels as M-SEAM-NAM's training set had them."""


@dataclass
class StudyRecord:
    """One imaging study (a CT volume, optionally with masks) of one patient.

    Paths point to files on disk; ``slice_labels`` has one entry per axial slice
    (index k = voxel index k along the image's third axis) when known.
    """

    study_id: str
    patient_id: str
    diagnosis: str  # one of DIAGNOSES or "unknown"
    ct_path: Path
    source: str  # "phantom", "covid19-ct-seg", "mosmeddata", "cc-ccii", "manifest"
    study_index: int = 0
    lung_mask_path: Optional[Path] = None  # 1 right, 2 left (or 1 = both lungs if the dataset does not split)
    lesion_mask_path: Optional[Path] = None  # 0 background, >0 lesion (phantom: 1 GGO, 2 crazy paving, 3 consolidation)
    slice_labels: Optional[list[str]] = None
    extra: dict = field(default_factory=dict)
