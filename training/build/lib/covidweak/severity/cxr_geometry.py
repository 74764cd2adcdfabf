"""Radiograph input at one physical scale: the lung box of a radiograph at 1.4 mm.

Kim et al. resize every radiograph to 256 x 256 (Sec. 3). That ties what a network sees to the
image's field of view and pixel count: a phantom radiograph rendered from a smaller CT matrix
shows the same chest at another scale after the resize, and the held-out MSE of the resized
pipeline doubled at a smaller phantom size and almost quadrupled at a larger one. Weights whose
``preprocess`` says ``geometry: lung_box`` instead read the box of ``box_shape`` pixels at
:data:`~covidweak.preprocess.lungbox.CANONICAL_SPACING_MM` centred on the radiograph's lungs,
with the lung-box code the CT networks use (:mod:`covidweak.preprocess.lungbox`, a radiograph
being one "slice"):

* a phantom radiograph (1.4 mm pixels, the phantom's native resolution) is cropped, not resampled;
* a clinical radiograph of 2-3 k pixels at 0.14-0.2 mm is reduced with an anti-aliasing filter;
* lungs larger than the box get a coarser spacing for that image instead of being cut, which is
  also what happens to an image whose header gives no spacing (1 mm assumed by the file format).

Pixels of the box beyond the image take the image's darkest value (the collimated border).
The lungs come from the dataset for training and from the cxr-lungs network for inference; the
cxr-lungs network itself reads the whole image resized, which is scale-free for a segmentation
of the whole field.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError
from ..preprocess.lungbox import LungBox, fit_lung_box, from_box, to_box

WHOLE_IMAGE, LUNG_BOX = "image", "lung_box"
"""``preprocess["geometry"]`` of a radiograph network: Kim et al.'s resize of the whole image to
``input_size`` (the default, and every weight file written before the box), or the lung box."""


def radiograph_box(preprocess: Optional[dict], lungs: np.ndarray, spacing_rc) -> Optional[LungBox]:
    """The lung box of one radiograph for a network that reads it, else None.

    lungs: (rows, cols) 0/1/2 labels; spacing_rc: (row, column) pixel spacing in mm.
    """
    spec = preprocess or {}
    geometry = spec.get("geometry", WHOLE_IMAGE)
    if geometry not in (WHOLE_IMAGE, LUNG_BOX):
        raise InputError(f"unknown radiograph geometry {geometry!r}: use '{WHOLE_IMAGE}' or '{LUNG_BOX}'")
    if geometry == WHOLE_IMAGE:
        return None
    size = int(spec.get("input_size", spec.get("size")))
    return fit_lung_box(np.asarray(lungs) != 0, spacing_rc, shape=(size, size))


def image_to_box(radiograph: np.ndarray, box: LungBox) -> np.ndarray:
    """(rows, cols) radiograph -> (H, W) float32 on the box grid, the darkest value beyond the image."""
    radiograph = np.asarray(radiograph, dtype=np.float32)
    return to_box(radiograph, box, order=1, fill=float(radiograph.min()))


def labels_to_box(lungs: np.ndarray, box: LungBox) -> np.ndarray:
    """(rows, cols) 0/1/2 lung labels -> (H, W) labels on the box grid (nearest neighbour)."""
    return to_box(np.asarray(lungs), box, order=0, fill=0)


def map_from_box(probability: np.ndarray, box: LungBox) -> np.ndarray:
    """(H, W) map on the box grid -> (rows, cols) on the radiograph's grid, 0 outside the box."""
    return from_box(np.asarray(probability, dtype=np.float32), box, order=1, fill=0.0)


def network_input(radiograph: np.ndarray, lungs: np.ndarray, spacing_rc, preprocess: dict):
    """What a severity-family network reads of one radiograph, identically in training and inference.

    radiograph: (rows, cols) any intensity range; lungs: (rows, cols) 0/1/2 labels; spacing_rc:
    (row, column) mm; preprocess: the network's ``preprocess`` (``input_size`` or ``size``, and
    ``geometry``). Returns (image (S, S) float32 after Kim et al.'s intensity steps, lungs (S, S)
    uint8 0/1/2, box or None for the whole-image resize).
    """
    from .cxr_preprocess import preprocess_cxr, resize_image

    box = radiograph_box(preprocess, lungs, spacing_rc)
    if box is None:
        size = int(preprocess.get("input_size", preprocess.get("size")))
        return preprocess_cxr(radiograph, size), resize_image(np.asarray(lungs, dtype=np.uint8), size, order=0), None
    return preprocess_cxr(image_to_box(radiograph, box), None), labels_to_box(np.asarray(lungs, dtype=np.uint8), box), box
