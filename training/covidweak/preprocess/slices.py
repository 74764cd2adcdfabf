"""Selecting which axial slices of a volume to keep."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

WU_MIN_MEAN_INTENSITY = 0.08
"""Wu et al. Sec. 4.2.2: end slices whose mean intensity is below 0.08 are discarded.

The paper first maps each image to 8-bit with a normalisation window and masks
the lungs; 0.08 only makes sense on the [0, 1] scale (8-bit would be 20.4 of
255), so the threshold applies to lung-masked images scaled to [0, 1].
"""


def end_slice_range(volume: np.ndarray, threshold: float = WU_MIN_MEAN_INTENSITY) -> tuple[int, int]:
    """Index range ``[start, stop)`` left after dropping dark end slices (Wu et al. Sec. 4.2.2).

    volume: (Z, H, W), lung-masked and normalised to [0, 1]. Slices are
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
    means = volume.reshape(volume.shape[0], -1).mean(axis=1)
    bright = np.flatnonzero(means >= threshold)
    if bright.size == 0:
        raise InputError(f"no slice has mean intensity >= {threshold}: check that the volume is lung-masked "
                         "CT normalised to [0, 1] and that the lung mask is not empty")
    return int(bright[0]), int(bright[-1]) + 1


def drop_end_slices(volume: np.ndarray, threshold: float = WU_MIN_MEAN_INTENSITY) -> np.ndarray:
    """The slices of ``volume`` (Z, H, W) kept by :func:`end_slice_range`: (Z', H, W), a view."""
    start, stop = end_slice_range(volume, threshold)
    return np.asarray(volume)[start:stop]
