"""Overlap and volume measures for label images (numpy arrays or SimpleITK images), and the
area under the ROC curve every evaluation reports."""

from __future__ import annotations

import numpy as np


def _array(mask) -> np.ndarray:
    if isinstance(mask, np.ndarray):
        return mask
    import SimpleITK as sitk

    # A copy, not a view: a view dies with the image, which callers often pass as a temporary.
    return sitk.GetArrayFromImage(mask)


def dice(a, b) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two same-shape masks (nonzero = foreground).

    Two empty masks agree perfectly (1.0). Raises ``ValueError`` on a shape mismatch.
    """
    a, b = _array(a) != 0, _array(b) != 0
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {a.shape} vs {b.shape}")
    total = int(np.count_nonzero(a)) + int(np.count_nonzero(b))
    if total == 0:
        return 1.0
    return 2.0 * int(np.count_nonzero(a & b)) / total


def dice_per_label(a, b, labels) -> dict[int, float]:
    """Dice of ``a == label`` vs ``b == label`` for each label. Same-shape label arrays or images."""
    a, b = _array(a), _array(b)
    return {int(label): dice(a == label, b == label) for label in labels}


def label_volumes_ml(labels, spacing, ids) -> dict[int, float]:
    """Volume in mL of each label id. ``spacing``: voxel size in mm (any axis order; only the product is used)."""
    array = _array(labels)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return {int(i): int(np.count_nonzero(array == i)) * voxel_ml for i in ids}


def roc_auc(truth, score) -> float:
    """Area under the ROC curve (scikit-learn's; ties count one half), NaN when only one class is present.

    truth: (N,) bool or 0/1; score: (N,) float.
    """
    from sklearn.metrics import roc_auc_score

    truth = np.asarray(truth).astype(bool)
    if truth.all() or not truth.any():
        return float("nan")
    return float(roc_auc_score(truth, np.asarray(score, dtype=float)))
