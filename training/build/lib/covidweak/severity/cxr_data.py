"""Training arrays of the chest X-ray severity tasks, from phantom-style study records.

Each study gives its radiograph (``record.extra["cxr_path"]``), the radiograph's right/left
lung labels (``cxr_lungs_path``), the 3x2 severity array and the lesion table of its
meta.json. Training uses the dataset's lung labels as the mask m of Eq. 8 (the paper's
lung network is frozen and only supplies m); inference uses the cxr-lungs network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .. import zones
from ..errors import InputError
from ..models.severity_vit import EMBED_LABELS
from .cxr_geometry import network_input
from .cxr_rmp import region_masks

LESION_TYPES = (1, 2, 3)
"""Phantom lesion type codes: 1 GGO, 2 crazy paving, 3 consolidation (first three EMBED_LABELS)."""


@dataclass
class CxrArrays:
    """Stacked arrays of N studies at size S.

    images (N, 1, S, S) float32 preprocessed; masks (N, 1, S, S) float32 0/1 lungs;
    regions (N, 3, 2, S, S) bool zones; severity (N, 3, 2) float32 labels; findings
    (N, len(EMBED_LABELS)) float32 pre-training labels.
    """

    images: np.ndarray
    masks: np.ndarray
    regions: np.ndarray
    severity: np.ndarray
    findings: np.ndarray


def findings_of(lesions: list[dict]) -> np.ndarray:
    """Phantom lesion table -> (len(EMBED_LABELS),) 0/1: each lesion type present, lesion per CT zone.

    Only lesions the radiograph shows count (``cxr_visible``; data of generator 1.0 lack the
    flag and count every lesion), as CheXpert's findings are what a reader saw on the film.
    """
    found = np.zeros(len(EMBED_LABELS), dtype=np.float32)
    for lesion in lesions:
        if not lesion.get("cxr_visible", True):
            continue
        found[LESION_TYPES.index(int(lesion["type"]))] = 1
        column = zones.LUNG_NAMES.index(lesion["lung"])
        row = zones.ZONE_NAMES.index(lesion["zone"])
        found[len(LESION_TYPES) + 3 * column + row] = 1
    return found


def load_study(record, preprocess: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One study -> (S, S) preprocessed image, (S, S) uint8 lungs 0/1/2, (3, 2) severity, findings.

    preprocess: the task's ``preprocess`` section (``size``, and ``geometry``: see
    :func:`covidweak.severity.cxr_geometry.network_input`)."""
    try:
        image_path, lungs_path = record.extra["cxr_path"], record.extra["cxr_lungs_path"]
        severity = np.asarray(record.extra["severity_array"], dtype=np.float32)
    except KeyError:
        raise InputError(f"study '{record.study_id}' has no radiograph, lung labels and severity array: the severity "
                         "tasks need a dataset with cxr, cxr_lungs and meta.json, e.g. one from `covidweak phantom`") from None
    radiograph = sitk.ReadImage(str(image_path))
    image = sitk.GetArrayFromImage(radiograph).astype(np.float32)
    lungs = sitk.GetArrayFromImage(sitk.ReadImage(str(lungs_path))).astype(np.uint8)
    if image.ndim != 2 or image.shape != lungs.shape or severity.shape != (3, 2):
        raise InputError(f"study '{record.study_id}': radiograph {image.shape}, lungs {lungs.shape} and severity "
                         f"{severity.shape} must be 2-D of one size and 3x2; regenerate the data")
    network_image, network_lungs, _ = network_input(image, lungs, radiograph.GetSpacing()[::-1], preprocess)
    return network_image, network_lungs, severity, findings_of(record.extra.get("lesions", []))


def load_arrays(records, preprocess: dict, progress=None) -> CxrArrays:
    """:class:`CxrArrays` of ``records`` as the ``preprocess`` section asks."""
    items = progress.iterate(records, len(records), "radiographs") if progress is not None else records
    loaded = [load_study(record, preprocess) for record in items]
    if not loaded:
        raise InputError("no studies to load: the split is empty; use more patients or change data.fractions")
    images, lungs, severity, findings = (np.stack(parts) for parts in zip(*loaded))
    return CxrArrays(images=images[:, None], masks=(lungs > 0).astype(np.float32)[:, None],
                     regions=np.stack([region_masks(l) for l in lungs]), severity=severity, findings=findings)
