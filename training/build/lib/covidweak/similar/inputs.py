"""DuCN's three-channel slice input from a CT and its lung mask (Peng et al., Sect. 2.1 and 3.3).

Per axial lung slice: the raw CT slice, the lung image (CT inside the lung mask, 0 outside)
and the intrapulmonary Euclidean distance map, all on one grid: the shared 1.4 mm lung box
(:mod:`covidweak.preprocess.lungbox`) for weights trained on it, else the whole slice at
``input_size`` x ``input_size`` (224 in the paper). Choices the paper leaves open:

* intensity: HU are mapped to [0, 1] with the fixed lung window
  :data:`covidweak.preprocess.HU_WINDOW`, the same for every scanner;
* slices: every axial slice with at least :data:`MIN_LUNG_PIXELS` lung pixels at input size
  (the paper feeds lung images, so slices without lung carry nothing to compare);
* the distance map is computed on the network's grid, per slice and per lung, scaled to [0, 1]
  (:func:`covidweak.preprocess.intrapulmonary_distance`), with that grid's pixel spacing so
  anisotropic pixels are measured in mm;
* on the lung box the raw channel is the box crop without the lung mask (outside the CT's field
  of view it is air), so the raw and lung channels still differ as the paper's do;
* slice numbers are the voxel index k along the CT file's third axis, whatever its
  orientation, so they match what a viewer and ``similar.json`` show.

Ablations of Table 1 (Sect. 3.3) replace channels rather than drop them, keeping 3 channels:
without the raw image (RIR) or without the distance map (DMR) that channel becomes the lung
image; without the lung mask (LMR) the lung image and the distance map both become the raw image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..preprocess import DUCN_SIZE, HU_WINDOW, ducn_channels, hu_window, intrapulmonary_distance, resize_slices
from ..preprocess.lungbox import fit_lung_box, to_box
from ..weakseg.prepare import LUNG_BOX

MIN_LUNG_PIXELS = 16
"""Lung pixels (at input size) a slice needs to count as a lung slice: a few pixels at the apex or base
are partial-volume specks whose distance map is all 0-1 steps."""

RAW, LUNG, DISTANCE = 0, 1, 2
ABLATIONS = {
    "none": (RAW, LUNG, DISTANCE),
    "rir": (LUNG, LUNG, DISTANCE),  # Sect. 3.3: raw image removed -> replaced by the lung image
    "dmr": (RAW, LUNG, LUNG),  # distance map removed -> replaced by the lung image
    "lmr": (RAW, RAW, RAW),  # lung mask removed -> lung image and distance map replaced by the raw image
}
"""Table 1 ablation name -> which channel of (raw, lung image, distance map) fills each input channel."""


@dataclass
class SliceInputs:
    """A study's network input. channels: (n, 3, S, S) float32; slice_numbers: (n,) int, file index k per row."""

    channels: np.ndarray
    slice_numbers: np.ndarray


def apply_ablation(channels: np.ndarray, ablation: str = "none") -> np.ndarray:
    """(..., 3, S, S) raw/lung/distance channels -> the same shape with Table 1's replacement applied."""
    if ablation not in ABLATIONS:
        raise InputError(f"unknown DuCN ablation '{ablation}': choose one of {', '.join(ABLATIONS)}")
    order = ABLATIONS[ablation]
    if order == ABLATIONS["none"]:
        return channels
    return np.ascontiguousarray(channels[..., list(order), :, :])


def slice_channels(hu: np.ndarray, lungs: np.ndarray, spacing_yx: tuple[float, float],
                   preprocess: Optional[dict] = None) -> tuple[np.ndarray, np.ndarray]:
    """Three channels of every lung slice of a canonical-order volume.

    hu: (Z, H, W) HU; lungs: (Z, H, W) labels, 0 outside (1 right, 2 left, or 1 for both lungs);
    spacing_yx: in-plane pixel spacing (mm) of the arrays; preprocess: the weights' dict, whose
    ``geometry`` "lung_box" reads the shared 1.4 mm lung box of ``box_shape`` (the input every CT
    network of the package reads), else whole slices resized to ``input_size`` squared (the
    paper's 224, and the files written before the box). Returns ((n, 3, S_y, S_x) float32,
    (n,) int64 indices into Z of the lung slices), n possibly 0.
    """
    spec = {"input_size": DUCN_SIZE, **(preprocess or {})}
    if hu.shape != lungs.shape or hu.ndim != 3:
        raise InputError(f"CT {hu.shape} and lung mask {lungs.shape} must be 3-D volumes on one grid; "
                         "give the lung mask made for this CT")
    if spec.get("geometry") == LUNG_BOX:
        box = fit_lung_box(lungs, spacing_yx, shape=tuple(spec["box_shape"]))
        mask = to_box(lungs.astype(np.uint8), box, order=0)
        pixel_mm = (box.spacing, box.spacing)
    else:
        size = int(spec["input_size"])
        mask = resize_slices(lungs.astype(np.uint8), size, order=0)
        pixel_mm = (spacing_yx[0] * hu.shape[1] / size, spacing_yx[1] * hu.shape[2] / size)
    keep = np.flatnonzero((mask > 0).sum(axis=(1, 2)) >= MIN_LUNG_PIXELS)
    if keep.size == 0:
        return np.zeros((0, 3) + mask.shape[1:], np.float32), keep
    if spec.get("geometry") == LUNG_BOX:
        raw = hu_window(to_box(hu[keep].astype(np.float32), box, order=1, fill=HU_WINDOW[0]))
    else:
        raw = resize_slices(hu_window(hu[keep]), size, order=1)
    distance = intrapulmonary_distance(mask[keep], spacing=(1.0, *pixel_mm), per_slice=True)
    return ducn_channels(raw, mask[keep], distance), keep


def study_inputs(ct: sitk.Image, lungs: Optional[sitk.Image] = None, preprocess: Optional[dict] = None,
                 progress=None) -> SliceInputs:
    """Every lung slice of a CT as DuCN input, numbered by the CT file's slice index.

    ct: 3-D image in HU (read with :func:`covidweak.io.read_ct`); lungs: its lung labels on the
    same grid, or None to segment them with :func:`covidweak.lungs.segment_lungs` (which raises
    InputError when the image holds no lungs). InputError as well when no slice has lung.
    """
    from ..lungs.geometry import to_canonical
    from ..lungs.geometry import canonical_slice_order

    if lungs is None:
        from ..lungs import segment_lungs

        lungs = segment_lungs(ct, progress=progress)
    if lungs.GetSize() != ct.GetSize():
        raise InputError(f"lung mask size {lungs.GetSize()} differs from CT size {ct.GetSize()}; "
                         "give the lung mask made for this CT")
    canonical = to_canonical(ct)
    hu = sitk.GetArrayFromImage(canonical).astype(np.float32)
    labels = sitk.GetArrayFromImage(to_canonical(lungs))
    spacing = canonical.GetSpacing()
    channels, rows = slice_channels(hu, labels, (spacing[1], spacing[0]), preprocess)
    if rows.size == 0:
        raise InputError("no lung found in any slice of this CT: give a chest CT that covers the lungs "
                         "(or a correct lung mask)")
    return SliceInputs(channels, canonical_slice_order(ct)[rows].astype(np.int64))
