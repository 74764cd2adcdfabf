"""Turn a CT into the network input, identically for training and inference.

The slices a network sees are prepared from a ``preprocess`` dict stored with its
weights (:mod:`covidweak.models.weights`), so a model always meets the input it was
trained on. Callers first put volumes in LPS axis order
(:func:`covidweak.lungs.geometry.to_canonical`, a lossless permutation/flip, nothing at all for
an image already in that order), so that an axial slice has the same anatomical layout whatever
the file's direction matrix, and map results back with
:func:`covidweak.lungs.geometry.from_canonical`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ..preprocess import HU_WINDOW, MSEAM_SIZE, hu_window, resize_slices
from ..preprocess.lungbox import stack_indices

DEFAULT_PREPROCESS = {"input_size": MSEAM_SIZE, "hu_window": list(HU_WINDOW), "stack_depth": 3}
"""M-SEAM-NAM Sect. 3.2: 3 consecutive slices, resized to 448 x 448."""


def prepare_stacks(hu: np.ndarray, centres: Sequence[int], preprocess: Optional[dict] = None) -> np.ndarray:
    """Network input for the slices ``centres`` of one canonical volume.

    hu: (Z, Y, X) float HU of a canonical (LPS) volume. Returns (len(centres), depth, S, S)
    float32 in [0, 1], S = ``preprocess["input_size"]``: HU window to [0, 1], then resize.
    Only the needed slices are touched, so memory stays bounded for long scans.
    """
    spec = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    depth, size = int(spec["stack_depth"]), int(spec["input_size"])
    window = tuple(spec["hu_window"])
    needed = np.unique(np.concatenate([stack_indices(depth, hu.shape[0], c) for c in centres]))
    unit = dict(zip(needed.tolist(), resize_slices(hu_window(hu[needed], window), size, order=1)))
    return np.stack([np.stack([unit[i] for i in stack_indices(depth, hu.shape[0], c)]) for c in centres])
