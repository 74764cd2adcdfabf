"""Detection metrics of DuCN's Table 1 and ranking metrics for similar-case retrieval.

The paper reports sensitivity, specificity, precision, F1, accuracy and AUC (Sect. 3.1) and
judges recommendations only by eye (Sect. 3.2). Retrieval is measured here with precision@k
and mean average precision against a stated ground truth.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import InputError
from ..metrics import roc_auc


def detection_metrics(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict[str, float]:
    """Binary detection metrics, COVID-19 = 1.

    labels: (n,) 0/1; scores: (n,) probability of class 1, predicted positive when >= threshold.
    Returns sensitivity, specificity, precision, f1, accuracy, auc (fractions; NaN where undefined:
    AUC with one class only, precision with no positive prediction).
    """
    labels = np.asarray(labels, dtype=int)
    scores = np.asarray(scores, dtype=float)
    if labels.shape != scores.shape or labels.ndim != 1 or labels.size == 0:
        raise InputError(f"detection metrics need equal-length non-empty labels and scores, got {labels.shape} "
                         f"and {scores.shape}")
    predicted = scores >= threshold
    positive = labels == 1
    tp = int(np.sum(predicted & positive))
    tn = int(np.sum(~predicted & ~positive))
    fp = int(np.sum(predicted & ~positive))
    fn = int(np.sum(~predicted & positive))

    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")

    sensitivity, precision = ratio(tp, tp + fn), ratio(tp, tp + fp)
    f1 = ratio(2 * tp, 2 * tp + fp + fn)
    return {"sensitivity": sensitivity, "specificity": ratio(tn, tn + fp), "precision": precision, "f1": f1,
            "accuracy": ratio(tp + tn, labels.size), "auc": roc_auc(labels, scores)}


STUDY_TOP_FRACTION = 0.25
"""Share of a study's lung slices, the most COVID-like, whose mean probability is the study's. The paper
classifies single images; a study is as abnormal as its most abnormal slices, while a plain mean lets
the many lesion-free slices of a COVID-19 study outvote its lesions."""


def study_probability(slice_probabilities: Sequence[float]) -> float:
    """Study-level COVID-19 probability: mean of the top :data:`STUDY_TOP_FRACTION` of its slices (at least one)."""
    values = np.sort(np.asarray(slice_probabilities, dtype=float))[::-1]
    if values.size == 0:
        raise InputError("a study without lung slices has no COVID-19 probability")
    return float(values[: max(1, int(np.ceil(STUDY_TOP_FRACTION * values.size)))].mean())


def precision_at_k(relevant: Sequence[bool], k: int) -> float:
    """Fraction of the first ``k`` ranked items that are relevant. relevant: (n,) flags in rank order, n >= k."""
    relevant = np.asarray(relevant, dtype=bool)
    if k < 1 or k > relevant.size:
        raise InputError(f"precision@{k} needs 1 <= k <= {relevant.size} ranked items")
    return float(relevant[:k].mean())


def average_precision(relevant: Sequence[bool], n_relevant: int | None = None) -> float:
    """Mean of precision@i over the ranks i of relevant items, divided over ``n_relevant``.

    relevant: (n,) flags in rank order; n_relevant: how many relevant items exist in the whole
    library (default: those in the ranking). NaN when there is none.
    """
    relevant = np.asarray(relevant, dtype=bool)
    total = int(relevant.sum()) if n_relevant is None else int(n_relevant)
    if total == 0:
        return float("nan")
    ranks = np.flatnonzero(relevant) + 1
    hits = np.arange(1, ranks.size + 1)
    return float(np.sum(hits / ranks) / total)
