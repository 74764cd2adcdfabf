"""The scanner: partial-volume blur and correlated quantum noise."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BLUR_SIGMA_MM = 0.75
"""In-plane point spread (Gaussian sigma), typical of a standard soft/lung kernel."""
SLICE_BLUR_FRACTION = 0.3
"""Cranio-caudal blur as a fraction of the slice spacing: the slice profile overlap."""
NOISE_HU = 18.0
"""Standard deviation of the final image noise in homogeneous tissue (routine-dose chest CT)."""


def acquire(hu: np.ndarray, spacing, rng: np.random.Generator) -> np.ndarray:
    """(z, y, x) float32 ideal HU -> (z, y, x) int16 HU as reconstructed.

    White noise is added before the blur so that the noise comes out spatially
    correlated like CT noise; its amplitude is pre-scaled by the blur's variance
    reduction so the final standard deviation is ``NOISE_HU``.
    """
    sx, sy, sz = spacing
    sigma = (SLICE_BLUR_FRACTION, BLUR_SIGMA_MM / sy, BLUR_SIGMA_MM / sx)
    gain = 1.0
    for s in sigma:  # variance of a unit-sum discrete Gaussian applied to white noise
        k = np.exp(-0.5 * (np.arange(-4 * max(s, 0.5), 4 * max(s, 0.5) + 1) / max(s, 1e-3)) ** 2)
        k /= k.sum()
        gain *= float((k**2).sum())
    noisy = hu + rng.standard_normal(hu.shape, dtype=np.float32) * np.float32(NOISE_HU / np.sqrt(gain))
    out = ndimage.gaussian_filter(noisy, sigma, truncate=3.0, output=np.float32)
    return np.clip(np.rint(out), -1024, 3071).astype(np.int16)
