"""Lesion clustering: k-means, the elbow rule for K, and the lesion score (Wu et al. Sects. 3.2.3, 6.3).

K-means runs on the lesion features themselves (kappa-dimensional, Eq. 9); SVD and t-SNE
(:mod:`.embedding`) only serve the display, as in Fig. 9.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

ELBOW_K_MAX = 15
"""Largest K tried by the elbow rule; Wu et al. Sect. 6.3 found K = 12 on 436 lesions this way."""
KMEANS_RESTARTS = 10
"""k-means++ restarts; the best of them (lowest inertia) is kept."""


def check_k(k: int, n_lesions: int) -> None:
    if k < 1:
        raise InputError(f"--k {k}: the number of clusters must be at least 1 (or 'auto')")
    if k > n_lesions:
        raise InputError(f"--k {k} is larger than the {n_lesions} lesions found: choose --k {n_lesions} or less, "
                         "or add studies to the library")


def fit_kmeans(features: np.ndarray, k: int, seed: int = 0):
    """A fitted scikit-learn KMeans of ``features`` (M, F) with ``k`` clusters."""
    from sklearn.cluster import KMeans

    check_k(k, len(features))
    return KMeans(n_clusters=k, n_init=KMEANS_RESTARTS, random_state=seed).fit(features)


def inertia_curve(features: np.ndarray, k_max: int = ELBOW_K_MAX, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """K = 1..min(k_max, M) and the k-means inertia (sum of squared distances to the nearest centre) of each."""
    ks = np.arange(1, min(k_max, len(features)) + 1)
    return ks, np.array([fit_kmeans(features, int(k), seed).inertia_ for k in ks], dtype=float)


def elbow_k(ks: np.ndarray, inertias: np.ndarray) -> int:
    """The elbow of an inertia curve: the K farthest from the chord joining its first and last points.

    Both axes are first scaled to [0, 1] (K by its range, inertia by I(first) - I(last)), so
    the answer does not depend on the units of the features; the distance is the
    perpendicular distance to the chord. Ties go to the smaller K. A curve of fewer than
    three points has no interior point and gives its last K; a flat curve gives its first.
    """
    ks, inertias = np.asarray(ks, dtype=float), np.asarray(inertias, dtype=float)
    if len(ks) < 3:
        return int(ks[-1])
    drop = inertias[0] - inertias[-1]
    if drop <= 0:
        return int(ks[0])
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertias - inertias[-1]) / drop
    # Chord from (0, 1) to (1, 0): x + y - 1 = 0; distance |x + y - 1| / sqrt(2).
    distance = np.abs(x + y - 1) / np.sqrt(2)
    return int(ks[int(np.argmax(distance))])


def choose_k(features: np.ndarray, k, seed: int = 0) -> tuple[int, dict]:
    """K from ``k`` (an int, or "auto" for :func:`elbow_k`) and how it was chosen."""
    n = len(features)
    if str(k) != "auto":
        check_k(int(k), n)
        return int(k), {"rule": "given"}
    if n < 3:
        raise InputError(f"--k auto needs at least 3 lesions, found {n}: give --k or add studies to the library")
    ks, inertias = inertia_curve(features, ELBOW_K_MAX, seed)
    return elbow_k(ks, inertias), {"rule": "elbow (max distance to the chord of the scaled inertia curve)",
                                   "k_tried": ks.tolist(), "inertia": inertias.tolist()}


def lesion_scores(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Wu et al. Eq. 10: softmax over clusters of the negative Euclidean distance to each centre.

    features (M, F), centres (K, F) -> (M, K), rows summing to 1. Eq. 10 as printed takes the
    minimum over k, which would report the least likely cluster; the text says the score
    measures the lesion's membership, so callers report the assigned (nearest) cluster's entry.
    """
    from scipy.special import softmax

    distances = np.linalg.norm(features[:, None, :] - centres[None, :, :], axis=-1)
    return softmax(-distances, axis=1)
