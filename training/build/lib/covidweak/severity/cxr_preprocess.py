"""Kim et al.'s radiograph preprocessing (Sec. 3, implementation details).

"resizing to 256x256, Gaussian blurring with a 3x3 kernel, histogram equalization, and
normalization". The paper names no blur sigma and no normalisation; we take the sigma a
3x3 kernel implies by the usual rule (0.3 ((k - 1) / 2 - 1) + 0.8 = 0.8) and standardise
the equalised image to zero mean and unit variance, so the feature embedding network
sees the same intensity scale whatever the radiograph's bit depth.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage
from skimage import exposure, transform

KIM_INPUT_SIZE = 256
"""Kim et al., Sec. 3: radiographs are resized to 256x256."""
BLUR_KERNEL = 3
"""Kim et al., Sec. 3: Gaussian blur with a 3x3 kernel."""
BLUR_SIGMA = 0.3 * ((BLUR_KERNEL - 1) / 2 - 1) + 0.8
"""Sigma of a 3x3 Gaussian kernel when none is given (0.8)."""
EQUALISATION_BINS = 256
"""Histogram equalisation on 8-bit-like grey levels, as a radiograph display has."""


def resize_image(image: np.ndarray, size, order: int = 1) -> np.ndarray:
    """(rows, cols) -> (size, size), or ``size`` = (rows', cols'); ``order`` 1 bilinear for images
    (float32), 0 nearest for labels (dtype kept)."""
    shape = (size, size) if np.isscalar(size) else tuple(size)
    resized = transform.resize(np.asarray(image, dtype=np.float32 if order else np.float64), shape,
                               order=order, mode="edge", anti_aliasing=order > 0, preserve_range=True)
    return resized.astype(np.float32) if order else np.rint(resized).astype(np.asarray(image).dtype)


def gaussian_blur_3x3(image: np.ndarray) -> np.ndarray:
    """(rows, cols) -> same shape, blurred by a 3x3 Gaussian kernel (sigma :data:`BLUR_SIGMA`)."""
    radius = (BLUR_KERNEL - 1) // 2
    # truncate * sigma = radius makes scipy's kernel exactly 3x3.
    return ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), BLUR_SIGMA, truncate=radius / BLUR_SIGMA,
                                   mode="nearest")


def equalise_and_normalise(image: np.ndarray) -> np.ndarray:
    """(rows, cols) -> histogram-equalised, then zero mean and unit variance (float32)."""
    equalised = exposure.equalize_hist(np.asarray(image, dtype=np.float64), nbins=EQUALISATION_BINS)
    return ((equalised - equalised.mean()) / max(float(equalised.std()), 1e-6)).astype(np.float32)


def preprocess_cxr(image: np.ndarray, size: Optional[int] = KIM_INPUT_SIZE) -> np.ndarray:
    """A radiograph (rows, cols), any intensity range -> (size, size) float32 network input.

    Resize, 3x3 Gaussian blur, histogram equalisation, normalisation, in the paper's order.
    ``size`` None skips the resize, for an image already on the lung box's grid
    (:mod:`covidweak.severity.cxr_geometry`).
    """
    image = image if size is None else resize_image(image, size)
    return equalise_and_normalise(gaussian_blur_3x3(image))


def min_max(image: np.ndarray) -> np.ndarray:
    """(rows, cols) -> the same image scaled to [0, 1]: the cxr-lungs network's input scale."""
    image = np.asarray(image, dtype=np.float32)
    low, high = float(image.min()), float(image.max())
    return (image - low) / max(high - low, 1e-6)
