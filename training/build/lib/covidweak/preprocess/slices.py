"""Selecting which axial slices of a volume to keep."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError

WU_MIN_MEAN_INTENSITY = 0.08
"""Wu et al. Sec. 4.2.2: end slices whose mean intensity is below 0.08 are discarded.

The paper first maps each image to 8-bit with a normalisation window and masks
the lungs; 0.08 only makes sense on the [0, 1] scale (8-bit would be 20.4 of
255), so the threshold applies to lung-masked images scaled to [0, 1].
"""


def end_slice_range(
    volume: np.ndarray, threshold: float = WU_MIN_MEAN_INTENSITY, lung_mask: Optional[np.ndarray] = None
) -> tuple[int, int]:
    """Index range ``[start, stop)`` left after dropping dark end slices (Wu et al. Sec. 4.2.2).

    volume: (Z, H, W) normalised to [0, 1], lung-masked already unless
    ``lung_mask`` (Z, H, W) is given. With ``lung_mask``, voxels outside the
    lungs are zeroed and each slice's mean is taken over the in-plane bounding
    box of the lungs in the whole volume: Wu et al. measure the "cropped lung
    images", and over a full field of view even central slices of a normal
    lung average below 0.08 (the lungs fill a third of it). Slices are
    dropped from the top and bottom while their mean intensity is below
    ``threshold``; dark slices between kept ones stay, because the paper
    motivates the rule by the lungs closing "at the beginning and end of a CT
    sequence", and a gap inside the lungs would break the slice neighbourhood.
    Raises InputError when values are outside [0, 1] (the threshold would be
    meaningless) or when no slice passes (no lungs in the volume).
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or volume.shape[0] == 0:
        raise InputError(f"expected a (Z, H, W) volume with Z >= 1, got shape {volume.shape}")
    if volume.size and (float(np.nanmin(volume)) < 0.0 or float(np.nanmax(volume)) > 1.0):
        raise InputError("slice intensities must be normalised to [0, 1] before dropping dark end slices: "
                         "apply hu_window or sliding_window_normalize first")
    if lung_mask is not None:
        volume = _crop_to_lungs(volume, lung_mask)
    means = volume.reshape(volume.shape[0], -1).mean(axis=1)
    bright = np.flatnonzero(means >= threshold)
    if bright.size == 0:
        raise InputError(f"no slice has mean intensity >= {threshold}: check that the volume is lung-masked "
                         "CT normalised to [0, 1] and that the lung mask is not empty")
    return int(bright[0]), int(bright[-1]) + 1


def drop_end_slices(
    volume: np.ndarray, threshold: float = WU_MIN_MEAN_INTENSITY, lung_mask: Optional[np.ndarray] = None
) -> np.ndarray:
    """The slices of ``volume`` (Z, H, W) kept by :func:`end_slice_range`: (Z', H, W), a view of the input."""
    start, stop = end_slice_range(volume, threshold, lung_mask)
    return np.asarray(volume)[start:stop]


def _crop_to_lungs(volume: np.ndarray, lung_mask: np.ndarray) -> np.ndarray:
    """Lung-masked ``volume`` cropped to the lungs' in-plane bounding box over all slices: (Z, h, w)."""
    lungs = np.asarray(lung_mask) > 0
    if lungs.shape != volume.shape:
        raise InputError(f"lung mask shape {lungs.shape} differs from volume shape {volume.shape}: pass the matching mask")
    if not lungs.any():
        raise InputError("the lung mask is empty: segment the lungs first (covidweak lungs)")
    rows = np.flatnonzero(lungs.any(axis=(0, 2)))
    cols = np.flatnonzero(lungs.any(axis=(0, 1)))
    box = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return np.where(lungs[box], volume[box], 0)
