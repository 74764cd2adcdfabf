"""Hu et al.'s five classification metrics (Sect. II-H) with bootstrap 95 % intervals.

Per class c (one-vs-rest): accuracy, precision, sensitivity (recall), specificity and the AUC of
the probability of c. Table 4 reports these per class for the three-way task; Table 3's
three-way row is their mean over the classes (e.g. accuracy (89.2 + 84.7 + 88.3) / 3 = 87.4).
A binary task reports its positive class (the second of its class list). That class mean is not
the share of patients given the right class: :func:`plain_accuracy` is, and
:func:`confusion_matrix` shows where the others went, so both are reported beside it.

Hu et al. give the 95 % interval of 5-fold cross-validation means; one held-out test set has no
folds, so the interval here is the percentile bootstrap over patients: patients are drawn with
replacement (all studies of a drawn patient together, so a patient's follow-ups never count as
independent) and the 2.5th and 97.5th percentiles of each metric are reported.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..metrics import roc_auc

METRICS = ("accuracy", "precision", "sensitivity", "specificity", "auc")
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def binary_metrics(truth: np.ndarray, predicted: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The five metrics of one class. truth, predicted: (N,) bool; score: (N,) float. Undefined -> NaN."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    tp = int(np.count_nonzero(truth & predicted))
    tn = int(np.count_nonzero(~truth & ~predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    return {"accuracy": _ratio(tp + tn, truth.size), "precision": _ratio(tp, tp + fp),
            "sensitivity": _ratio(tp, tp + fn), "specificity": _ratio(tn, tn + fp), "auc": roc_auc(truth, score)}


def plain_accuracy(labels: np.ndarray, probs: np.ndarray) -> float:
    """Share of cases whose argmax class is the true one. labels: (N,) int; probs: (N, K)."""
    labels, probs = np.asarray(labels, int), np.asarray(probs, float)
    return _ratio(int(np.count_nonzero(probs.argmax(axis=1) == labels)), labels.size)


def confusion_matrix(labels: np.ndarray, probs: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) int counts: row = true class, column = argmax class. labels: (N,) int; probs: (N, K)."""
    labels, probs = np.asarray(labels, int), np.asarray(probs, float)
    matrix = np.zeros((num_classes, num_classes), int)
    np.add.at(matrix, (labels, probs.argmax(axis=1)), 1)
    return matrix


def class_metrics(labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, float]]:
    """One-vs-rest metrics of every class, plus ``"overall"`` (Table 3's row).

    labels: (N,) int true class index; probs: (N, K) probabilities. The prediction is the argmax.
    ``overall`` is the class mean for three classes and the positive (second) class for two.
    """
    labels, probs = np.asarray(labels, int), np.asarray(probs, float)
    predicted = probs.argmax(axis=1)
    out = {c: binary_metrics(labels == k, predicted == k, probs[:, k]) for k, c in enumerate(classes)}
    if len(classes) == 2:
        out["overall"] = dict(out[classes[1]])
    else:
        # nanmean over classes; a metric undefined for every class stays NaN
        out["overall"] = {m: _mean([out[c][m] for c in classes]) for m in METRICS}
    return out


def _mean(values: Sequence[float]) -> float:
    values = np.asarray(values, float)
    return float(values[~np.isnan(values)].mean()) if (~np.isnan(values)).any() else float("nan")


def bootstrap_intervals(statistic: Callable[[np.ndarray], dict], groups: Sequence[str],
                        resamples: int = BOOTSTRAP_RESAMPLES, confidence: float = CONFIDENCE,
                        seed: int = 0) -> dict:
    """Percentile bootstrap intervals of a nested dict of statistics, resampling whole groups.

    statistic: (M,) row indices -> nested dict of floats (e.g. :func:`class_metrics` on those rows);
    groups: (N,) group id of each row (the patient). Returns the same nesting with ``[low, high]``
    in place of each float; replicates where a value is undefined (NaN) are left out of its interval.
    """
    groups = np.asarray(groups)
    names, codes = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(codes == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(members), size=len(members))
        replicates.append(statistic(np.concatenate([members[g] for g in drawn])))
    tail = 100.0 * (1.0 - confidence) / 2.0

    def interval(path: tuple) -> list:
        values = np.array([_get(r, path) for r in replicates], float)
        values = values[~np.isnan(values)]
        if values.size == 0:
            return [float("nan"), float("nan")]
        return [float(np.percentile(values, tail)), float(np.percentile(values, 100.0 - tail))]

    return _map_leaves(replicates[0], interval)


def _get(tree: dict, path: tuple):
    for key in path:
        tree = tree[key]
    return tree


def _map_leaves(tree: dict, fn, path: tuple = ()) -> dict:
    return {k: _map_leaves(v, fn, path + (k,)) if isinstance(v, dict) else fn(path + (k,)) for k, v in tree.items()}
