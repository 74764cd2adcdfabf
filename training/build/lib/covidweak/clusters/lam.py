"""Lesion activation heatmap (LAHm), lesion activation map (LAM) and lesion features (Wu et al. Sect. 3.2).

For one slice the steps are:

1. LAHm (Eqs. 6-7): Grad-CAM of the COVID-19 probability on A, the last backbone block's
   output: alpha = spatial mean of dPhi/dA, LAHm = ReLU(sum_kappa alpha_kappa A_kappa). When A
   is the FPN level P3 (``lam_level: P3``) Phi is P3's own COVID-19 score s^P3: the fused
   probability sees P3 only through omega_P3 (Eq. 2), which is 0 for a level no better than
   chance on validation, and the map would vanish with it.
   FeCNN's ``forward`` returns A itself, so the gradient is one ``torch.autograd.grad`` call
   on the same forward pass that gives the prediction and the features; Captum's
   ``LayerGradCam`` would compute the same map but needs a second forward pass for A.
2. Normalise to [0, 1], threshold with Otsu's method and split the mask into 4-connected
   components (diagonal neighbours are separate lesions); components of a single LAHm pixel
   are dropped ("connected components with more than 1 pixel are accepted").
3. LAM = LAHm * mask (Hadamard product), upsampled to the slice.
4. Each component's spatial maximum (Eq. 8) picks the lesion's feature vector: A at that
   pixel, all kappa channels (Eq. 9). :func:`component_means` is the alternative the box
   weights use: A averaged over the whole component, so a lesion's feature describes all of
   it rather than one cell.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage as ndi

FOUR_CONNECTIVITY = ndi.generate_binary_structure(2, 1)
"""Wu et al. Sect. 3.2.1: "the search mode is set to 4-connectivity"."""
MIN_LESION_PIXELS = 2
"""Wu et al. Sect. 3.2.1: "connected components with more than 1 pixel are accepted"."""


def gradcam_lahm(model, x, target: int):
    """LAHm (Eqs. 6-7) of a batch with the FeCNN ``model``.

    x: (N, 1, S, S) float tensor. Returns numpy arrays: lahm (N, h, w) float32 >= 0,
    features A (N, kappa, h, w) float32 and probabilities (N, C) float32.
    """
    import torch

    from ..models.fecnn import FPN_LEVELS

    with torch.enable_grad():
        output = model(x)
        probabilities = output.logits.float().softmax(dim=1)
        if getattr(model, "lam_level", "C5") == "C5":
            objective = probabilities[:, target]
        else:  # P3 reaches the fused prediction only through omega_P3, which Eq. 2 may set to 0
            objective = output.level_scores[:, FPN_LEVELS.index(model.lam_level), target].float()
        (gradient,) = torch.autograd.grad(objective.sum(), output.features)
    features = output.features.detach().float()
    alpha = gradient.float().mean(dim=(2, 3), keepdim=True)
    lahm = torch.relu((alpha * features).sum(dim=1))
    return lahm.cpu().numpy(), features.cpu().numpy(), probabilities.detach().cpu().numpy()


def normalise(heatmap: np.ndarray) -> np.ndarray:
    """(h, w) -> (h, w) float32 in [0, 1] by min-max; a constant map becomes all zeros."""
    heatmap = np.asarray(heatmap, dtype=np.float32)
    span = float(heatmap.max() - heatmap.min())
    return (heatmap - heatmap.min()) / span if span > 0 else np.zeros_like(heatmap)


def lesion_components(lahm: np.ndarray, inside: Optional[np.ndarray] = None) -> np.ndarray:
    """Candidate lesions of one LAHm: (h, w) -> (h, w) int32 labels 1..m, 0 = background.

    Otsu threshold of the normalised map (pixels strictly above it), 4-connected components,
    components under :data:`MIN_LESION_PIXELS` removed, labels renumbered 1..m in scan order.
    ``inside``: (h, w) bool cells of the lungs, or None for the paper's whole map. Given, Otsu's
    threshold is taken over the lung cells only and only they can be lesion: on the lung box most
    cells lie outside the lungs at 0, and Otsu over the whole map then separates "lung" from
    "not lung" instead of lesion from lung.
    """
    from skimage.filters import threshold_otsu

    unit = normalise(lahm)
    candidates = unit[inside] if inside is not None else unit
    if candidates.size < 2 or np.ptp(candidates) <= 0:
        return np.zeros(unit.shape, dtype=np.int32)
    mask = unit > threshold_otsu(candidates)
    if inside is not None:
        mask &= inside
    labels, count = ndi.label(mask, structure=FOUR_CONNECTIVITY)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = np.flatnonzero(sizes >= MIN_LESION_PIXELS)
    keep = keep[keep > 0]
    renumber = np.zeros(count + 1, dtype=np.int32)
    renumber[keep] = np.arange(1, len(keep) + 1)
    return renumber[labels]


def component_maxima(heatmap: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Eq. 8: (row, col) of the maximum of ``heatmap`` in each component 1..m -> (m, 2) int."""
    count = int(labels.max())
    if count == 0:
        return np.zeros((0, 2), dtype=np.int64)
    positions = ndi.maximum_position(heatmap, labels, np.arange(1, count + 1))
    return np.asarray(positions, dtype=np.int64).reshape(count, 2)


def lesion_features(features: np.ndarray, maxima: np.ndarray) -> np.ndarray:
    """Eq. 9: A at each lesion's maximum. features (kappa, h, w), maxima (m, 2) -> (m, kappa)."""
    return features[:, maxima[:, 0], maxima[:, 1]].T.copy()


def component_means(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of A over each component: features (kappa, h, w), labels (h, w) 1..m -> (m, kappa) float32."""
    count = int(labels.max())
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=count + 1)[1:].astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=channel.ravel(), minlength=count + 1)[1:] for channel in features], axis=1)
    return (sums / np.maximum(sizes, 1)[:, None]).astype(np.float32).reshape(count, len(features))


def upsample(array: np.ndarray, size_yx: tuple[int, int], order: int) -> np.ndarray:
    """(h, w) -> (Y, X): order 1 bilinear for maps, 0 nearest for labels (pixel-centre aligned)."""
    zoom = (size_yx[0] / array.shape[0], size_yx[1] / array.shape[1])
    out = ndi.zoom(array, zoom, order=order, mode="nearest", grid_mode=True)
    return out[:size_yx[0], :size_yx[1]]


def lesion_activation_map(lahm: np.ndarray, labels: np.ndarray, size_yx: tuple[int, int]) -> np.ndarray:
    """LAM = upsampled (normalised LAHm * candidate mask): (h, w) -> (Y, X) float32 in [0, 1]."""
    return upsample(normalise(lahm) * (labels > 0), size_yx, order=1).astype(np.float32)
