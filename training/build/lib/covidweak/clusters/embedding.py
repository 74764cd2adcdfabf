"""Display coordinates of lesions: truncated SVD to 50 dimensions, then t-SNE to 2-D (Wu et al. Sect. 5.3, Fig. 9).

t-SNE has no transform for new points. A new lesion is placed at the inverse-distance-weighted
mean of the t-SNE points of its :data:`PLACEMENT_NEIGHBOURS` nearest library lesions, the
distances measured in the 50-dimensional SVD space; a lesion identical to a library lesion
lands on it. The library map therefore stays fixed and new cases are drawn into it.
"""

from __future__ import annotations

import numpy as np

SVD_COMPONENTS = 50
"""Wu et al. Sect. 5.3: "reduce the dimensions of the encoded lesion feature to 50 using truncated SVD"."""
TSNE_PERPLEXITY = 30.0
"""scikit-learn's default; lowered to (M - 1) / 3 for small libraries, where t-SNE needs perplexity < M."""
PLACEMENT_NEIGHBOURS = 5


def fit_svd(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Truncated-SVD components (c, F) of ``features`` (M, F), c = min(50, F - 1, M - 1), at least 1."""
    from sklearn.decomposition import TruncatedSVD

    n_components = max(1, min(SVD_COMPONENTS, features.shape[1] - 1, features.shape[0] - 1))
    return TruncatedSVD(n_components=n_components, random_state=seed).fit(features).components_


def reduce(features: np.ndarray, components: np.ndarray) -> np.ndarray:
    """(M, F) features -> (M, c) SVD coordinates (TruncatedSVD does not centre the data)."""
    return features @ components.T


def fit_tsne(reduced: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of the SVD coordinates (M, c) -> (M, 2); M >= 2."""
    from sklearn.manifold import TSNE

    perplexity = min(TSNE_PERPLEXITY, max(1.0, (len(reduced) - 1) / 3))
    # PCA initialisation needs two input dimensions; a library of two lesions has one SVD coordinate.
    init = "pca" if reduced.shape[1] >= 2 else "random"
    return TSNE(n_components=2, perplexity=perplexity, init=init, random_state=seed).fit_transform(reduced)


def place(reduced: np.ndarray, library_reduced: np.ndarray, library_points: np.ndarray,
          neighbours: int = PLACEMENT_NEIGHBOURS) -> np.ndarray:
    """2-D points of new lesions (M, c) from the library's SVD coordinates (N, c) and t-SNE points (N, 2) -> (M, 2)."""
    if len(reduced) == 0:
        return np.zeros((0, 2))
    distances = np.linalg.norm(reduced[:, None, :] - library_reduced[None, :, :], axis=-1)
    nearest = np.argsort(distances, axis=1)[:, :min(neighbours, len(library_reduced))]
    near = np.take_along_axis(distances, nearest, axis=1)
    exact = near[:, :1] == 0
    weights = np.where(exact, (near == 0).astype(float), 1.0 / np.where(near == 0, 1.0, near))
    weights /= weights.sum(axis=1, keepdims=True)
    return (weights[:, :, None] * library_points[nearest]).sum(axis=1)
