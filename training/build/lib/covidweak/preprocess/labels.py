"""Label-map conversions between a dataset's mask convention and this project's."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..errors import InputError


def remap_labels(mask: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """Replace label values by ``mapping`` in one pass; labels not in ``mapping`` are kept.

    Used e.g. with ``StudyRecord.extra["lung_label_map"]`` of COVID-19-CT-Seg,
    whose masks label 1 left and 2 right lung, to reach this project's 1 right,
    2 left. The swap is simultaneous, so {1: 2, 2: 1} exchanges the labels.
    mask: integer (or whole-valued float) array, any shape. Returns an array of the same shape and dtype.
    """
    mask = np.asarray(mask)
    # Some NIfTI masks are stored as float; they are fine as long as every value is a whole label.
    if mask.dtype.kind == "f" and not np.array_equal(mask, np.round(mask)):
        raise InputError("mask holds non-integer values, so it is not a label map: pass the mask file, not an image")
    out = mask.copy()
    for source, target in mapping.items():
        out[mask == source] = target
    return out
