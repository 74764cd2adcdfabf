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
from ..preprocess.lungbox import BOX_SHAPE, CANONICAL_SPACING_MM, LungBox, box_stacks, fit_lung_box, stack_indices

WHOLE_SLICE, LUNG_BOX = "slice", "lung_box"
"""``preprocess["geometry"]``: "slice" reads whole slices resized to ``input_size`` (the paper's
448 x 448, and every weight file written before the box); "lung_box" reads the 1.4 mm box of
``box_shape`` pixels around the lungs (:mod:`covidweak.preprocess.lungbox`)."""

DEFAULT_PREPROCESS = {"input_size": MSEAM_SIZE, "hu_window": list(HU_WINDOW), "stack_depth": 3,
                      "geometry": WHOLE_SLICE, "box_shape": list(BOX_SHAPE)}
"""M-SEAM-NAM Sect. 3.2: 3 consecutive slices, resized to 448 x 448."""


def describe_input(preprocess: Optional[dict]) -> str:
    """What a network reads, in words: "lung box 160x224 at 1.4 mm" or "whole slice 448x448"."""
    spec = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    if spec.get("geometry") == LUNG_BOX:
        height, width = spec["box_shape"]
        return f"lung box {height}x{width} at {CANONICAL_SPACING_MM:g} mm"
    return f"whole slice {spec['input_size']}x{spec['input_size']}"


def input_box(preprocess: Optional[dict], lungs: np.ndarray, spacing_yx: Sequence[float]) -> Optional[LungBox]:
    """The lung box of one canonical volume for a network whose ``preprocess`` asks for it, else None.

    lungs: (Z, Y, X) labels, nonzero = lung; spacing_yx: (dy, dx) mm of the canonical volume.
    """
    spec = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    if spec.get("geometry") != LUNG_BOX:
        return None
    return fit_lung_box(lungs, spacing_yx, shape=tuple(spec.get("box_shape", BOX_SHAPE)))


def prepare_stacks(hu: np.ndarray, centres: Sequence[int], preprocess: Optional[dict] = None,
                   lungs: Optional[np.ndarray] = None, box: Optional[LungBox] = None) -> np.ndarray:
    """Network input for the slices ``centres`` of one canonical volume.

    hu: (Z, Y, X) float HU of a canonical (LPS) volume. With a ``box`` (:func:`input_box`) and
    the volume's ``lungs`` (Z, Y, X), returns the lung-masked box stacks (len(centres), depth, H, W);
    without, the whole slices windowed and resized to (len(centres), depth, S, S),
    S = ``preprocess["input_size"]``. Float32 in [0, 1]. Only the needed slices are touched, so
    memory stays bounded for long scans.
    """
    spec = {**DEFAULT_PREPROCESS, **(preprocess or {})}
    depth, window = int(spec["stack_depth"]), tuple(spec["hu_window"])
    if box is not None:
        if lungs is None:
            raise ValueError("lung-box input needs the volume's lung mask")
        return box_stacks(hu, lungs, box, centres, window, depth)
    size = int(spec["input_size"])
    needed = np.unique(np.concatenate([stack_indices(depth, hu.shape[0], c) for c in centres]))
    unit = dict(zip(needed.tolist(), resize_slices(hu_window(hu[needed], window), size, order=1)))
    return np.stack([np.stack([unit[i] for i in stack_indices(depth, hu.shape[0], c)]) for c in centres])
