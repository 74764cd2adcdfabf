"""Assembling network input channels: M-SEAM-NAM's 2.5-D stacks and DuCN's three channels."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

STACK_DEPTH = 3  # M-SEAM-NAM Sec. 3.2: "we use 3 consecutive layers images as input"


def slice_stacks(volume: np.ndarray) -> np.ndarray:
    """Stack each axial slice with its neighbours as channels (M-SEAM-NAM Sec. 3.2).

    volume: (Z, H, W). Returns (Z, 3, H, W) with channels (k-1, k, k+1), same dtype.
    The first and last slice have no neighbour on one side; that side repeats
    the slice itself, as the authors' public data loader does, so every slice
    gets an input and the channel order stays "previous, current, next".
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or volume.shape[0] == 0:
        raise InputError(f"slice_stacks expects a (Z, H, W) volume with Z >= 1, got shape {volume.shape}")
    z = np.arange(volume.shape[0])
    neighbours = np.clip(z[:, None] + np.arange(-1, 2)[None, :], 0, volume.shape[0] - 1)
    return volume[neighbours]


def ducn_channels(raw: np.ndarray, lung_mask: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """DuCN's three input channels per slice (Sec. 2.1 and 3.3 ablation): raw, lung image, distance map.

    raw: (H, W) or (Z, H, W), intensities already normalised (e.g. to [0, 1]).
    lung_mask: same shape, non-zero inside the lungs.
    distance: same shape, the intrapulmonary distance map
    (:func:`covidweak.preprocess.distance.intrapulmonary_distance`).
    Returns float32 (3, H, W) or (Z, 3, H, W); the lung image is the raw image
    with everything outside the lungs set to 0. The paper lists the channels
    in two orders; this follows its ablation text ("a raw image, a lung image
    and an intrapulmonary distance map").
    """
    raw = np.asarray(raw, dtype=np.float32)
    mask = np.asarray(lung_mask)
    distance = np.asarray(distance, dtype=np.float32)
    if raw.shape != mask.shape or raw.shape != distance.shape or raw.ndim not in (2, 3):
        raise InputError(
            f"DuCN channels need raw, lung mask and distance map of one (H, W) or (Z, H, W) shape, "
            f"got {raw.shape}, {mask.shape}, {distance.shape}"
        )
    lung_image = np.where(mask > 0, raw, np.float32(0))
    channel_axis = 0 if raw.ndim == 2 else 1
    return np.stack([raw, lung_image, distance], axis=channel_axis).astype(np.float32, copy=False)
