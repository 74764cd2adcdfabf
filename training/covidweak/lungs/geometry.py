"""Grids for lung segmentation: a canonical axis order and a coarse working grid.

Morphology needs to know which array axis is axial and which is left-right.
Rather than reasoning about every direction matrix, the CT is permuted and
flipped (no interpolation) to the closest "LPS" orientation, so that in numpy
order (z, y, x) the array runs inferior->superior, anterior->posterior and
right->left. The result is permuted back onto the caller's exact grid at the end.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

CANONICAL_ORIENTATION = "LPS"
"""DICOM-style code: axis 0 points to patient Left, axis 1 Posterior, axis 2 Superior."""

WORK_SPACING_MM = 2.0
"""Finest spacing the morphology runs at. Lungs, airways wider than ~6 mm and the
closing radii below are all several voxels wide at 2 mm, and a 0.7 mm CT shrinks
~25-fold in voxel count; the full-resolution air boundary is restored afterwards."""


def orientation_code(image: sitk.Image) -> str:
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection())


def to_canonical(image: sitk.Image) -> sitk.Image:
    """Permute/flip ``image`` (any 3-D grid) so its axes are closest to L, P, S. Voxel values are untouched."""
    if orientation_code(image) == CANONICAL_ORIENTATION:
        return image
    return sitk.DICOMOrient(image, CANONICAL_ORIENTATION)


def from_canonical(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Undo :func:`to_canonical`: put ``image`` (on the canonical grid of ``reference``) on ``reference``'s grid."""
    code = orientation_code(reference)
    out = image if code == CANONICAL_ORIENTATION else sitk.DICOMOrient(image, code)
    # Permuting back is exact; copying the header removes rounding in the recomputed origin.
    out.CopyInformation(reference)
    return out


def working_grid(image: sitk.Image, target_mm: float = WORK_SPACING_MM) -> sitk.Image:
    """An empty image (uint8) covering the same field of view as ``image`` with spacing >= ``target_mm`` per axis.

    Axes already coarser than ``target_mm`` (typically 5 mm slices) keep their spacing.
    """
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    size = np.asarray(image.GetSize(), dtype=float)
    new_spacing = np.maximum(spacing, target_mm)
    new_size = np.maximum(1, np.round(size * spacing / new_spacing)).astype(int)
    new_spacing = size * spacing / new_size  # exact same extent
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    # The first voxel's outer edge stays where it was: centre moves by half the spacing change.
    origin = np.asarray(image.GetOrigin(), dtype=float) + direction @ ((new_spacing - spacing) / 2.0)
    grid = sitk.Image([int(s) for s in new_size], sitk.sitkUInt8)
    grid.SetSpacing([float(s) for s in new_spacing])
    grid.SetOrigin([float(o) for o in origin])
    grid.SetDirection(image.GetDirection())
    return grid


def same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (
        a.GetSize() == b.GetSize()
        and np.allclose(a.GetSpacing(), b.GetSpacing())
        and np.allclose(a.GetOrigin(), b.GetOrigin())
        and np.allclose(a.GetDirection(), b.GetDirection())
    )


def smooth_onto(image: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """Gaussian-smooth a float image (sigma = half the target spacing per axis, anti-aliasing) and resample onto ``grid``.

    The smoothing also averages out quantum noise before thresholding; sigma is at
    most a voxel of ``grid``, so edges move by well under one working voxel.
    """
    sigma = [0.5 * s for s in grid.GetSpacing()]
    smoothed = sitk.SmoothingRecursiveGaussian(sitk.Cast(image, sitk.sitkFloat32), sigma)
    if same_grid(image, grid):
        return smoothed
    return sitk.Resample(smoothed, grid, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkFloat32)


def resample_labels(labels: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """Nearest-neighbour resampling of a label image onto ``grid`` (labels are never blended)."""
    return sitk.Resample(labels, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())


def voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def physical_x(image: sitk.Image, zyx: np.ndarray) -> float:
    """LPS x (mm, larger = patient left) of a continuous (z, y, x) array index of ``image``."""
    index = [float(v) for v in np.asarray(zyx, dtype=float)[::-1]]
    return float(image.TransformContinuousIndexToPhysicalPoint(index)[0])
