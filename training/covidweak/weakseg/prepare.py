"""Turn a CT into the network input, identically for training and inference.

The slices a network sees are prepared from a ``preprocess`` dict stored with its
weights (:mod:`covidweak.models.weights`), so a model always meets the input it was
trained on. Volumes are first put in LPS axis order (``DICOMOrient``, a lossless
permutation/flip), so that an axial slice has the same anatomical layout whatever the
file's direction matrix; results are mapped back with :func:`from_canonical`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ..preprocess import HU_WINDOW, MSEAM_SIZE, hu_window, resize_slices

CANONICAL_ORIENTATION = "LPS"
DEFAULT_PREPROCESS = {"input_size": MSEAM_SIZE, "hu_window": list(HU_WINDOW), "stack_depth": 3}
"""M-SEAM-NAM Sect. 3.2: 3 consecutive slices, resized to 448 x 448."""


def to_canonical(image: sitk.Image) -> sitk.Image:
    """The same voxels reordered to LPS axes (+x left, +y posterior, +z superior)."""
    return sitk.DICOMOrient(image, CANONICAL_ORIENTATION)


def from_canonical(image: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Undo :func:`to_canonical`: reorder ``image`` onto ``reference``'s axes.

    Only permutations and flips are involved, so nearest-neighbour resampling onto the
    reference grid reproduces voxels exactly.
    """
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0.0, image.GetPixelID())


def stack_indices(depth: int, n_slices: int, centre: int) -> np.ndarray:
    """Slice indices of the ``depth``-slice stack around ``centre``, edges repeated.

    M-SEAM-NAM feeds 3 consecutive slices as channels; at the first and last slice the
    missing neighbour is the slice itself (as :func:`covidweak.preprocess.slice_stacks`).
    """
    half = depth // 2
    return np.clip(np.arange(centre - half, centre - half + depth), 0, n_slices - 1)


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
