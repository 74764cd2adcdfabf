"""Sanity checks that stop a wrong kind of image before it reaches a model.

A model given an MR volume, a CT without its rescale applied, or a single
slice still produces a mask, and that mask looks plausible. These checks turn
such inputs into one-line :class:`~covidweak.errors.InputError` messages that
say what is wrong and what to give instead.

The intensity checks read the voxels through a numpy view (no copy) and use
only a minimum and a maximum, so a 512x512x600 CT is checked in well under a
second.
"""

from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

from .errors import InputError

AIR_HU = -500.0
"""Lung parenchyma and outside air lie well below this; soft tissue, fat and bone above it."""

MAX_SPACING_MM = 20.0
MIN_CT_VOXELS = 16
MIN_CXR_PIXELS = 32


def _size_text(image: sitk.Image) -> str:
    return "x".join(str(s) for s in image.GetSize())


def _check_scalar(image: sitk.Image, what: str) -> None:
    channels = image.GetNumberOfComponentsPerPixel()
    if channels != 1:
        raise InputError(
            f"expected a single-channel {what} but got {channels} channels per voxel "
            f"(colour or vector image): export the {what} as grayscale"
        )


def _check_spacing(image: sitk.Image, what: str) -> None:
    spacing = image.GetSpacing()
    for value in spacing:
        if not math.isfinite(value) or value <= 0 or value > MAX_SPACING_MM:
            shown = ", ".join(f"{s:g}" for s in spacing)
            raise InputError(
                f"voxel spacing ({shown}) mm is not plausible for a {what} (expected 0 < spacing <= "
                f"{MAX_SPACING_MM:g} mm): the file header is damaged; re-export the {what} with its geometry"
            )


def intensity_range(image: sitk.Image) -> tuple[float, float]:
    """Minimum and maximum voxel value without copying the voxels.

    NaN propagates through ``min``/``max`` and infinities are their own extremes,
    so a non-finite voxel shows up in the result of these two reductions.
    """
    view = sitk.GetArrayViewFromImage(image)
    if view.size == 0:
        raise InputError("the image has no voxels: re-export the file")
    return float(np.min(view)), float(np.max(view))


def _check_finite(low: float, high: float, what: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(
            f"the {what} contains NaN or infinite voxel values: re-export it, or replace invalid voxels before use"
        )


def check_ct(image: sitk.Image) -> None:
    """Raise :class:`InputError` unless ``image`` looks like a 3-D chest CT in Hounsfield units.

    ``image``: a SimpleITK image, any pixel type. Checked, in order: 3-D, single
    channel, at least 16 voxels along every axis, plausible spacing, finite
    values, some body (a voxel above -500 HU) and some air (a voxel below
    -500 HU; an image with no air is MR or a CT without its rescale applied).
    """
    dimension = image.GetDimension()
    if dimension != 3:
        raise InputError(
            f"expected a 3-D CT volume but got a {dimension}-D image of size {_size_text(image)}: "
            "give a CT volume, not a single slice or radiograph"
        )
    _check_scalar(image, "CT volume")
    if min(image.GetSize()) < MIN_CT_VOXELS:
        raise InputError(
            f"the CT volume is {_size_text(image)} voxels, too small to be a chest CT "
            f"(need at least {MIN_CT_VOXELS} along every axis): give the full series, not a few slices"
        )
    _check_spacing(image, "CT volume")
    low, high = intensity_range(image)
    _check_finite(low, high, "CT volume")
    if high < AIR_HU:
        raise InputError(
            f"every voxel is below {AIR_HU:g} HU (range {low:g}..{high:g}): the volume holds only air, "
            "no body; check that you picked the right series or file"
        )
    if low > AIR_HU:
        raise InputError(
            f"intensities range {low:g}..{high:g} with no air below {AIR_HU:g}: this looks like MR or a non-HU "
            "image; give a CT in Hounsfield units (DICOM rescale slope/intercept applied)"
        )


def check_cxr(image: sitk.Image) -> None:
    """Raise :class:`InputError` unless ``image`` looks like a 2-D frontal chest radiograph.

    ``image``: 2-D, or 3-D with exactly one slice (how DICOM radiographs often
    read). Checked: not a volume, single channel, at least 32 pixels per side,
    plausible spacing, finite values, not constant.
    """
    size = image.GetSize()
    dimension = image.GetDimension()
    if dimension == 3 and size[2] != 1:
        raise InputError(
            f"expected a 2-D chest radiograph but got a 3-D volume of size {_size_text(image)}: "
            "give a single frontal X-ray image, not a CT volume"
        )
    if dimension not in (2, 3):
        raise InputError(f"expected a 2-D chest radiograph but got a {dimension}-D image: give a single X-ray image")
    _check_scalar(image, "radiograph")
    if min(size[:2]) < MIN_CXR_PIXELS:
        raise InputError(
            f"the radiograph is {_size_text(image)} pixels, too small (need at least {MIN_CXR_PIXELS} per side): "
            "give the full-resolution image"
        )
    _check_spacing(image, "radiograph")
    low, high = intensity_range(image)
    _check_finite(low, high, "radiograph")
    if low == high:
        raise InputError(
            f"every pixel of the radiograph has the value {low:g}: the image is blank; re-export it"
        )
