"""Smooth random fields: drawn on a coarse lattice and upsampled, which is far cheaper
than filtering white noise at full resolution and gives the same low-frequency look."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def smooth_field(rng: np.random.Generator, shape: tuple[int, ...], cells: tuple[int, ...]) -> np.ndarray:
    """Zero-mean, unit-std smooth noise of ``shape``.

    ``cells`` is the number of independent lattice cells per axis, so features are
    about ``shape / cells`` voxels wide. Returns a float32 array of ``shape``.
    """
    coarse_shape = tuple(max(2, int(c)) for c in cells)
    coarse = ndimage.gaussian_filter(rng.standard_normal(coarse_shape).astype(np.float32), 0.6, mode="wrap")
    coarse -= coarse.mean()
    coarse /= coarse.std() + 1e-6
    out = ndimage.zoom(coarse, [s / c for s, c in zip(shape, coarse_shape)], order=1, mode="nearest")
    return np.ascontiguousarray(out, dtype=np.float32)
