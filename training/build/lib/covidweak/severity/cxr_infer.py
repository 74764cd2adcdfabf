"""Kim et al.'s pipeline on one radiograph: lungs, lesion probability map, 3x2 array, global score.

The lung network (cxr-lungs) and the severity network work at their own square input
sizes; their outputs come back to the radiograph's own pixel grid, where the lungs are
split by connected components and RMP takes each zone's maximum, so the JSON's zone
probabilities are exactly the maxima of the written ``severity_map`` inside the written
zones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .. import zones
from ..errors import InputError
from .cxr_preprocess import min_max, resize_image
from .cxr_rmp import SEVERITY_THRESHOLD, binarise, global_score, severity_from_map, split_lungs, zone_lines

MIN_LUNG_SHARE = 0.02
"""Each lung must cover at least 2 % of a frontal radiograph (a real lung covers 10-20 %); less
means no lung was found, as on a lateral view, a CT slice or a non-chest image."""
MIN_MEDIASTINUM_SHARE = 0.03
"""On a frontal radiograph the mediastinum and spine (about a tenth of the width) separate the
lungs' columns; lungs closer than 3 % of the width, or overlapping, are a lateral view's
superimposed lung field split in two."""


@dataclass
class CxrSeverityResult:
    """Outputs on the radiograph's own grid: probability (3, 2), map (rows, cols) float32 0-1,
    lungs (rows, cols) uint8 0/1/2, zone lines (:func:`~covidweak.severity.cxr_rmp.zone_lines`)."""

    probability: np.ndarray
    probability_map: np.ndarray
    lungs: np.ndarray
    lines: list[dict]

    @property
    def binary(self) -> np.ndarray:
        return binarise(self.probability)

    @property
    def global_score(self) -> int:
        return global_score(self.probability)


def radiograph_array(image: sitk.Image) -> np.ndarray:
    """A 2-D image or a one-slice 3-D image -> (rows, cols) float32 (row 0 = first image row)."""
    from ..validate import check_cxr

    check_cxr(image)
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    return array[0] if array.ndim == 3 else array


def check_frontal_lungs(lungs: np.ndarray) -> None:
    """Raise InputError unless both lungs of a (rows, cols) 0/1/2 map are large enough and
    separated by a mediastinum, as on a frontal radiograph."""
    shares = {name: float(np.mean(lungs == label)) for name, label in zip(zones.LUNG_NAMES, zones.LUNG_LABELS)}
    missing = [name for name, share in shares.items() if share < MIN_LUNG_SHARE]
    if len(missing) == 2:
        raise InputError("no lungs found in the image: give a frontal (PA or AP) chest radiograph, not a lateral "
                         "view, a blank or a non-chest image")
    if missing:
        raise InputError(f"only the {'left' if missing[0] == 'right' else 'right'} lung was found: give a frontal "
                         "(PA or AP) chest radiograph with both lungs; a lateral view cannot be scored")
    right_columns, left_columns = np.nonzero((lungs == 1).any(axis=0))[0], np.nonzero((lungs == 2).any(axis=0))[0]
    if left_columns.min() - right_columns.max() < MIN_MEDIASTINUM_SHARE * lungs.shape[1]:
        raise InputError("the lungs found overlap with no mediastinum between them, as on a lateral view: give a "
                         "frontal (PA or AP) chest radiograph")


def segment_lungs_cxr(radiograph: np.ndarray, lungs_model, device) -> np.ndarray:
    """(rows, cols) radiograph -> (rows, cols) uint8 lungs 0 / 1 right / 2 left.

    The cxr-lungs network labels lung pixels at its input size; the labels come back by
    nearest-neighbour resizing and the right/left split is redone by connected components
    (Kim et al., Sec. 2.2), which also sends stray islands to the nearer lung.
    """
    import torch

    size = int(lungs_model.preprocess["input_size"])
    x = torch.from_numpy(min_max(resize_image(radiograph, size)))[None, None].to(device)
    with torch.no_grad():
        labels = lungs_model.model(x).argmax(dim=1)[0].cpu().numpy().astype(np.uint8)
    return split_lungs(resize_image(labels, radiograph.shape, order=0))


def severity_map(radiograph: np.ndarray, lungs: np.ndarray, severity_model, device, spacing_rc=(1.0, 1.0)) -> np.ndarray:
    """(rows, cols) radiograph and 0/1/2 lungs -> (rows, cols) float32 lesion probability, 0 outside the lungs.

    spacing_rc: (row, column) pixel spacing in mm, which places the lung box of a box network
    (:mod:`covidweak.severity.cxr_geometry`).
    """
    import torch
    import torch.nn.functional as F

    from .cxr_geometry import map_from_box, network_input

    image, network_lungs, box = network_input(radiograph, lungs, spacing_rc, severity_model.preprocess)
    mask = torch.from_numpy((network_lungs > 0).astype(np.float32))[None, None].to(device)
    with torch.no_grad():
        probability = severity_model.model(mask, image=torch.from_numpy(image)[None, None].to(device))
        target = radiograph.shape if box is None else tuple(box.shape)
        probability = F.interpolate(probability, size=target, mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
    if box is not None:
        probability = map_from_box(probability, box)
    return (probability.clip(0, 1) * (lungs > 0)).astype(np.float32)


def run_cxr(image: sitk.Image, severity_model, lungs_model, device="cpu", progress=None) -> CxrSeverityResult:
    """The whole pipeline on one radiograph (see :class:`CxrSeverityResult`)."""
    radiograph = radiograph_array(image)
    steps = 3
    if progress is not None:
        progress.update(0, steps, "lungs")
    lungs = segment_lungs_cxr(radiograph, lungs_model, device)
    check_frontal_lungs(lungs)
    if progress is not None:
        progress.update(1, steps, "lesion map")
    spacing_rc = image.GetSpacing()[:2][::-1]
    probability_map = severity_map(radiograph, lungs, severity_model, device, spacing_rc)
    if progress is not None:
        progress.update(2, steps, "zones")
    probability = severity_from_map(probability_map, lungs)
    if progress is not None:
        progress.update(3, steps, "done")
    return CxrSeverityResult(probability=probability, probability_map=probability_map, lungs=lungs,
                             lines=zone_lines(lungs))


def result_json(result: CxrSeverityResult, models: dict, runtime_s: float) -> dict:
    """The ``severity.json`` document of the CXR contract."""
    return {"modality": "cxr", "rows": list(zones.ZONE_NAMES), "columns": list(zones.LUNG_NAMES),
            "probability": [[round(float(p), 5) for p in row] for row in result.probability],
            "binary": result.binary.tolist(), "threshold": SEVERITY_THRESHOLD, "global_score": result.global_score,
            "zone_lines": [{**line, "row": round(float(line["row"]), 3)} for line in result.lines],
            "models": models, "runtime_s": round(runtime_s, 3)}


def as_image(array: np.ndarray, reference: sitk.Image, pixel_type) -> sitk.Image:
    """(rows, cols) array -> image with ``reference``'s geometry and dimension (2-D, or 3-D one slice)."""
    values = array[None] if reference.GetDimension() == 3 else array
    image = sitk.Cast(sitk.GetImageFromArray(values), pixel_type)
    image.CopyInformation(reference)
    return image
