"""One probability per patient from per-slice probabilities.

Hu et al. classify single slices. A COVID-19 or CAP scan also holds many slices without any
lesion, which look normal, so averaging every slice would pull diseased patients towards
"normal". The patient probability is therefore the mean probability vector of the ``top_k``
slices that look least normal (lowest normal probability). A model without a normal class
(the CAP vs COVID-19 task) averages its ``top_k`` most confident slices (highest maximum
probability) instead, since there every slice is assumed to show disease.

How many slices: Hu et al. classify slices and give no patient rule, so ``top_k`` is chosen on
the validation patients of the training run (:func:`choose_top_k` over :data:`TOP_K_CANDIDATES`)
and stored with the weights.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

TOP_K_CANDIDATES = (1, 3, 5, 10, 20)
"""Values of ``top_k`` tried on the validation patients: one slice up to about a third of a
64-slice scan's lung slices."""

AGGREGATION_TEXT = {
    True: "mean of the class probabilities of the {k} lung slices with the lowest normal probability",
    False: "mean of the class probabilities of the {k} lung slices with the most confident prediction",
}


def describe(classes, top_k: int) -> str:
    """The one-sentence description written to diagnosis.json."""
    return AGGREGATION_TEXT["normal" in classes].format(k=top_k)


def top_slices(slice_probs: np.ndarray, classes, top_k: int) -> np.ndarray:
    """Indices of the slices that enter the patient probability, most informative first.

    slice_probs: (N, K) softmax probabilities, columns in ``classes`` order. Returns (min(k, N),) int.
    Ties keep slice order (stable sort), so the result is deterministic.
    """
    slice_probs = np.asarray(slice_probs, dtype=np.float64)
    if slice_probs.ndim != 2 or slice_probs.shape[1] != len(classes):
        raise InputError(f"slice probabilities of shape {slice_probs.shape} do not fit the classes {list(classes)}")
    if slice_probs.shape[0] == 0:
        raise InputError("no lung slice to classify: check the CT covers the chest and the lungs are found")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    if "normal" in classes:
        rank = -slice_probs[:, list(classes).index("normal")]
    else:
        rank = slice_probs.max(axis=1)
    return np.argsort(-rank, kind="stable")[:top_k]


def patient_probability(slice_probs: np.ndarray, classes, top_k: int) -> np.ndarray:
    """(N, K) slice probabilities -> (K,) patient probability (sums to 1)."""
    slice_probs = np.asarray(slice_probs, dtype=np.float64)
    return slice_probs[top_slices(slice_probs, classes, top_k)].mean(axis=0)


def choose_top_k(patients: list[np.ndarray], labels: np.ndarray, classes,
                 candidates=TOP_K_CANDIDATES) -> tuple[int, dict[int, float]]:
    """The ``top_k`` with the best patient accuracy on validation patients, and every candidate's accuracy.

    patients: one (N_i, K) slice-probability array per patient; labels: (P,) true class index.
    Ties go to the smaller k (fewer slices, less dilution of a small lesion by normal-looking
    slices). Returns (k, {k: accuracy}).
    """
    labels = np.asarray(labels, int)
    if len(patients) != labels.size or labels.size == 0:
        raise ValueError(f"need one label per patient and at least one patient, got {len(patients)} and {labels.size}")
    accuracy = {int(k): float(np.mean([patient_probability(p, classes, k).argmax() == y for p, y in zip(patients, labels)]))
                for k in candidates}
    best = max(accuracy.values())
    return min(k for k, a in accuracy.items() if a == best), accuracy
