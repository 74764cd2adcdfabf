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


def shrink_factors(image: sitk.Image, grid: sitk.Image) -> list[int]:
    """Whole number of ``image`` voxels per axis (x, y, z) that fit in one voxel of ``grid`` (at least 1)."""
    ratio = np.asarray(grid.GetSpacing(), dtype=float) / np.asarray(image.GetSpacing(), dtype=float)
    return [max(1, int(np.floor(r + 1e-6))) for r in ratio]


def smooth_onto(image: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """Gaussian-smooth a float image (sigma = half the target spacing per axis, anti-aliasing) and resample onto ``grid``.

    The smoothing also averages out quantum noise before thresholding; sigma is at
    most a voxel of ``grid``, so edges move by well under one working voxel. A fine
    image is first block-averaged by :func:`shrink_factors` (8-fold fewer voxels for a
    0.7 x 0.7 x 1 mm CT onto 2 mm); a k-voxel box of spacing s already blurs with
    variance (k^2 - 1) s^2 / 12, so the Gaussian adds only what is missing and the
    total blur stays that of the sigma above.
    """
    sigma = np.array([0.5 * s for s in grid.GetSpacing()])
    factors = shrink_factors(image, grid)
    source = sitk.Cast(image, sitk.sitkFloat32)
    if max(factors) > 1:
        box_variance = (np.square(factors) - 1) / 12.0 * np.square(image.GetSpacing())
        sigma = np.sqrt(np.square(sigma) - box_variance)
        source = sitk.BinShrink(source, factors)
    smoothed = sitk.SmoothingRecursiveGaussian(source, [float(s) for s in sigma])
    if same_grid(source, grid):
        return smoothed
    return sitk.Resample(smoothed, grid, sitk.Transform(), sitk.sitkLinear, -1024.0, sitk.sitkFloat32)


def covering_box(mask_zyx: np.ndarray, grid: sitk.Image, image: sitk.Image, margin: int) -> tuple[list[int], list[int]]:
    """Index and size (x, y, z voxels of ``image``) of the box covering ``mask_zyx`` (a (z, y, x) array on ``grid``).

    ``grid`` and ``image`` share direction and extent (``grid`` from :func:`working_grid`); the box
    covers whole ``grid`` voxels plus ``margin`` voxels of ``image`` per side, clipped to ``image``.
    """
    nonzero = np.argwhere(mask_zyx)
    corners = (nonzero.min(axis=0)[::-1] - 0.5, nonzero.max(axis=0)[::-1] + 0.5)  # continuous (x, y, z) on grid
    ends = [image.TransformPhysicalPointToContinuousIndex(grid.TransformContinuousIndexToPhysicalPoint(
        [float(v) for v in corner])) for corner in corners]
    low = np.floor(np.minimum(*ends)).astype(int) - margin
    high = np.ceil(np.maximum(*ends)).astype(int) + margin
    low = np.maximum(low, 0)
    high = np.minimum(high, np.asarray(image.GetSize()) - 1)
    return [int(v) for v in low], [int(v) for v in high - low + 1]


def resample_labels(labels: sitk.Image, grid: sitk.Image) -> sitk.Image:
    """Nearest-neighbour resampling of a label image onto ``grid`` (labels are never blended)."""
    return sitk.Resample(labels, grid, sitk.Transform(), sitk.sitkNearestNeighbor, 0, labels.GetPixelID())


def voxel_ml(image: sitk.Image) -> float:
    return float(np.prod(image.GetSpacing())) / 1000.0


def physical_x(image: sitk.Image, zyx: np.ndarray) -> float:
    """LPS x (mm, larger = patient left) of a continuous (z, y, x) array index of ``image``."""
    index = [float(v) for v in np.asarray(zyx, dtype=float)[::-1]]
    return float(image.TransformContinuousIndexToPhysicalPoint(index)[0])


def canonical_slice_order(image: sitk.Image) -> np.ndarray:
    """File slice index of each canonical slice: (Z,) int, for a file of Z axial slices.

    Slice labels are indexed along the file's third axis; :func:`to_canonical` may flip or
    permute axes, so the labels are reordered the same way. A volume whose third file axis is
    not the canonical axial axis cannot carry axial slice labels and raises ``ValueError``.
    """
    z = image.GetSize()[2]
    probe = sitk.GetImageFromArray(np.arange(z, dtype=np.int32).reshape(z, 1, 1))
    probe.SetDirection(image.GetDirection())
    order = sitk.GetArrayFromImage(to_canonical(probe))
    if order.shape != (z, 1, 1):
        raise ValueError(f"the slice axis of this CT is not axial after reorientation (shape {order.shape}); "
                         f"slice labels cannot be applied")
    return order.reshape(z)
