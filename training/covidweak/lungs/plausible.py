"""Is what was found a chest's lungs? Refusing heads, abdomens and CTs that barely reach the lungs.

The classical segmentation always returns the largest air pockets inside the body:
in a head CT those are the paranasal sinuses, in an abdominal CT bowel gas, in a CT
of the upper abdomen the last centimetres of the lung bases. All three would then be
cropped and fed to the lesion networks as if they were lungs. A chest differs from
them in two scale-free ways (the checks must hold for an infant as for an adult, and
for the project's small test phantoms, whose anatomy scales with the field of view):

* the lungs fill a large share of the body in the slices they occupy
  (:data:`MIN_LUNG_FRACTION`);
* the lungs are tall compared with the width of the trunk around them
  (:data:`MIN_HEIGHT_RATIO`), so a CT that holds only a few lung slices is refused.

An absolute floor (:data:`MIN_LUNG_ML`) is added for tiny pockets of air in a large body.
Arrays are canonical (z, y, x), z axial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from ..errors import InputError

MIN_LUNG_FRACTION = 0.08
"""Least share of the body, in the slices holding lung, that the lungs (with their vessels and lesions) fill.
An adult chest at inspiration holds 4-6 L of lung in a ~15 L trunk segment (~30 %), an obese patient
scanned with the arms down still ~15 %; the phantoms measure 0.17-0.31 (held-out, 128-512 pixels) and
0.13 at their smallest (64 pixels, CAP). Synthetic sinuses measure 0.04 of the head in their slices and
bowel gas pockets 0.02-0.04 of the abdomen, so 0.08 leaves about a factor of two on either side.
Lungs almost wholly opacified (a white-out; a phantom follow-up at 94 % involvement keeps 48 mL of air,
0.04 of its trunk) fall below it too, because the mask starts from aerated lung; the message says so."""

MIN_HEIGHT_RATIO = 0.25
"""Least lung height (z extent) as a share of the body's width (its median left-right extent in the
lung slices). An adult's lungs are 20-28 cm tall in a 30-40 cm wide chest (0.6-0.9; arms down ~0.5),
an infant's 7 cm in 12 cm (~0.6); the phantoms measure 0.7-0.95, and 0.36 where a 180 mm scan cuts
their lungs (288 x 36 slices of 5 mm). Below 0.25, under ~8 cm of an adult's lungs, the CT holds only
the lung bases or apices (an abdominal or neck CT) and lesion burden and involvement would describe a
fragment; a cardiac CT (the middle 12-15 cm) still passes."""

MIN_LUNG_ML = 20.0
"""Absolute floor, below any real lung (a newborn's lungs hold ~100 mL) yet above the lungs of the
project's smallest test phantoms (64 x 64 x 24-32 pixels at 1.4 mm: 43-106 mL): it only refuses specks of air
that the scale-free checks would measure unreliably."""


@dataclass(frozen=True)
class LungShape:
    """What the checks look at. ``lung_ml``: both lungs; ``fraction``: lung voxels / body voxels in the slices
    holding lung; ``height_mm``: lung z extent; ``width_mm``: median left-right body extent in those slices."""

    lung_ml: float
    fraction: float
    height_mm: float
    width_mm: float

    @property
    def height_ratio(self) -> float:
        return self.height_mm / self.width_mm if self.width_mm > 0 else 0.0


def measure(lungs: np.ndarray, body: np.ndarray, spacing_zyx) -> LungShape:
    """:class:`LungShape` of ``lungs`` (any nonzero = lung) inside ``body``, both (z, y, x) on a grid of ``spacing_zyx`` mm."""
    lung = lungs > 0
    slices = np.flatnonzero(lung.any(axis=(1, 2)))
    if slices.size == 0:
        return LungShape(0.0, 0.0, 0.0, 0.0)
    sz, _, sx = (float(s) for s in spacing_zyx)
    trunk = body[slices] | lung[slices]
    columns = trunk.any(axis=1)  # (slices, x)
    widths = [np.ptp(np.flatnonzero(row)) + 1 for row in columns]
    return LungShape(
        lung_ml=float(np.count_nonzero(lung)) * float(np.prod(spacing_zyx)) / 1000.0,
        fraction=float(np.count_nonzero(lung)) / float(np.count_nonzero(trunk)),
        height_mm=float(slices[-1] - slices[0] + 1) * sz,
        width_mm=float(np.median(widths)) * sx,
    )


def problem(shape: LungShape) -> str | None:
    """One line naming why ``shape`` is not a chest's lungs and what to do, or None when it is plausible."""
    fix = "give a chest CT that covers the lungs"
    if shape.lung_ml < MIN_LUNG_ML:
        return f"found only {shape.lung_ml:.0f} mL of lung air (a chest CT holds litres): {fix}"
    if shape.height_ratio < MIN_HEIGHT_RATIO:
        return (f"the lungs found span only {shape.height_mm:.0f} mm head to foot in a body {shape.width_mm:.0f} mm "
                f"wide: the CT holds too little of the lungs; {fix}")
    if shape.fraction < MIN_LUNG_FRACTION:
        return (f"the air found ({shape.lung_ml:.0f} mL) fills only {100 * shape.fraction:.0f}% of the body in its "
                f"slices, where lungs fill {100 * MIN_LUNG_FRACTION:.0f}% or more: this does not look like a chest CT "
                f"(sinus or bowel gas?), or its lungs are so opacified that the lung mask, which starts from "
                f"aerated lung, cannot follow them; {fix}")
    return None


def check_lungs(lungs: np.ndarray, body: np.ndarray, spacing_zyx) -> None:
    """Raise :class:`~covidweak.errors.InputError` (one line) unless ``lungs`` look like a chest's lungs. Arrays (z, y, x)."""
    message = problem(measure(lungs, body, spacing_zyx))
    if message is not None:
        raise InputError(message)


def check_lung_image(ct: sitk.Image, lungs: sitk.Image) -> None:
    """:func:`check_lungs` for a lung label image on ``ct``'s grid (a user-supplied mask); body found from ``ct``."""
    from .geometry import resample_labels, smooth_onto, to_canonical, working_grid
    from .masks import body_mask
    from .segment import AIR_HU

    canon = to_canonical(ct)
    grid = working_grid(canon)
    body = body_mask(sitk.GetArrayFromImage(smooth_onto(canon, grid)) < AIR_HU)
    labels = sitk.Cast(lungs, sitk.sitkUInt8)
    labels.CopyInformation(ct)
    coarse = sitk.GetArrayFromImage(resample_labels(to_canonical(labels), grid))
    check_lungs(coarse, body, grid.GetSpacing()[::-1])
